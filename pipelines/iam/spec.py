"""What `regula iam` writes policies for: the account, the names of the roles and resources (the image repositories,
the KMS key, the data), and where the jobs read and write.

The S3 layout is the one pipelines/definition/pipeline.py renders: everything under `s3://<bucket>/<prefix>/`; the jobs
write
only under `runs/` (a run's outputs, the training output `runs/<execution>/train-round<k>/`) and `checkpoints/`; the
step code under `code/` is written by upsert (the CI role) only. `locations` checks the rendered definition against
that layout, so a change to the definition that the policies would not allow fails here rather than in a job.

Light to import.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase

from pipelines.errors import RegulaError
from pipelines.local.engine.graph import all_steps
from pipelines.local.engine.s3 import split_uri
from pipelines.local.engine.step_types import StepType
from pipelines.settings import Settings
from steps.defaults import METRICS_NAMESPACE, MODEL_PACKAGE_GROUP

DEFAULT_CI_ROLE = "RegulaDeploy"  # the workflow's REGULA_DEPLOY_ROLE_ARN
GITHUB_OIDC = "token.actions.githubusercontent.com"
GITHUB_ENVIRONMENT = "sagemaker"  # the deploy job's environment in .github/workflows/regula.yml
PLACEHOLDER_ACCOUNT = "000000000000"  # Settings' default role ARN: renders pipeline.json, names no real account
STACK_ACCOUNT = "${AWS::AccountId}"
ROLE_ARN = re.compile(
    r"^arn:(aws|aws-cn|aws-us-gov):iam::(\d{12}|\$\{AWS::AccountId\}):role/((?:[\w+=,.@-]+/)*)([\w+=,.@-]{1,64})$"
)
ECR_IMAGE = re.compile(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/([^:@]+)[:@].+$")
JOB_FOLDERS = ("runs", "checkpoints")  # under the prefix: where the jobs write
MODEL_FOLDERS = "runs/*/train-round*"  # under the prefix: the training output paths (the model artifacts below)


class IamError(RegulaError):
    pass


def partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def role_parts(arn: str) -> tuple[str, str, str]:
    """(account, path, name) of a role ARN; IamError when it is not one."""
    match = ROLE_ARN.match(arn)
    if not match:
        raise IamError(f"not a role ARN: {arn!r} (arn:aws:iam::<12 digits>:role/<path/>name)")
    return match.group(2), "/" + match.group(3), match.group(4)


def names(name: str) -> list[str]:
    """SageMaker ARNs spell resource names in lowercase: both spellings when the name has capitals."""
    return sorted({name, name.lower()})


@dataclass(frozen=True)
class Spec:
    """What the policies are written for."""

    settings: Settings
    account: str
    execution_role_arn: str
    ci_role_name: str = DEFAULT_CI_ROLE
    github_repo: str = ""
    github_environment: str = GITHUB_ENVIRONMENT
    namespaces: tuple[str, ...] = (METRICS_NAMESPACE,)
    model_package_group: str = MODEL_PACKAGE_GROUP
    data_uris: tuple[str, ...] = ()

    @property
    def partition(self) -> str:
        return partition(self.settings.region)

    def arn(self, service: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{self.settings.region}:{self.account}:{resource}"

    @property
    def prefix(self) -> str:
        return self.settings.prefix.strip("/")


def repository_arn(spec: Spec, image: str) -> str:
    match = ECR_IMAGE.match(image)
    if not match:
        raise IamError(f"not an ECR image URI: {image!r}")
    account, region, repository = match.groups()
    return f"arn:{spec.partition}:ecr:{region}:{account}:repository/{repository}"


def kms_key(spec: Spec) -> tuple[str, dict]:
    """The key policies name for --kms-key-id (a key ARN, key id, alias name or alias ARN), and the condition that
    picks an aliased key out of the account's keys (IAM authorizes KMS actions on the key, never on the alias)."""
    key = spec.settings.kms_key_id
    region, account, resource = spec.settings.region, spec.account, key
    if key.startswith("arn:"):
        parts = key.split(":", 5)
        if len(parts) != 6 or parts[2] != "kms":
            raise IamError(f"--kms-key-id {key!r} is not a KMS key or alias ARN")
        region, account, resource = parts[3:]
    if resource.startswith("alias/"):
        arn = f"arn:{spec.partition}:kms:{region}:{account}:key/*"
        return arn, {"ForAnyValue:StringEquals": {"kms:ResourceAliases": resource}}
    return (key if key.startswith("arn:") else f"arn:{spec.partition}:kms:{region}:{account}:key/{key}"), {}


