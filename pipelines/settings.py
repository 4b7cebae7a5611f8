"""Where a pipeline is rendered for: account, region, bucket, names. Light to import."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PIPELINE_JSON = REPO_ROOT / "pipeline.json"


@dataclass(frozen=True)
class Settings:
    """What the definition is rendered for. The defaults render the committed pipeline.json."""

    pipeline_name: str = "regula"
    region: str = "us-east-1"
    bucket: str = "regula-artifacts"
    prefix: str = "regula"
    role_arn: str = "arn:aws:iam::000000000000:role/RegulaSageMakerExecution"
    rounds: int = 3
    pytorch_version: str = "2.5"
    python_version: str = "py311"
    image_uri: str | None = None  # a custom image for the steps (containers/steps/Dockerfile) instead of AWS's
    allow_auto_approval: bool = False  # may an execution register packages as Approved (ModelApprovalStatus)?
    # Managed spot training. Fixed at render time: CreateTrainingJob refuses MaxWaitTimeInSeconds without spot, and a
    # pipeline variable cannot leave a field out (aws/sagemaker-python-sdk#4140), so a run-time switch cannot exist.
    spot: bool = False
    cache_expire_after: str = "P30D"  # how old a cached step result may be (ISO 8601; SageMaker reads it as text)
    kms_key_id: str | None = None  # encrypts job volumes and outputs
    subnets: tuple[str, ...] = ()  # VPC for every job (with security_group_ids)
    security_group_ids: tuple[str, ...] = ()
    network_isolation: bool = False  # no network in the containers (then no custom CloudWatch metrics from them)
    tags: tuple[tuple[str, str], ...] = ()  # on every job, beside what SageMaker adds

    def __post_init__(self):
        if not 1 <= self.rounds <= 10:
            raise ValueError(f"rounds must be between 1 and 10, got {self.rounds}")
        if bool(self.subnets) != bool(self.security_group_ids):
            raise ValueError("a VPC needs both subnets and security groups")
        if not re.fullmatch(r"P(?!$)(\d+D)?(T(?=\d)(\d+H)?(\d+M)?)?", self.cache_expire_after):
            raise ValueError(
                f"cache expiry must be an ISO 8601 duration such as P30D or PT12H, got {self.cache_expire_after!r}"
            )

    @property
    def s3_root(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    @property
    def demo_data_uri(self) -> str:
        return f"{self.s3_root}/demo/digits.csv"


def code_version() -> str:
    """The git commit the code comes from (with -dirty for local changes), or "unknown"."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit
