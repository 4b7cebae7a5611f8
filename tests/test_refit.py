"""The refit (steps/refit.py): the selected round trained again on the training and validation rows, and the
evaluation the register step reads. Real train.py and evaluate.py processes on the digits splits, and the rule on
hand-made evaluations."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from helpers import pack, run_step
from helpers import run_training as train

from steps import refit
from steps.contract import file_sha256
from steps.quality import QUALITY_Z


def rows(splits: Path, name: str) -> int:
    return pq.read_metadata(splits / name / f"{name}.parquet").num_rows


def evaluate(packed: Path, splits: Path, output: Path, *args: str):
    return run_step(
        "evaluate.py", "--model-dir", str(packed), "--data-dir", str(splits), "--output-dir", str(output), *args,
        env={"REGULA_METRICS": "off"},
    )  # fmt: skip


@pytest.fixture(scope="module")
def round1(splits, tmp_path_factory):
    """Round 1 on the digits splits, packed, and its evaluation (MaxGap 10: it registers)."""
    root = tmp_path_factory.mktemp("round1")
    result = train(splits, root / "model", "--patience", "3", "--dropout", "0.2")
    assert result.returncode == 0, result.stderr
    packed = pack(root / "model", root / "packed").parent
    result = evaluate(packed, splits, root / "eval", "--max-gap", "10", "--model-uri", "s3://b/train-round1/m.tar.gz")
    assert result.returncode == 0, result.stderr
    return packed, root / "eval", json.loads((root / "model" / "config.json").read_text())


def test_the_refit_trains_the_selected_rounds_options_on_both_splits_for_its_best_epoch_count(splits, round1, tmp_path):
    packed, _, first = round1
    # the round's own options are not passed: the refit reads them from the artifact, whatever the job says
    result = train(splits, tmp_path / "refit", "--refit_of", str(packed), "--dropout", "0.5", "--patience", "1")
    assert result.returncode == 0, result.stderr
    config = json.loads((tmp_path / "refit" / "config.json").read_text())
    history = json.loads((tmp_path / "refit" / "history.json").read_text())
    both = rows(splits, "train") + rows(splits, "validation")
    assert config["refit"] == {
        "trained": True,
        "why": f"round 1 retrained on the training and validation rows for its best epoch count, {first['best_epoch']}",
        "epochs": first["best_epoch"],
        "rows": both,
        "of_round": 1,
        "of_artifact_sha256": file_sha256(packed / "model.tar.gz"),
    }
    assert len(history) == first["best_epoch"]  # early stopping off: every epoch it was given
    assert config["regularization"] == {**first["regularization"], "reason": config["refit"]["why"]}
    assert config["regularization"]["dropout"] == pytest.approx(0.2)
    assert config["training"]["batch_size"] == first["training"]["batch_size"]
    steps_per_epoch = math.ceil(both / first["training"]["batch_size"])
    assert config["training"]["steps"] == first["best_epoch"] * steps_per_epoch  # an epoch is a pass over both
    assert f"{both} rows x" in result.stdout


def test_refit_no_passes_the_selected_model_on_unchanged(splits, round1, tmp_path):
    packed, _, first = round1
    result = train(splits, tmp_path / "same", "--refit_of", str(packed), env={"REGULA_REFIT": "no"})
    assert result.returncode == 0, result.stderr
    assert "train: refit: Refit=no: the selected round's model is registered as trained" in result.stdout
    assert "epoch 1:" not in result.stdout
    config = json.loads((tmp_path / "same" / "config.json").read_text())
    assert config["refit"] == {"trained": False, "why": "Refit=no: the selected round's model is registered as trained"}
    assert {k: v for k, v in config.items() if k != "refit"} == first
    model = [p.name for p in (tmp_path / "same").iterdir() if p.suffix in (".pt", ".safetensors", ".pth")]
    for name in model:  # the weights, byte for byte
        assert (tmp_path / "same" / name).read_bytes() == (packed.parent / "model" / name).read_bytes()


def test_a_refit_without_the_selected_model_fails_naming_it(splits, tmp_path):
    (tmp_path / "empty").mkdir()
    result = train(splits, tmp_path / "refit", "--refit_of", str(tmp_path / "empty"))
    assert result.returncode == 2
    assert (
        f"no model.tar.gz in {tmp_path / 'empty'}: the refit trains the selected round's model again" in result.stderr
    )
    assert not (tmp_path / "refit" / "config.json").exists()


def test_the_refit_evaluation_selects_the_refit_model_and_keeps_the_rounds_decision(splits, round1, tmp_path):
    packed, decided_dir, _ = round1
    assert train(splits, tmp_path / "refit", "--refit_of", str(packed)).returncode == 0
    refit_packed = pack(tmp_path / "refit", tmp_path / "refit-packed").parent
    result = evaluate(
        refit_packed, splits, tmp_path / "eval", "--refit-of", str(decided_dir), "--max-gap", "10",
        "--model-uri", "s3://b/train-round1-refit/m.tar.gz", "--evaluation-uri", "s3://b/evaluation-refit-round1/e.json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    decided = json.loads((decided_dir / "evaluation.json").read_text())
    report = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    # the ladder's measurements stay the round's: held-out validation, its gap, its decision
    for key in ("decision", "reason", "round", "generalization_gap", "quality", "metrics", "regularization"):
        assert report[key] == decided[key], key
    selected = report["selected"]
    assert selected["refit"] == "true" and selected["gap"] == decided["selected"]["gap"]
    assert selected["model_uri"] == "s3://b/train-round1-refit/m.tar.gz"
    assert selected["evaluation_uri"] == "s3://b/evaluation-refit-round1/e.json"
    assert selected["artifact_sha256"] == file_sha256(refit_packed / "model.tar.gz") != decided["artifact_sha256"]
    assert selected["quality"]["validation"] == decided["quality"]["validation"]
    test = report["refit"]["metrics"]["test"]["balanced_accuracy"]
    assert selected["quality"]["test"] == test == report["refit"]["test"]
    assert report["refit"]["round_test"] == decided["quality"]["test"]
    assert report["multiclass_classification_metrics"]["balanced_accuracy"]["value"] == test
    assert "refit of round 1: round 1 retrained on the training and validation rows" in result.stdout


def decided_evaluation(validation: float, se: float) -> dict:
    quality = {"metric": "balanced_accuracy", "validation": validation, "validation_se": se, "test": 0.7}
    selected = {"round": 2, "model_uri": "s3://b/r2", "evaluation_uri": "s3://b/e2", "artifact_sha256": "a" * 64,
                "quality": quality, "gap": 0.05}  # fmt: skip
    return {"decision": "register", "selected": selected, "multiclass_classification_metrics": {"old": 1}}


def scored(validation: float, trained: bool = True, of_artifact: str = "a" * 64) -> dict:
    """The refit evaluation's measurements; the refit model's config names the archive it was trained from."""
    return {
        "config": {"refit": {"trained": trained, "why": "w", "of_round": 2, "of_artifact_sha256": of_artifact}},
        "metrics": {"test": {"balanced_accuracy": 0.75}},
        "quality": {"validation": validation, "test": 0.75},
        "artifact_sha256": "b" * 64,
        "multiclass_classification_metrics": {"new": 1},
    }


@pytest.mark.parametrize(
    "validation, kept",
    [
        (0.95, True),  # in-sample: above the round's held-out 0.80
        (0.80 - QUALITY_Z * 0.02 + 1e-9, True),  # just within the noise below it
        (0.80 - QUALITY_Z * 0.02 - 1e-6, False),  # the refit trained to something worse than the round
        (float("nan"), False),  # diverged
    ],
)
def test_a_refit_is_registered_only_where_it_scores_at_least_the_round_less_its_noise(validation, kept):
    report = refit.report(decided_evaluation(0.80, 0.02), scored(validation), "s3://b/refit", "s3://b/e-refit")
    assert report["refit"]["kept"] is kept
    selected = report["selected"]
    if kept:
        assert (selected["model_uri"], selected["artifact_sha256"], selected["refit"]) == (
            "s3://b/refit",
            "b" * 64,
            "true",
        )
        assert selected["quality"]["test"] == 0.75 and selected["quality"]["validation"] == 0.80
        assert report["multiclass_classification_metrics"] == {"new": 1}
    else:
        assert (selected["model_uri"], selected["artifact_sha256"], selected["refit"]) == (
            "s3://b/r2",
            "a" * 64,
            "false",
        )
        assert selected["quality"]["test"] == 0.7 and report["multiclass_classification_metrics"] == {"old": 1}
        assert "the round's model is registered" in report["refit"]["decision"]


def test_a_refit_trained_from_another_archive_than_the_selected_one_is_not_registered():
    """The refit job reads the selected round's archive by its URI; an archive replaced between the steps gives a
    refit of another model, which the round's evaluation never measured."""
    report = refit.report(
        decided_evaluation(0.80, 0.02), scored(0.99, of_artifact="c" * 64), "s3://b/refit", "s3://b/e"
    )
    assert report["refit"]["kept"] is False
    assert (report["selected"]["model_uri"], report["selected"]["refit"]) == ("s3://b/r2", "false")
    assert report["refit"]["decision"] == (
        f"the refit model was trained from round 2's archive (sha256 {'c' * 64}), not the selected round 2's "
        f"(sha256 {'a' * 64}): the round's model is registered"
    )