def data_locations(spec: Spec) -> dict[str, tuple[str, ...]]:
    """--data-uri: read-only, per bucket, each a file or a folder."""
    found: dict[str, set[str]] = {}
    for bucket, key in map(split_uri, spec.data_uris):
        found.setdefault(bucket, set()).add(key.strip("/"))
    return {bucket: tuple(sorted(keys)) for bucket, keys in sorted(found.items())}


@dataclass(frozen=True)
class Locations:
    """Key patterns in the pipeline's bucket, and the images the jobs pull."""

    prefix: str  # the jobs read anything under it
    job_writes: tuple[str, ...]  # folders the jobs write under
    models: str  # the training output folders: `regula predict` downloads the model artifacts below them
    code: str  # upsert's step code folder (RegulaSession.code_prefix)
    definition_key: str  # where upsert puts a definition too large to send inline
    images: tuple[str, ...]


def strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def steps(definition: dict):
    """Every step, those inside condition branches too."""
    return all_steps(definition["Steps"])


def pattern(value) -> str:
    """An S3 location as a wildcard pattern: a Std:Join's run-time values (the execution id) become '*'."""
    if isinstance(value, str):
        return value
    join = value.get("Std:Join") if isinstance(value, dict) else None
    if not join:
        return "*"
    return join["On"].join(item if isinstance(item, str) else "*" for item in join["Values"])


def locations(definition: dict, settings: Settings, code_prefix: str, definition_key: str) -> Locations:
    """The layout the policies grant, after checking that the definition keeps to it (IamError naming each place
    that does not)."""
    root = f"s3://{settings.bucket}/{settings.prefix.strip('/')}"
    outputs, models, images = [], [], set()
    for step in steps(definition):
        arguments = step.get("Arguments", {})
        if step["Type"] == StepType.PROCESSING:
            outputs += [o["S3Output"]["S3Uri"] for o in arguments.get("ProcessingOutputConfig", {}).get("Outputs", [])]
            images.add(arguments["AppSpecification"]["ImageUri"])
        elif step["Type"] == StepType.TRAINING:
            models.append(arguments["OutputDataConfig"]["S3OutputPath"])
            outputs += [arguments["OutputDataConfig"]["S3OutputPath"], arguments["CheckpointConfig"]["S3Uri"]]
            images.add(arguments["AlgorithmSpecification"]["TrainingImage"])
    problems = [
        f"{text} is outside {root}/"
        for text in strings(definition)
        if text.startswith("s3://") and not (text == root or text.startswith(f"{root}/"))
    ]
    problems += [
        f"output {pattern(value)} is not under {' or '.join(f'{root}/{f}/' for f in JOB_FOLDERS)}"
        for value in outputs
        if not any(fnmatchcase(pattern(value), f"{root}/{folder}/*") for folder in JOB_FOLDERS)
    ]
    problems += [
        f"training output {pattern(value)} is not {root}/{MODEL_FOLDERS}"
        for value in models
        if not fnmatchcase(pattern(value), f"{root}/{MODEL_FOLDERS}")
    ]
    if problems:
        raise IamError(f"the definition leaves the layout the policies are written for: {'; '.join(problems)}")
    prefix = settings.prefix.strip("/")
    return Locations(
        prefix=prefix,
        job_writes=tuple(f"{prefix}/{folder}" for folder in JOB_FOLDERS),
        models=f"{prefix}/{MODEL_FOLDERS}",
        code=code_prefix.strip("/"),
        definition_key=definition_key,
        images=tuple(sorted(images)),
    )
