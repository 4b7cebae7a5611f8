"""Checkpoints: a training job stopped part-way (a spot interruption) resumes and ends as an uninterrupted one does;
a checkpoint of another run, or a damaged one, is ignored with a line, never trusted."""

from __future__ import annotations

import json
import os
import pickle
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import STEPS, run_folders, run_training

from pipelines.local.engine.checkpoints import interrupt_predicate
from pipelines.local.engine.faults import interrupt_plan
from steps import archive as archive_files
from steps import checkpoint

THREADS = {"REGULA_TORCH_THREADS": "1"}  # bitwise equality needs the same thread count in every run


def train(splits: Path, model_dir: Path, *args: str) -> subprocess.CompletedProcess:
    result = run_training(splits, model_dir, *args, env=THREADS)
    assert result.returncode == 0, result.stderr
    return result


def start_training(splits: Path, model_dir: Path, *args: str) -> subprocess.Popen:
    """steps/train.py as a process we can stop part-way, its output a line at a time."""
    command = [sys.executable, str(STEPS / "train.py"), "--train", str(splits / "train")]
    command += ["--validation", str(splits / "validation"), "--model_dir", str(model_dir), *args]
    env = {**os.environ, "PYTHONPATH": str(STEPS.parent), "REGULA_METRICS": "off", **THREADS}
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def same_model(a: Path, b: Path) -> None:
    """The same weights, bit for bit, the same history and the same config (best epoch, epochs, ...)."""
    weights_a, weights_b = (torch.load(d / "model.pt", weights_only=True) for d in (a, b))
    assert weights_a.keys() == weights_b.keys()
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
    assert json.loads((a / "history.json").read_text()) == json.loads((b / "history.json").read_text())
    config_a, config_b = (json.loads((d / "config.json").read_text()) for d in (a, b))
    # a refit names the archive it retrained by hash; local archives carry their files' times, so that hash is per run
    for config in (config_a, config_b):
        if "of_artifact_sha256" in config.get("refit", {}):
            assert re.fullmatch(r"[0-9a-f]{64}", config["refit"].pop("of_artifact_sha256"))
    assert config_a == config_b


@pytest.fixture(scope="module")
def uninterrupted(splits, tmp_path_factory) -> Path:
    """The model of a run that nothing stopped, without checkpoints."""
    model = tmp_path_factory.mktemp("uninterrupted") / "model"
    train(splits, model)
    return model


@pytest.mark.parametrize(
    "stop,checkpoint_seconds,when",
    [
        # a hard kill (no time to save): the last periodic checkpoint, here one per epoch, is what resumes
        pytest.param(signal.SIGKILL, "0", "train: checkpoint after epoch 5 ", id="SIGKILL", marks=pytest.mark.slow),
        # SIGTERM (SageMaker's stop): the epoch under way is finished and saved, then the job exits
        pytest.param(signal.SIGTERM, "1000", "epoch 5:", id="SIGTERM", marks=pytest.mark.slow),
    ],
)
def test_a_stopped_training_resumes_and_ends_as_an_uninterrupted_run(
    stop, checkpoint_seconds, when, splits, tmp_path, uninterrupted
):
    folder = tmp_path / "checkpoints"
    args = ("--checkpoint_dir", str(folder), "--checkpoint_seconds", checkpoint_seconds)
    process = start_training(splits, tmp_path / "stopped", *args)
    output = []
    for line in process.stdout:
        output.append(line)
        if line.startswith(when):
            process.send_signal(stop)
    process.wait(timeout=60)
    assert process.returncode == (-signal.SIGKILL if stop == signal.SIGKILL else 128 + signal.SIGTERM), output
    assert not (tmp_path / "stopped" / "model.pt").exists(), "stopped before the end"
    assert (folder / checkpoint.CHECKPOINT_FILE).is_file()
    stopped_at = None
    if stop == signal.SIGTERM:  # at the end of the epoch under way when the signal came: 5 or one just after
        stopped_at = int(re.match(r"train: stopped by SIGTERM after epoch (\d+); a restarted job", output[-1])[1])

    resumed = train(splits, tmp_path / "resumed", *args)
    [line] = [line for line in resumed.stdout.splitlines() if line.startswith("train: resuming from epoch ")]
    epoch = int(line.split()[4])
    assert epoch >= 5 and f"(checkpoint {folder / checkpoint.CHECKPOINT_FILE})" in line
    assert stopped_at in (None, epoch), "SIGTERM: resumed from the epoch it stopped after"
    epochs = [line for line in resumed.stdout.splitlines() if line.startswith("epoch ")]
    assert epochs[0].startswith(f"epoch {epoch + 1}:"), "the epochs before come from the checkpoint"
    same_model(tmp_path / "resumed", uninterrupted)


