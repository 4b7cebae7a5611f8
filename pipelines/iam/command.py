"""`regula iam`: least-privilege IAM policies for the two roles Regula needs on a real account, as JSON (each role's
trust and permission policies) or as a CloudFormation template.

It renders the definition for the given settings (the same options as `upsert`) and writes the policies for what
that definition does: the S3 layout and the images are checked against it (spec.py), the statements are in
policies.py with the reason for every action in calls.py, the template in template.py.

Light to import: rendering (the SDK) happens only when the command runs.
"""

from __future__ import annotations

import argparse
import json
import re

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

NAME = "iam"
HELP = "least-privilege IAM policies for the SageMaker execution role and the CI role (JSON or CloudFormation)"
DEFAULT_EXECUTION_ROLE = Settings().role_arn.rsplit("/", 1)[-1]  # RegulaSageMakerExecution


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=("json", "cloudformation"),
        default="json",
        help="json: the policies; cloudformation: a template creating the roles (default: json)",
    )
    parser.add_argument("--account", help="AWS account id (default: the account of these credentials, from STS)")
    parser.add_argument(
        "--github-repo", help="OWNER/NAME of the repository whose GitHub Actions may assume the CI role (required)"
    )
    parser.add_argument(
        "--github-environment",
        default=GITHUB_ENVIRONMENT,
        help=f"the deploy job's environment (default: {GITHUB_ENVIRONMENT}, as in .github/workflows/regula.yml)",
    )
    parser.add_argument("--ci-role-name", default=DEFAULT_CI_ROLE, help=f"default: {DEFAULT_CI_ROLE}")
    parser.add_argument(
        "--metrics-namespace",
        action="append",
        help=f"CloudWatch namespace(s) executions may send metrics to (MetricsNamespace; default: {METRICS_NAMESPACE})",
    )
    parser.add_argument(
        "--model-package-group",
        default=MODEL_PACKAGE_GROUP,
        help=f"registry group (ModelPackageGroupName; default: {MODEL_PACKAGE_GROUP})",
    )
    parser.add_argument(
        "--data-uri",
        action="append",
        help="s3:// file or folder the jobs may read (InputDataUri, and the prefixes of the images an image manifest "
        "names outside it), repeatable",
    )


def account_of(args: argparse.Namespace, settings: Settings) -> str:
    if args.account:
        if not re.fullmatch(r"\d{12}", args.account):
            raise IamError(f"--account takes the 12-digit account id, got {args.account!r}")
        return args.account
    if args.role_arn:
        return role_parts(args.role_arn)[0]
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


def refuse_wildcards(args: argparse.Namespace, settings: Settings, role_arn: str) -> None:
    """IamError naming every option whose value would be a wildcard in the policies, and a model package group or
    namespace that AWS itself would refuse."""
    named = {
        "--bucket": [settings.bucket],
        "--prefix": [settings.prefix],
        "--pipeline-name": [settings.pipeline_name],
        "--role-arn": [role_arn],
        "--kms-key-id": [settings.kms_key_id or ""],
        "--ci-role-name": [args.ci_role_name],
        "--github-environment": [args.github_environment],
        "--github-repo": [args.github_repo],
        "--metrics-namespace": list(args.metrics_namespace or []),
        "--model-package-group": [args.model_package_group],
        "--data-uri": list(args.data_uri or []),
    }
    problems = [
        f"{option} {value!r} holds an IAM wildcard or policy variable (*, ?, ${{...}}): name the resources exactly"
        for option, values in named.items()
        for value in values
        if IAM_WILDCARD.search(str(value))
    ]
    checked = [("ModelPackageGroupName", "--model-package-group", args.model_package_group)]
    checked += [("MetricsNamespace", "--metrics-namespace", n) for n in args.metrics_namespace or []]
    for parameter, option, value in checked if not problems else []:
        problem = string_problem(parameter, value)
        problems += [problem.replace(parameter, option, 1)] if problem else []
    if problems:
        raise IamError("; ".join(problems))


def spec_from(args: argparse.Namespace, settings: Settings, account: str) -> Spec:
    if not args.github_repo or not re.fullmatch(r"[\w.-]+/[\w.-]+", args.github_repo):
        raise IamError(
            "pass --github-repo OWNER/NAME: the CI role trusts GitHub Actions runs of that repository's "
            f"{args.github_environment!r} environment only"
        )
    role_arn = args.role_arn or f"arn:{partition(settings.region)}:iam::{account}:role/{DEFAULT_EXECUTION_ROLE}"
    role_account = role_parts(role_arn)[0]
    if role_account != account:
        raise IamError(f"--role-arn is in account {role_account}, the policies are for account {account}")
    for uri in args.data_uri or []:
        if not uri.startswith("s3://"):
            raise IamError(f"--data-uri takes s3://bucket/key, got {uri!r}")
    refuse_wildcards(args, settings, role_arn)
    return Spec(
        settings=settings,
        account=account,
        execution_role_arn=role_arn,
        ci_role_name=args.ci_role_name,
        github_repo=args.github_repo,
        github_environment=args.github_environment,
        namespaces=tuple(args.metrics_namespace or [METRICS_NAMESPACE]),
        model_package_group=args.model_package_group,
        data_uris=tuple(args.data_uri or []),
    )


def command(settings: Settings, args: argparse.Namespace) -> int:
    from pipelines.aws.deploy import definition_key
    from pipelines.definition.render import render
    from pipelines.iam.policies import roles
    from pipelines.iam.spec import locations
    from pipelines.iam.template import cloudformation

    template = args.format == "cloudformation"
    # a template is deployed into the stack's account: no account needed, unless --role-arn names one
    account = PLACEHOLDER_ACCOUNT if template and not (args.account or args.role_arn) else None
    spec = spec_from(args, settings, account or account_of(args, settings))
    text, session = render(settings)
    where = locations(json.loads(text), settings, session.code_prefix, definition_key(settings))
    print(json.dumps(cloudformation(spec, where) if template else roles(spec, where), indent=2))
    return 0
