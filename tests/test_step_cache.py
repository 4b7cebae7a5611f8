"""Step caching in local runs: SageMaker's cache key and expiry, results restored into a new run's S3 and folder."""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from pipelines.local.engine.cache import StepCache, parse_duration
from pipelines.local.engine.runner import LocalRunner
from pipelines.local.engine.s3 import split_uri
from pipelines.local.run import run_local
from pipelines.settings import Settings

BUCKET = "cache-test"
# writes argv[2] into the folder argv[1], and the input folder argv[3] (if any) beside it
WRITE = (
    "import pathlib, shutil, sys; out = pathlib.Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True); "
    "(out / 'result.txt').write_text(sys.argv[2]); "
    "sys.argv[3:] and shutil.copytree(sys.argv[3], out / 'input')"
)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("P30D", timedelta(days=30)),
        ("PT12H", timedelta(hours=12)),
        ("P4DT12H", timedelta(days=4, hours=12)),
        ("PT1M", timedelta(minutes=1)),
        ("P1M", timedelta(days=30)),  # a month before T, a minute after it
        ("P1Y2W", timedelta(days=379)),
        ("PT0.5S", timedelta(seconds=0.5)),
        ("30d", timedelta(days=30)),  # AWS's own examples leave out the P
        ("T16m", timedelta(minutes=16)),
    ],
)
def test_expire_after_is_an_iso_8601_duration(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "P", "PT", "P1DT", "30", "P1H", "1 day"])
def test_a_malformed_expire_after_is_refused(text):
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_duration(text)


def processing(name: str, text, inputs: list | None = None) -> dict:
    """A job writing `text` into its output folder (s3://BUCKET/<execution>/<name>), and its inputs beside it."""
    output = "/opt/ml/processing/output"
    arguments = [output, text, *(["/opt/ml/processing/input/upstream"] if inputs else [])]
    return {
        "Name": name,
        "Type": "Processing",
        "Arguments": {
            "AppSpecification": {"ContainerEntrypoint": ["python3", "-c", WRITE], "ContainerArguments": arguments},
            "ProcessingInputs": inputs or [],
            "ProcessingOutputConfig": {
                "Outputs": [
                    {
                        "OutputName": "out",
                        "S3Output": {
                            "S3Uri": {
                                "Std:Join": {
                                    "On": "/",
                                    "Values": [f"s3://{BUCKET}", {"Get": "Execution.PipelineExecutionId"}, name],
                                }
                            },
                            "LocalPath": output,
                        },
                    }
                ]
            },
        },
        "CacheConfig": {"Enabled": True, "ExpireAfter": "PT1H"},
    }


def definition(text: str = "hello") -> dict:
    upstream = {
        "InputName": "upstream",
        "S3Input": {
            "S3Uri": {"Get": "Steps.Make.ProcessingOutputConfig.Outputs['out'].S3Output.S3Uri"},
            "LocalPath": "/opt/ml/processing/input/upstream",
        },
    }
    return {
        "Parameters": [{"Name": "Text", "Type": "String", "DefaultValue": text}],
        "Steps": [processing("Make", {"Get": "Parameters.Text"}), processing("Use", "used", [upstream])],
    }


def run_once(runs: Path, s3, text: str = "hello", now=None, use_cache: bool = True):
    runs.mkdir(exist_ok=True)
    run_dir = runs / f"run{len(list(runs.glob('run*'))) + 1}"
    lines = []
    cache = StepCache(runs, now=now) if now else StepCache(runs)
    runner = LocalRunner(
        definition(text), run_dir, s3, None, "us-east-1", echo=lines.append, cache=cache, use_cache=use_cache
    )
    execution = runner.run("p")
    assert execution.status == "Succeeded", execution.failure_reason
    return execution, lines, run_dir


def read(s3, uri: str) -> str:
    bucket, key = split_uri(uri)
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()