@pytest.mark.parametrize("refit_validation, held_out", [(None, 0.8), (0.9, float("nan")), (True, 0.8)])
def test_a_quality_that_is_not_a_number_keeps_the_rounds_model(refit_validation, held_out):
    kept, why = refit.keeps(refit_validation, decided_evaluation(held_out, 0.02)["selected"])
    assert kept is False and why.endswith("is not a number: the round's model is registered")


def test_a_model_passed_on_untrained_keeps_the_round_selected():
    report = refit.report(decided_evaluation(0.80, 0.02), scored(0.99, trained=False), "s3://b/refit", "s3://b/e")
    assert report["refit"]["kept"] is False and report["selected"]["model_uri"] == "s3://b/r2"
    assert "decision" not in report["refit"]


def test_tables_over_the_row_bound_are_not_refit(tmp_path):
    plan = refit.Plan({"round": 1}, tmp_path, True, 5, "trains")
    assert refit.within_bounds(plan, refit.MAX_ROWS) is plan
    over = refit.within_bounds(plan, refit.MAX_ROWS + 1)
    assert not over.train and f"holds {refit.MAX_ROWS + 1} rows, more than {refit.MAX_ROWS}" in over.why


def test_joined_inputs_hold_both_splits_rows_in_order():
    from steps.inputs import Dense, WithText

    a = WithText(np.zeros((2, 1), np.float32), [0, 2, 3], [5, 6, 7], [1.0, 2.0, 3.0], vocabulary=9)
    b = WithText(np.ones((2, 1), np.float32), [0, 1, 3], [1, 2, 3], [4.0, 5.0, 6.0], vocabulary=9)
    both = a.joined(b)
    assert len(both) == 4 and both.offsets.tolist() == [0, 2, 3, 4, 6]
    assert both[3]["ids"].tolist() == [2, 3] and both[3]["weights"].tolist() == [5.0, 6.0]
    assert both[1]["ids"].tolist() == [7] and both[2]["features"].tolist() == [1.0]
    dense = Dense(np.zeros((2, 3), np.float32)).joined(Dense(np.ones((1, 3), np.float32)))
    assert dense[2].tolist() == [1.0, 1.0, 1.0] and len(dense) == 3


def test_a_selected_model_that_is_not_a_model_archive_is_refused_naming_it(splits, tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "model.tar.gz").write_bytes(b"not a tarball")
    result = train(splits, tmp_path / "refit", "--refit_of", str(tmp_path / "bad"))
    assert result.returncode == 2
    assert f"the selected model {tmp_path / 'bad' / 'model.tar.gz'} cannot be refit: ReadError" in result.stderr
    assert not (tmp_path / "refit" / "config.json").exists()