@pytest.mark.slow  # the fast tier has load()'s own tests below
def test_another_runs_checkpoint_is_ignored(splits, tmp_path, uninterrupted):
    folder = tmp_path / "checkpoints"
    args = ("--checkpoint_dir", str(folder), "--checkpoint_seconds", "0")
    train(splits, tmp_path / "other", *args, "--l2", "0.05", "--max_epochs", "4")  # leaves its epoch-3 checkpoint
    ours = train(splits, tmp_path / "ours", *args)
    assert (
        f"train: ignoring the checkpoint in {folder}: it is another run's (it differs in: hyperparameters.l2, "
        "hyperparameters.max_epochs, regularization.l2); starting from epoch 1"
    ) in ours.stdout
    assert "resuming" not in ours.stdout
    same_model(tmp_path / "ours", uninterrupted)


@pytest.mark.slow  # the fast tier has load()'s own tests below
def test_a_damaged_checkpoint_is_ignored_with_a_line_not_a_crash(splits, tmp_path, uninterrupted):
    folder = tmp_path / "checkpoints"
    args = ("--checkpoint_dir", str(folder), "--checkpoint_seconds", "0")
    train(splits, tmp_path / "first", *args, "--max_epochs", "3")
    path = folder / checkpoint.CHECKPOINT_FILE
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # cut short, as by a failed copy
    result = train(splits, tmp_path / "model", *args)
    assert f"train: ignoring the checkpoint in {folder}: cannot read it (" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    same_model(tmp_path / "model", uninterrupted)


