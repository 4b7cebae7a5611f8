"""`regula iam`: least-privilege IAM policies for the SageMaker execution role and the CI role, printed as JSON (the
work is in iam/build.py)."""

from __future__ import annotations

import argparse

from pipelines.cli.shared import add_settings_options, print_json, settings_from
from pipelines.errors import ExitStatus
from pipelines.iam import build  # light: rendering is imported when it runs
from pipelines.iam.spec import DEFAULT_CI_ROLE, GITHUB_ENVIRONMENT
from steps.defaults import METRICS_NAMESPACE, MODEL_PACKAGE_GROUP

HELP = "least-privilege IAM policies for the SageMaker execution role and the CI role (JSON or CloudFormation)"


def cmd_iam(args: argparse.Namespace) -> int:
    options = build.Options(
        format=args.format,
        account=args.account or "",
        role_arn=args.role_arn or "",
        github_repo=args.github_repo or "",
        github_environment=args.github_environment,
        ci_role_name=args.ci_role_name,
        metrics_namespaces=tuple(args.metrics_namespace or ()),
        model_package_group=args.model_package_group,
        data_uris=tuple(args.data_uri or ()),
    )
    print_json(build.build(settings_from(args), options))
    return ExitStatus.SUCCESS


def add_parsers(commands) -> None:
    parser = commands.add_parser("iam", help=HELP)
    add_settings_options(parser)
    parser.add_argument(
        "--format",
        choices=build.FORMATS,
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
    parser.set_defaults(func=cmd_iam)
