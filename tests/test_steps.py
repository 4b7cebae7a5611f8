"""The step entry points as SageMaker runs them: separate processes, real files."""

from __future__ import annotations

import json
import tarfile

import numpy as np
import pandas as pd
import pytest
from helpers import BAD_INPUTS, STEPS, run_script
from helpers import run_training as train
from sklearn.datasets import load_digits


def test_preprocess_splits_stratified_and_scales_on_train_only(splits):
    train = pd.read_csv(splits / "train" / "train.csv")
    validation = pd.read_csv(splits / "validation" / "validation.csv")
    test = pd.read_csv(splits / "test" / "test.csv")
    schema = json.loads((splits / "train" / "schema.json").read_text())
    assert len(train) == 300 and schema["rows"] == {"train": 300, "validation": len(validation), "test": len(test)}
    assert list(train.columns) == ["label", *schema["features"]]
    assert set(train["label"]) == set(validation["label"]) == set(test["label"]) == set(range(10))
    features = train[schema["features"]].to_numpy()
    varying = features.std(axis=0) > 0
    assert np.allclose(features.mean(axis=0), 0, atol=1e-4)
    assert np.allclose(features.std(axis=0)[varying], 1, atol=1e-3)


def test_preprocess_is_seeded(splits, tmp_path):
    source = load_digits(as_frame=True).frame
    source.to_csv(tmp_path / "d.csv", index=False)
    run_script(
        "preprocess.py",
        "--input",
        str(tmp_path / "d.csv"),
        "--output-dir",
        str(tmp_path / "again"),
        "--target",
        "target",
        "--max-train-rows",
        "300",
        env={"REGULA_METRICS": "off"},
    )
    assert (tmp_path / "again" / "train" / "train.csv").read_bytes() == (splits / "train" / "train.csv").read_bytes()


def test_preprocess_reads_parquet(tmp_path):
    frame = load_digits(as_frame=True).frame
    frame.to_parquet(tmp_path / "d.parquet")
    result = run_script(
        "preprocess.py",
        "--input",
        str(tmp_path),
        "--output-dir",
        str(tmp_path / "out"),
        "--target",
        "target",
        env={"REGULA_METRICS": "off"},
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "test" / "test.csv").exists()


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_preprocess_rejects_bad_input_in_one_line(case, tmp_path):
    content, message = BAD_INPUTS[case]
    (tmp_path / "data.csv").write_text(content)
    result = run_script(
        "preprocess.py",
        "--input",
        str(tmp_path / "data.csv"),
        "--output-dir",
        str(tmp_path / "out"),
        "--target",
        "label",
        env={"REGULA_METRICS": "off"},
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR preprocess: ") and message in lines[0], result.stderr
    assert not (tmp_path / "out").exists(), "nothing half-written"


def test_training_stops_early_restores_best_and_packs_inference_code(splits, tmp_path):
    result = train(splits, tmp_path / "model", "--patience", "3", "--max_epochs", "200")
    assert result.returncode == 0, result.stderr
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    history = json.loads((tmp_path / "model" / "history.json").read_text())
    assert config["epochs"] == len(history) < 200, "early stopping"
    best = min(history, key=lambda h: h["val_loss"])
    assert config["best_epoch"] == best["epoch"] and len(history) == best["epoch"] + 3
    assert sorted(p.name for p in (tmp_path / "model" / "code").iterdir()) == ["inference.py", "model.py"]
    epoch_lines = [line for line in result.stdout.splitlines() if line.startswith("epoch ")]
    assert len(epoch_lines) == len(history) and "gap=" in epoch_lines[0] and "val_loss_rise_streak=" in epoch_lines[0]

    # the restored weights are the best epoch's: evaluating them reproduces its validation loss
    evaluation = run_script(
        "evaluate.py",
        "--model-dir",
        str(tmp_path / "model"),
        "--data-dir",
        str(splits),
        "--output-dir",
        str(tmp_path / "eval"),
        env={"REGULA_METRICS": "off"},
    )
    assert evaluation.returncode == 0, evaluation.stderr
    report = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert report["metrics"]["validation"]["loss"] == pytest.approx(best["val_loss"], rel=1e-4)
    assert report["generalization_gap"]["loss"] == pytest.approx(
        report["metrics"]["validation"]["loss"] - report["metrics"]["train"]["loss"]
    )


@pytest.mark.parametrize(
    "args,message",
    [
        (["--dropout", "1.0"], "dropout must be in"),
        (["--l1", "-0.1"], "l1 must be >= 0"),
        (["--growth", "0.5"], "growth must be > 1"),
        (["--hidden", "a,b"], "hidden must be"),
        (["--patience", "0"], "patience"),
    ],
)
def test_training_rejects_invalid_hyperparameters(splits, tmp_path, args, message):
    result = train(splits, tmp_path / "model", *args, env={"SM_OUTPUT_FAILURE": str(tmp_path / "failure")})
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert message in (tmp_path / "failure").read_text()
    assert not (tmp_path / "model").exists()


def test_inference_handlers_serve_the_packed_model(splits, tmp_path):
    assert train(splits, tmp_path / "model", "--max_epochs", "5").returncode == 0
    with tarfile.open(tmp_path / "model.tar.gz", "w:gz") as tar:
        for path in (tmp_path / "model").iterdir():
            tar.add(path, arcname=path.name)
    served = tmp_path / "served"
    with tarfile.open(tmp_path / "model.tar.gz") as tar:
        tar.extractall(served, filter="data")
    import sys

    sys.path.insert(0, str(served / "code"))
    try:
        import inference
    finally:
        sys.path.remove(str(served / "code"))
    predictor = inference.model_fn(str(served))
    raw = load_digits().data[:3]
    body = "\n".join(",".join(str(v) for v in row) for row in raw)
    out = json.loads(inference.output_fn(inference.predict_fn(inference.input_fn(body, "text/csv"), predictor)))
    assert len(out["predictions"]) == 3 and all(p in range(10) for p in out["predictions"])
    assert np.allclose(np.sum(out["probabilities"], axis=1), 1, atol=1e-4)
    as_json = inference.input_fn(json.dumps({"instances": raw.tolist()}), "application/json")
    assert inference.predict_fn(as_json, predictor)["predictions"] == out["predictions"]
    with pytest.raises(ValueError, match="expected 64 features"):
        predictor.predict(raw[:, :10])
    assert STEPS.exists()
