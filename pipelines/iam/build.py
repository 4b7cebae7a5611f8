"""`regula iam`'s work: least-privilege IAM policies for the two roles Regula needs on a real account, as data (each
role's trust and permission policies) or as a CloudFormation template (pipelines/cli/iam.py prints them).

It renders the definition for the given settings (the same options as `upsert`) and builds the policies for what
that definition does: the S3 layout and the images are checked against it (spec.py), the statements are in
policies.py with the reason for every action in calls.py, the template in template.py. What the user asked for that
is not a setting comes as `Options`; what cannot be written raises IamError (a usage error).

Light to import: rendering (the SDK) happens only when `build` runs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from pipelines.iam.spec import (
    DEFAULT_CI_ROLE,
    GITHUB_ENVIRONMENT,
    PLACEHOLDER_ACCOUNT,
    IamError,
    Spec,
    partition,
    role_parts,
)
from pipelines.settings import Settings
from steps.defaults import METRICS_NAMESPACE, MODEL_PACKAGE_GROUP
from steps.parameters import string_problem

DEFAULT_EXECUTION_ROLE = Settings().role_arn.rsplit("/", 1)[-1]  # RegulaSageMakerExecution
FORMATS = ("json", "cloudformation")


@dataclass(frozen=True)
class Options:
    """What the policies are for beyond the settings. `role_arn` is the execution role the user named ("" for none:
    the Settings' default is the placeholder, so the role is then `DEFAULT_EXECUTION_ROLE` in `account`); `account`
    "" asks STS, unless the role or a CloudFormation template (deployed into its stack's account) settles it."""

    format: str = "json"  # one of FORMATS
    account: str = ""
    role_arn: str = ""
    github_repo: str = ""
    github_environment: str = GITHUB_ENVIRONMENT
    ci_role_name: str = DEFAULT_CI_ROLE
    metrics_namespaces: tuple[str, ...] = ()  # () for METRICS_NAMESPACE
    model_package_group: str = MODEL_PACKAGE_GROUP
    data_uris: tuple[str, ...] = ()


def account_of(options: Options, settings: Settings) -> str:
    if options.account:
        if not re.fullmatch(r"\d{12}", options.account):
            raise IamError(f"--account takes the 12-digit account id, got {options.account!r}")
        return options.account
    if options.role_arn:
        return role_parts(options.role_arn)[0]
    try:
        import boto3

        return boto3.Session(region_name=settings.region).client("sts").get_caller_identity()["Account"]
    except Exception as error:  # noqa: BLE001 - no credentials, no network: the user can say it
        raise IamError(
            f"pass --account: could not ask STS which account these credentials belong to ({error})"
        ) from None


# In an IAM resource or condition `*` and `?` match anything and `${...}` is a policy variable: a name holding one
# would widen the policy beyond the named resources.
IAM_WILDCARD = re.compile(r"[*?]|\$\{")


def refuse_wildcards(options: Options, settings: Settings, role_arn: str) -> None:
    """IamError naming every option whose value would be a wildcard in the policies, and a model package group or
    namespace that AWS itself would refuse."""
    named = {
        "--bucket": [settings.bucket],
        "--prefix": [settings.prefix],
        "--pipeline-name": [settings.pipeline_name],
        "--role-arn": [role_arn],
        "--kms-key-id": [settings.kms_key_id or ""],
        "--ci-role-name": [options.ci_role_name],
        "--github-environment": [options.github_environment],
        "--github-repo": [options.github_repo],
        "--metrics-namespace": list(options.metrics_namespaces),
        "--model-package-group": [options.model_package_group],
        "--data-uri": list(options.data_uris),
    }
    problems = [
        f"{option} {value!r} holds an IAM wildcard or policy variable (*, ?, ${{...}}): name the resources exactly"
        for option, values in named.items()
        for value in values
        if IAM_WILDCARD.search(str(value))
    ]
    checked = [("ModelPackageGroupName", "--model-package-group", options.model_package_group)]
    checked += [("MetricsNamespace", "--metrics-namespace", n) for n in options.metrics_namespaces]
    for parameter, option, value in checked if not problems else []:
        problem = string_problem(parameter, value)
        problems += [problem.replace(parameter, option, 1)] if problem else []
    if problems:
        raise IamError("; ".join(problems))


def spec_from(options: Options, settings: Settings, account: str) -> Spec:
    if not options.github_repo or not re.fullmatch(r"[\w.-]+/[\w.-]+", options.github_repo):
        raise IamError(
            "pass --github-repo OWNER/NAME: the CI role trusts GitHub Actions runs of that repository's "
            f"{options.github_environment!r} environment only"
        )
    role_arn = options.role_arn or f"arn:{partition(settings.region)}:iam::{account}:role/{DEFAULT_EXECUTION_ROLE}"
    role_account = role_parts(role_arn)[0]
    if role_account != account:
        raise IamError(f"--role-arn is in account {role_account}, the policies are for account {account}")
    for uri in options.data_uris:
        if not uri.startswith("s3://"):
            raise IamError(f"--data-uri takes s3://bucket/key, got {uri!r}")
    refuse_wildcards(options, settings, role_arn)
    return Spec(
        settings=settings,
        account=account,
        execution_role_arn=role_arn,
        ci_role_name=options.ci_role_name,
        github_repo=options.github_repo,
        github_environment=options.github_environment,
        namespaces=options.metrics_namespaces or (METRICS_NAMESPACE,),
        model_package_group=options.model_package_group,
        data_uris=options.data_uris,
    )


def build(settings: Settings, options: Options) -> dict:
    """The two roles' policies (`policies.roles`), or with format "cloudformation" the template creating them."""
    from pipelines.aws.deploy import definition_key
    from pipelines.definition.render import render
    from pipelines.iam.policies import roles
    from pipelines.iam.spec import locations
    from pipelines.iam.template import cloudformation

    if options.format not in FORMATS:
        raise IamError(f"format {options.format!r} is not one of {', '.join(FORMATS)}")
    template = options.format == "cloudformation"
    # a template is deployed into the stack's account: no account needed, unless --role-arn names one
    account = PLACEHOLDER_ACCOUNT if template and not (options.account or options.role_arn) else None
    spec = spec_from(options, settings, account or account_of(options, settings))
    text, session = render(settings)
    where = locations(json.loads(text), settings, session.code_prefix, definition_key(settings))
    return cloudformation(spec, where) if template else roles(spec, where)
