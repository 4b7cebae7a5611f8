"""What the `regula` command modules share: the settings options, KEY=VALUE lists, AWS clients and output.

Light on purpose: `regula --help` imports it, so boto3 and json are imported only when a command uses them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipelines.errors import UsageError
from pipelines.settings import Settings


def key_values(items: list[str] | None, option: str = "--param") -> dict[str, str]:
    values = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{option} takes KEY=VALUE, got {item!r}")
        values[key] = value
    return values


SETTINGS_OPTIONS = (
    "pipeline_name",
    "region",
    "bucket",
    "prefix",
    "role_arn",
    "rounds",
    "image_uri",
    "training_device",
    "training_image_uri",
    "allow_auto_approval",
    "spot",
    "cache_expire_after",
    "kms_key_id",
    "subnets",
    "security_group_ids",
    "network_isolation",
    "tags",
    "model_code",
)


def settings_from(args: argparse.Namespace) -> Settings:
    overrides = {k: getattr(args, k) for k in SETTINGS_OPTIONS if getattr(args, k, None) is not None}
    for name in ("subnets", "security_group_ids"):
        if name in overrides:
            overrides[name] = tuple(overrides[name])
    if "model_code" in overrides:  # rendering runs in the repository: a path relative to where the user is
        overrides["model_code"] = str(Path(overrides["model_code"]).resolve())
    if "tags" in overrides:
        overrides["tags"] = tuple(key_values(overrides["tags"], "--job-tag").items())
    return Settings(**overrides)  # a setting it refuses is a UsageError


# what changes a local run (`run --local`): the others only shape what SageMaker would be asked for
LOCAL_SETTINGS = ("--pipeline-name", "--region", "--bucket", "--prefix", "--rounds", "--allow-auto-approval")


def add_settings_options(parser: argparse.ArgumentParser, local: bool = False) -> None:
    """The Settings options; `local`: those that do nothing in a local run are accepted but left out of --help."""

    def shown(option: str, text: str) -> str:
        return argparse.SUPPRESS if local and option not in LOCAL_SETTINGS else text

    title = "the rendered definition (settings)" if local else "where the pipeline is rendered for"
    group = parser.add_argument_group(title)
    group.add_argument("--pipeline-name", help="default: regula")
    group.add_argument("--region", help="default: us-east-1")
    group.add_argument("--bucket", help="S3 bucket for code and artifacts (default: regula-artifacts)")
    group.add_argument("--prefix", help="key prefix in the bucket (default: regula)")
    group.add_argument("--role-arn", help=shown("--role-arn", "SageMaker execution role"))
    group.add_argument("--rounds", type=int, help="rounds in the retraining ladder (default: 3)")
    group.add_argument(
        "--image-uri",
        help=shown(
            "--image-uri",
            "the Regula image (containers/) for processing, serving and CPU training; "
            "default: regula-steps:<PyTorch>-cpu in the role's account's ECR, where `containers/build` pushes it",
        ),
    )
    group.add_argument(
        "--training-device",
        choices=["cpu", "gpu"],
        help=shown(
            "--training-device",
            "what training runs on: the image's CPU or GPU build (default: cpu); `start` refuses other instances",
        ),
    )
    group.add_argument(
        "--training-image-uri",
        help=shown("--training-image-uri", "the image training runs (default: --image-uri, or the GPU build)"),
    )
    group.add_argument(
        "--allow-auto-approval",
        action="store_true",
        default=None,
        help="let executions register packages as Approved (ModelApprovalStatus); default: review only",
    )
    jobs = group if local else parser.add_argument_group("how the jobs run (rendered into the definition)")
    jobs.add_argument(
        "--spot", action="store_true", default=None, help=shown("--spot", "managed spot training, with checkpoints")
    )
    jobs.add_argument(
        "--cache-expire-after",
        help=shown("--cache-expire-after", "how old a cached step may be, ISO 8601 (default: P30D)"),
    )
    jobs.add_argument("--kms-key-id", help=shown("--kms-key-id", "KMS key for job volumes and outputs"))
    jobs.add_argument(
        "--subnet", dest="subnets", action="append", help=shown("--subnet", "VPC subnet for the jobs (repeat)")
    )
    jobs.add_argument(
        "--security-group",
        dest="security_group_ids",
        action="append",
        help=shown("--security-group", "VPC security group for the jobs (repeat)"),
    )
    jobs.add_argument(
        "--network-isolation",
        action="store_true",
        default=None,
        help=shown("--network-isolation", "no network in the containers"),
    )
    jobs.add_argument(
        "--job-tag",
        dest="tags",
        action="append",
        metavar="KEY=VALUE",
        help=shown("--job-tag", "tag every job (repeat)"),
    )
    parser.add_argument(  # shown locally too: the model a local run trains
        "--model-code",
        metavar="PATH",
        help="your own PyTorch model: a .py file (or a folder with model.py) defining build_model(spec, dropout) "
        "(docs/model-contract.md); default: Regula's MLP",
    )


def client(args: argparse.Namespace, service: str):
    import boto3

    return boto3.Session(region_name=settings_from(args).region).client(service)


def print_json(value) -> None:
    import json

    print(json.dumps(value, indent=2, default=str))


def notice(text: str) -> None:
    print(text, file=sys.stderr)  # beside the data on standard output, never in it
