"""The registry's model as `regula predict` resolves it: a Rejected package's code never runs unless asked for, a
hostile artifact is one error line, and an approval never overrides a rejection made while it ran."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest
from helpers import regula

from pipelines.local.engine.s3 import ensure_bucket
from pipelines.models.registry import set_status

BUCKET = "regula-artifacts"
GROUP = "regula-models"
# the artifact's serving code: importing it leaves a file behind (the marker) and nothing else
INFERENCE = "import os, pathlib\npathlib.Path(os.environ['REGULA_TEST_MARKER']).write_text('ran')\n"


def artifact(members: dict[str, bytes | str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, body in members.items():
            info = tarfile.TarInfo(name)
            if isinstance(body, str):  # a symbolic link to `body`
                info.type, info.linkname = tarfile.SYMTYPE, body
                tar.addfile(info)
                continue
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


def register(clients, body: bytes, status: str, sha256: str | None = None) -> str:
    s3, sagemaker = clients["s3"], clients["sagemaker"]
    ensure_bucket(s3, BUCKET, "us-east-1")
    s3.put_object(Bucket=BUCKET, Key="runs/x/model.tar.gz", Body=body)
    if not sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]:
        sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    return sagemaker.create_model_package(
        ModelPackageGroupName=GROUP,
        ModelApprovalStatus=status,
        InferenceSpecification={
            "Containers": [
                {"Image": "1.dkr.ecr.us-east-1.amazonaws.com/x:1", "ModelDataUrl": f"s3://{BUCKET}/runs/x/model.tar.gz"}
            ],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        CustomerMetadataProperties={"regula:artifact_sha256": sha256 or hashlib.sha256(body).hexdigest()},
    )["ModelPackageArn"]


def predict(tmp_path: Path, aws, *args: str):
    rows = tmp_path / "rows.csv"
    rows.write_text("a,b\n1,2\n")
    marker = tmp_path / "marker"
    env = {**os.environ, "REGULA_TEST_MARKER": str(marker)}  # the aws fixture's endpoint, for the subprocess
    return regula("predict", "--data", str(rows), *args, env=env), marker


@pytest.mark.parametrize("ref", ["latest", "1"])
def test_predict_refuses_a_rejected_package_unless_allowed(ref, tmp_path, clients, aws):
    code = artifact({"code/steps/__init__.py": b"", "code/steps/inference.py": INFERENCE.encode()})
    register(clients, code, "Rejected")
    result, marker = predict(tmp_path, aws, "--model", ref)
    assert result.returncode == 3
    assert result.stderr.strip() == (
        f"regula: error: version 1 of {GROUP} is Rejected: refusing to run its code (--allow-rejected overrides; a "
        "version number or ARN names another package)"
    )
    assert not marker.exists(), "the rejected package's code ran"

    result, marker = predict(tmp_path, aws, "--model", ref, "--allow-rejected")
    assert marker.read_text() == "ran", result.stderr  # the same package's code runs when asked for


@pytest.mark.parametrize(
    "body, message",
    [
        (artifact({"../escaped.py": b"x"}), "model.tar.gz cannot be unpacked safely: "),
        (artifact({"code/link": "/etc/passwd"}), "model.tar.gz cannot be unpacked safely: AbsoluteLinkError: "),
        (
            artifact({"code/link": "../../../x"}),
            "model.tar.gz cannot be unpacked safely: LinkOutsideDestinationError: ",
        ),
        (b"\x1f\x8b\x08\x00" + b"corrupt" * 20, "model.tar.gz cannot be unpacked safely: "),
        (artifact({"code/x": b"x" * 1000})[:60], "model.tar.gz cannot be unpacked safely: "),
    ],
    ids=["member-outside", "absolute-link", "link-outside", "corrupt-gzip", "truncated"],
)
def test_a_hostile_or_corrupt_artifact_is_one_error_line(body, message, tmp_path, clients, aws):
    register(clients, body, "Approved")
    result, marker = predict(tmp_path, aws, "--model", "latest")
    assert result.returncode == 3, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"regula: error: {message}"), result.stderr
    assert "Traceback" not in result.stderr and not marker.exists()
    assert not (tmp_path.parent / "escaped.py").exists()


def test_an_approval_never_overrides_a_rejection_made_while_it_ran(clients, boto_session, aws):
    """Another reviewer rejects the package after `approve` read it and before it updates: the approval is refused.
    The rejection goes through the moto server from a hook on the approving client's first read of the package."""
    from pipelines.models.registry import RegistryError

    metadata = {
        "regula:accepted": "true", "regula:gap": "0.05", "regula:gap_se": "0.01", "regula:max_gap": "0.1",
        "regula:quality_metric": "balanced_accuracy", "regula:val_quality": "0.9", "regula:baseline_quality": "0.5",
        "regula:min_lift": "0.05", "regula:min_quality": "0",
    }  # fmt: skip
    reviewer = clients["sagemaker"]
    arn = register(clients, artifact({"code/x": b"x"}), "PendingManualApproval")
    reviewer.update_model_package(
        ModelPackageArn=arn, ModelApprovalStatus="PendingManualApproval", CustomerMetadataProperties=metadata
    )
    approver = boto_session.client("sagemaker", endpoint_url=aws.endpoint)
    reads = []

    def reject_after_the_first_read(**_):
        reads.append(1)
        if len(reads) == 1:
            reviewer.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Rejected",
                                          CustomerMetadataProperties=metadata)  # fmt: skip

    approver.meta.events.register("after-call.sagemaker.DescribeModelPackage", reject_after_the_first_read)
    with pytest.raises(
        RegistryError, match=r"refusing to approve version 1: it changed while this command ran \(now Rejected"
    ):
        set_status(approver, GROUP, "latest", "Approved", echo=lambda _: None)
    assert len(reads) == 2, "read once to decide, once more right before the update"
    assert reviewer.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"] == "Rejected"

    # without a concurrent change the same approval goes through
    reviewer.update_model_package(
        ModelPackageArn=arn, ModelApprovalStatus="PendingManualApproval", CustomerMetadataProperties=metadata
    )
    set_status(approver, GROUP, "latest", "Approved", echo=lambda _: None)
    assert reviewer.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"] == "Approved"
