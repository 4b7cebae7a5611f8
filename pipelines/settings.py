"""Where a pipeline is rendered for: account, region, bucket, names. Light to import."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pipelines.errors import UsageValueError

REPO_ROOT = Path(__file__).resolve().parent.parent
PIPELINE_JSON = REPO_ROOT / "pipeline.json"
IMAGE_REPOSITORY = "regula-steps"  # the ECR repository containers/build pushes to
TRAINING_DEVICES = ("cpu", "gpu")
DEFAULT_TRAINING_INSTANCE = {"cpu": "ml.m5.xlarge", "gpu": "ml.g5.xlarge"}


@dataclass(frozen=True)
class Settings:
    """What the definition is rendered for. The defaults render the committed pipeline.json."""

    pipeline_name: str = "regula"
    region: str = "us-east-1"
    bucket: str = "regula-artifacts"
    prefix: str = "regula"
    role_arn: str = "arn:aws:iam::000000000000:role/RegulaSageMakerExecution"
    rounds: int = 3
    # The Regula image (containers/steps/Dockerfile: AWS's PyTorch SageMaker image plus the steps' pins and `serve`)
    # runs processing, serving and CPU training; its tag names the PyTorch version and the device it was built for.
    pytorch_version: str = "2.13"
    image_uri: str | None = None  # default: regula-steps:<pytorch_version>-cpu in the account's ECR (regula_image)
    # Training's device is fixed at render time, as the image is: "gpu" trains on the CUDA build of the image and
    # defaults TrainingInstanceType to a GPU type; `regula start` refuses an instance type the image cannot use.
    training_device: str = "cpu"
    training_image_uri: str | None = None  # default: image_uri on CPU, regula-steps:<pytorch_version>-gpu on GPU
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
    # The team's own PyTorch model (steps/model_code.py): a .py file or a folder with model.py, uploaded with
    # training's code and packed into every artifact. None: Regula's MLP.
    model_code: str | None = None

    def __post_init__(self):
        if self.training_device not in TRAINING_DEVICES:
            raise UsageValueError(
                f"training device must be one of {', '.join(TRAINING_DEVICES)}, got {self.training_device!r}"
            )
        if self.training_device == "gpu" and self.image_uri and not self.training_image_uri:
            raise UsageValueError(
                "--training-device gpu with --image-uri needs --training-image-uri: the image's GPU build "
                "(containers/build gpu), since processing and serving keep the CPU image"
            )
        if not 1 <= self.rounds <= 10:
            raise UsageValueError(f"rounds must be between 1 and 10, got {self.rounds}")
        if bool(self.subnets) != bool(self.security_group_ids):
            raise UsageValueError("a VPC needs both subnets and security groups")
        if not re.fullmatch(r"P(?!$)(\d+D)?(T(?=\d)(\d+H)?(\d+M)?)?", self.cache_expire_after):
            raise UsageValueError(
                f"cache expiry must be an ISO 8601 duration such as P30D or PT12H, got {self.cache_expire_after!r}"
            )

    @property
    def s3_root(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    @property
    def demo_data_uri(self) -> str:
        return f"{self.s3_root}/demo/digits.csv"

    @property
    def account(self) -> str:
        """The execution role's account (where the Regula image is). Checked here, not at construction, so that
        `regula doctor` can report a malformed role ARN beside every other problem."""
        if not re.fullmatch(r"arn:aws[a-z-]*:iam::\d{12}:role/.+", self.role_arn):
            raise UsageValueError(
                f"role ARN must look like arn:aws:iam::<12-digit account>:role/<name>, got {self.role_arn!r}"
            )
        return self.role_arn.split(":")[4]

    def regula_image(self, device: str) -> str:
        """Where `containers/build DEVICE` pushes the Regula image: the execution role's account, this region."""
        domain = "amazonaws.com.cn" if self.region.startswith("cn-") else "amazonaws.com"
        return f"{self.account}.dkr.ecr.{self.region}.{domain}/{IMAGE_REPOSITORY}:{self.pytorch_version}-{device}"

    @property
    def steps_image(self) -> str:
        """Processing (preprocess, evaluate) and serving: always CPU instances, so the CPU image."""
        return self.image_uri or self.regula_image("cpu")

    @property
    def training_image(self) -> str:
        if self.training_image_uri:
            return self.training_image_uri
        return self.steps_image if self.training_device == "cpu" else self.regula_image("gpu")

    @property
    def training_instance_type(self) -> str:
        """TrainingInstanceType's default: one the training image can use."""
        return DEFAULT_TRAINING_INSTANCE[self.training_device]


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