def test_a_hit_restores_the_results_at_their_original_uris_and_a_downstream_step_hits_too(tmp_path, clients, aws):
    s3 = clients["s3"]
    s3.create_bucket(Bucket=BUCKET)
    runs = tmp_path / "runs"
    first, _, first_dir = run_once(runs, s3)
    uri = first.properties["Use"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    assert first.execution_id in uri

    requests.post(f"{aws.endpoint}/moto-api/reset", timeout=10)  # as a new embedded server: an empty S3
    s3.create_bucket(Bucket=BUCKET)
    second, lines, second_dir = run_once(runs, s3)
    assert f"-> Make (Processing) cached from {first_dir}" in lines
    assert f"-> Use (Processing) cached from {first_dir}" in lines
    assert second.properties == first.properties  # the original output URIs, as SageMaker propagates them
    assert read(s3, f"{uri}/result.txt") == "used" and read(s3, f"{uri}/input/result.txt") == "hello"
    assert (second_dir / "jobs" / "Use" / "opt/ml/processing/output/input/result.txt").read_text() == "hello"
    records = {r.name: r for r in second.steps}
    assert records["Make"].cache_source_execution == first.arn and records["Make"].attempts == 0

    changed, lines, _ = run_once(runs, s3, text="changed")  # a parameter in the arguments: another key
    assert not [line for line in lines if "cached from" in line]
    changed_uri = changed.properties["Use"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    assert read(s3, f"{changed_uri}/input/result.txt") == "changed"

    _, lines, _ = run_once(runs, s3, use_cache=False)  # --no-cache: runs, and records
    assert not [line for line in lines if "cached from" in line]
    index = json.loads((runs / ".cache" / "index.json").read_text())
    assert sum(len(results) for results in index["entries"].values()) == 6


def test_an_expired_or_altered_result_misses(tmp_path, clients):
    s3 = clients["s3"]
    s3.create_bucket(Bucket=BUCKET)
    runs = tmp_path / "runs"
    _, _, first_dir = run_once(runs, s3)

    later = datetime.now(UTC) + timedelta(hours=2)  # ExpireAfter is PT1H
    _, lines, _ = run_once(runs, s3, now=lambda: later)
    assert "-> Make (Processing)" in lines and not [line for line in lines if "cached from" in line]
    assert f"   (cache: the result of {first_dir} is older than ExpireAfter (2.0 hours old))" in lines

    # the second run's results are fresh now: alter one file of it, and the step runs again
    for result in (runs / "run2").glob("jobs/Make/opt/ml/processing/output/result.txt"):
        result.write_text("tampered")
    _, lines, _ = run_once(runs, s3, now=lambda: later)
    assert "-> Make (Processing)" in lines
    assert any("result.txt of the result of" in line and "has changed" in line for line in lines)


def record_many(runs: str, worker: int) -> None:
    cache = StepCache(Path(runs))
    for i in range(10):
        cache.record(f"key-{worker}-{i}", {"run": "run1", "time": datetime.now(UTC).isoformat(), "objects": []})


def test_concurrent_writers_keep_the_index_whole(tmp_path):
    (tmp_path / "run1").mkdir()
    with ProcessPoolExecutor(4) as pool:
        list(pool.map(record_many, [str(tmp_path)] * 4, range(4)))
    index = json.loads((tmp_path / ".cache" / "index.json").read_text())
    assert len(index["entries"]) == 40
    assert [p.name for p in (tmp_path / ".cache").iterdir() if p.name.startswith(".index-")] == []


@pytest.mark.slow
def test_a_second_run_reuses_preprocess_and_training_and_a_changed_parameter_retrains(tmp_path, clients, aws):
    sagemaker = clients["sagemaker"]

    def run(**params):
        lines = []
        report = run_local(Settings(), runs_dir=tmp_path / "runs", echo=lines.append, params={"MaxGap": "5", **params})
        assert report["status"] == "Succeeded", report["failure_reason"]
        package = sagemaker.describe_model_package(ModelPackageName=report["model_package_arn"])
        return report, lines, package

    first, _, first_package = run()
    [first_dir] = [p for p in (tmp_path / "runs").glob("2*")]
    requests.post(f"{aws.endpoint}/moto-api/reset", timeout=10)  # as the embedded server: a new, empty one

    second, lines, second_package = run()
    assert f"-> Preprocess (Processing) cached from {first_dir}" in lines
    assert f"-> TrainRound1 (Training) cached from {first_dir}" in lines
    assert "-> EvaluateRound1 (Processing)" in lines  # its arguments hold the execution id: never a hit
    sha = second_package["CustomerMetadataProperties"]["regula:artifact_sha256"]
    assert sha == first_package["CustomerMetadataProperties"]["regula:artifact_sha256"]
    url = second_package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    assert url == first_package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    steps = {s["name"]: s for s in second["steps"]}
    assert steps["TrainRound1"]["cached_from"] == str(first_dir) and steps["TrainRound1"]["attempts"] == 0
    assert steps["TrainRound1"]["cache_source_execution"] == first["execution_arn"]
    [second_dir] = [p for p in (tmp_path / "runs").glob("2*") if p != first_dir]
    assert (second_dir / "jobs" / "TrainRound1" / "model.tar.gz").read_bytes() == (
        first_dir / "jobs" / "TrainRound1" / "model.tar.gz"
    ).read_bytes()

    _, lines, _ = run(MaxEpochs="20")  # a hyperparameter: another training key (and Preprocess checks it too)
    assert "-> TrainRound1 (Training)" in lines and "-> Preprocess (Processing)" in lines


def test_a_cache_entry_recording_a_file_outside_its_run_folder_is_not_used(tmp_path):
    from pipelines.local.engine.cache import StepCache

    cache = StepCache(tmp_path)
    entry = {"run": "r1", "objects": [{"path": "../../etc/passwd", "size": 1, "sha256": "x", "uri": "s3://b/k"}]}
    assert "outside its run folder" in cache.check(entry)


# -- a crafted index ------------------------------------------------------------------------------------------------


def index_of(runs: Path) -> dict:
    return json.loads((runs / ".cache" / "index.json").read_text())


def write_index(runs: Path, index: dict) -> None:
    (runs / ".cache" / "index.json").write_text(json.dumps(index))


def make_entry(index: dict) -> dict:
    [entry] = [e for results in index["entries"].values() for e in results if e["step"] == "Make"]
    return entry


def plant(runs: Path, entry: dict, uri: str, body: bytes) -> None:
    """What an attacker with the runs folder adds to a result: a file of theirs, listed with its true sha256."""
    import hashlib

    path = "jobs/Make/opt/ml/processing/output/planted.py"
    (runs / entry["run"] / path).write_bytes(body)
    entry["objects"].append({"uri": uri, "path": path, "size": len(body), "sha256": hashlib.sha256(body).hexdigest()})


def test_a_crafted_entry_cannot_write_over_the_step_code(tmp_path, clients):
    s3 = clients["s3"]
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="code/train.py", Body=b"verified")
    runs = tmp_path / "runs"
    run_once(runs, s3)
    index = index_of(runs)
    plant(runs, make_entry(index), f"s3://{BUCKET}/code/train.py", b"import os; os.system('touch pwned')")
    write_index(runs, index)

    _, lines, _ = run_once(runs, s3)
    assert "-> Make (Processing)" in lines, "the step ran: the crafted result was not used"
    assert f"   (cache: the result of run1 would write outside Make's outputs: s3://{BUCKET}/code/train.py)" in lines
    assert s3.get_object(Bucket=BUCKET, Key="code/train.py")["Body"].read() == b"verified"


def test_an_entry_whose_properties_point_a_downstream_step_elsewhere_is_not_used(tmp_path, clients):
    s3 = clients["s3"]
    s3.create_bucket(Bucket=BUCKET)
    runs = tmp_path / "runs"
    run_once(runs, s3)
    index = index_of(runs)
    make_entry(index)["properties"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"] = f"s3://{BUCKET}/x"
    write_index(runs, index)
    _, lines, _ = run_once(runs, s3)
    assert f"   (cache: the result of run1 would write outside Make's outputs: s3://{BUCKET}/x)" in lines
    assert "-> Make (Processing)" in lines


@pytest.mark.parametrize(
    "change, message",
    [
        ({"run": "../elsewhere"}, "a cache entry names a run outside the runs folder"),
        ({"run": "/tmp"}, "a cache entry names a run outside the runs folder"),
        ({"time": "2999-01-01T00:00:00+00:00"}, "is recorded in the future (2999-01-01T00:00:00+00:00)"),
        ({"time": "2026-01-01T00:00:00"}, "an unreadable cache entry (TypeError)"),
        ({"log": "../../../etc/passwd"}, "records a file outside its run folder's jobs/Make: ../../../etc/passwd"),
        ({"step": "Use"}, "records a file outside its run folder's jobs/Use: jobs/Make/"),
        ({"objects": "x"}, "an unreadable cache entry (fields objects)"),
    ],
)
def test_a_crafted_entry_is_not_used_and_says_why(change, message, tmp_path, clients):
    s3 = clients["s3"]
    s3.create_bucket(Bucket=BUCKET)
    runs = tmp_path / "runs"
    run_once(runs, s3)
    index = index_of(runs)
    make_entry(index).update(change)
    write_index(runs, index)
    _, lines, _ = run_once(runs, s3)
    assert "-> Make (Processing)" in lines
    assert any(line.startswith("   (cache: ") and message in line for line in lines), lines


@pytest.mark.parametrize(
    "index",
    [
        {"version": 1, "entries": []},
        {"version": 1, "entries": {"k": "abc"}},
        {"version": 1, "entries": {"k": [1, 2]}},
        {"version": 1, "entries": {"k": [{"run": 5}]}},
        [1, 2, 3],
    ],
)
def test_an_index_of_the_wrong_shape_counts_as_empty(index, tmp_path, clients):
    s3 = clients["s3"]
    s3.create_bucket(Bucket=BUCKET)
    runs = tmp_path / "runs"
    (runs / ".cache").mkdir(parents=True)
    write_index(runs, index)
    _, lines, _ = run_once(runs, s3)  # ran, and recorded
    assert "-> Make (Processing)" in lines
    assert {e["step"] for results in index_of(runs)["entries"].values() for e in results} == {"Make", "Use"}


def test_a_restore_that_changes_the_step_code_is_undone_and_not_used(tmp_path, clients):
    """A step whose output folder holds step code (here by its definition): the restore writes there; the runner
    checks the code right after (RegulaSession.push_uploads, as `regula run` passes it), puts it back, runs the step."""
    from pipelines.definition.session import RegulaSession

    s3 = clients["s3"]
    s3.create_bucket(Bucket=BUCKET)
    session = RegulaSession("us-east-1", BUCKET, "p")
    code = session._upload({"train.py": b"verified"})
    session.push_uploads(s3)
    steps = definition()
    steps["Steps"] = steps["Steps"][:1]
    steps["Steps"][0]["Arguments"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"] = code

    def run(runs: Path) -> list[str]:
        lines = []
        cache = StepCache(runs)
        verify = lambda: session.push_uploads(s3)  # noqa: E731
        runner = LocalRunner(steps, runs / f"run{len(list(runs.glob('run*'))) + 1}", s3, None, "us-east-1",
                             echo=lines.append, cache=cache, verify_code=verify)  # fmt: skip
        assert runner.run("p").status == "Succeeded"
        session.push_uploads(s3)  # as the next `regula run` does before any job
        return lines

    runs = tmp_path / "runs"
    runs.mkdir()
    run(runs)
    lines = run(runs)
    assert "-> Make (Processing)" in lines
    assert "   (cache: restoring the result of " in "\n".join(lines)
    assert "changed 1 step code object(s): put back, and the result not used)" in "\n".join(lines)
    assert s3.get_object(Bucket=BUCKET, Key=split_uri(code)[1] + "/train.py")["Body"].read() == b"verified"