class Planted:
    """A pickle that runs code when loaded without weights_only: it must never run."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "the checkpoint ran code"))


@pytest.mark.parametrize("content", ["truncated", "not a zip", "plain dict", "code", "other fingerprint"])
def test_load_refuses_what_is_not_this_runs_checkpoint(content, tmp_path):
    fingerprint = {"format": checkpoint.FORMAT, "inputs": {"train": "ab"}, "processes": 1}
    marker = tmp_path / "marker"
    path = checkpoint.save(tmp_path, {"fingerprint": fingerprint, "epoch": 3, "weights": torch.ones(4)})
    assert checkpoint.load(tmp_path, fingerprint)[0]["epoch"] == 3
    if content == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    elif content == "not a zip":
        path.write_bytes(b"garbage" * 100)
    elif content == "plain dict":
        torch.save({"epoch": 3}, path)
    elif content == "code":
        torch.save({"fingerprint": fingerprint, "payload": Planted(marker)}, path)
        with pytest.raises(pickle.UnpicklingError):
            torch.load(path, weights_only=True)
    else:
        checkpoint.save(tmp_path, {"fingerprint": {**fingerprint, "processes": 2}, "epoch": 3})
    found, why_not = checkpoint.load(tmp_path, fingerprint)
    assert found is None and why_not
    expected = {
        "plain dict": "it is not a Regula training checkpoint",
        "other fingerprint": "it is another run's (it differs in: processes)",
    }
    assert why_not == expected.get(content, why_not) and why_not.startswith(("cannot read it (", "it is"))
    assert not marker.exists(), "no code runs from a checkpoint"
    assert checkpoint.load(tmp_path / "empty", fingerprint) == (None, "")  # none at all: nothing to say


def test_rng_state_round_trips_through_a_weights_only_load(tmp_path):
    generator = torch.Generator().manual_seed(1)
    state = checkpoint.rng_state(generator)
    checkpoint.save(tmp_path, {"fingerprint": {}, "rng": state})
    draws = (torch.randperm(10, generator=generator), torch.rand(3))
    loaded, _ = checkpoint.load(tmp_path, {})
    checkpoint.set_rng_state(loaded["rng"], generator)
    assert torch.equal(torch.randperm(10, generator=generator), draws[0]) and torch.equal(torch.rand(3), draws[1])


def test_the_interruption_hook_names_a_step_and_when(tmp_path):
    training = [{"Name": f"TrainRound{k}", "Type": "Training", "Arguments": {}} for k in (1, 2)]
    definition = {"Steps": training}
    plan = interrupt_plan("TrainRound2:after_checkpoint, TrainRound1:after_epochs=5", definition)
    assert plan == {"TrainRound2": "after_checkpoint", "TrainRound1": "after_epochs=5"}
    after_five = interrupt_predicate(plan["TrainRound1"], tmp_path)
    assert not after_five("epoch 4: train_loss=1;") and after_five("epoch 5: train_loss=1;")
    assert not after_five("train: epoch 5 is near")
    after_checkpoint = interrupt_predicate(interrupt_plan("TrainRound1", definition)["TrainRound1"], tmp_path / "ck")
    assert not after_checkpoint("epoch 1: x")
    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / "checkpoint.pt").write_bytes(b"x")
    assert after_checkpoint("epoch 2: x")
    # checked once, before anything runs: a malformed entry, and one naming a step the pipeline has not
    with pytest.raises(ValueError, match="'TrainRound1:after=5' is not one of STEP, STEP:after_checkpoint or"):
        interrupt_plan("TrainRound2, TrainRound1:after=5", definition)
    with pytest.raises(ValueError, match="no training step 'TrainRound3'; its training steps: TrainRound1, Train"):
        interrupt_plan("TrainRound3", definition)


@pytest.mark.slow
def test_a_pipeline_interrupted_like_spot_registers_the_same_model(tmp_path, clients, monkeypatch):
    from pipelines.local.engine.s3 import split_uri
    from pipelines.local.run import run_local
    from pipelines.settings import Settings

    def run(name: str) -> tuple[dict, str, dict, dict]:
        lines = []
        report = run_local(Settings(), runs_dir=tmp_path / name, echo=lines.append, params={"MaxGap": "5"})
        assert report["decision"] == "registered", "\n".join(lines)
        package = clients["sagemaker"].describe_model_package(ModelPackageName=report["model_package_arn"])
        bucket, key = split_uri(package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"])
        evaluation = json.loads(clients["s3"].get_object(Bucket=bucket, Key=key)["Body"].read())
        bucket, key = split_uri(package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"])
        archive = tmp_path / f"{name}.tar.gz"
        clients["s3"].download_file(bucket, key, str(archive))
        archive_files.extract(archive, tmp_path / f"{name}-model")
        return evaluation, "\n".join(lines), package["CustomerMetadataProperties"], report

    whole, _, whole_metadata, _ = run("whole")
    monkeypatch.setenv("REGULA_LOCAL_INTERRUPT", "TrainRound1:after_epochs=5")
    interrupted, output, metadata, report = run("interrupted")

    assert "-> TrainRound1 interrupted (spot), restarting from its checkpoint" in output
    assert int(re.search(r"train: resuming from epoch (\d+) ", output)[1]) >= 5  # the epoch under way at SIGTERM
    same_model(tmp_path / "interrupted-model", tmp_path / "whole-model")
    assert interrupted["metrics"] == whole["metrics"] and interrupted["decision"] == whole["decision"]
    assert interrupted["generalization_gap"] == whole["generalization_gap"]
    per_run = ("regula:execution", "regula:artifact_sha256")  # the archive's file times differ, not its content
    assert {k: v for k, v in metadata.items() if k not in per_run} == {
        k: v for k, v in whole_metadata.items() if k not in per_run
    }
    # the job's log holds both runs
    [run_dir] = run_folders(tmp_path / "interrupted")  # beside the step cache's folder
    log = (run_dir / "logs" / "TrainRound1.log").read_text()
    assert "train: stopped by SIGTERM after epoch" in log and "=== REGULA_LOCAL_INTERRUPT: interrupted (spot)" in log
    assert report["status"] == "Succeeded"
