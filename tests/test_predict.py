"""`regula predict`'s output, run as a user runs it (a separate process) on a really trained model: a run folder laid
out as the local runner leaves it (report.json, the round's model.tar.gz, its evaluation with the artifact's hash)."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from helpers import pack, regula, run_script, run_training
from palmerpenguins import load_penguins

from pipelines import run_layout

SPECIES = ["Adelie", "Chinstrap", "Gentoo"]


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    """preprocess.py and train.py on penguins, the model packed into round 1 of a run that registered it."""
    root = tmp_path_factory.mktemp("predict")
    load_penguins().to_csv(root / "penguins.csv", index=False)
    result = run_script(
        "preprocess.py", "--input", str(root / "penguins.csv"), "--output-dir", str(root / "splits"),
        "--target", "species", env={"REGULA_METRICS": "off"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    result = run_training(root / "splits", root / "model", "--max_epochs", "30")
    assert result.returncode == 0, result.stderr
    run = root / "runs" / "run-1"
    archive = run_layout.round_model(run, 1)
    pack(root / "model", archive.parent)
    evaluation = run_layout.round_evaluation(run, 1)
    evaluation.parent.mkdir(parents=True)
    evaluation.write_text(json.dumps({"artifact_sha256": hashlib.sha256(archive.read_bytes()).hexdigest()}))
    report = {"model_package_arn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/1", "rounds": []}
    report["rounds"].append({"round": 1, "decision": "register", "selected_round": 1})
    run_layout.report_file(run).write_text(json.dumps(report))
    return run


def rows(count: int = 6) -> pd.DataFrame:
    penguins = load_penguins()
    return pd.concat([penguins.iloc[0:2], penguins.iloc[160:162], penguins.iloc[300:302]])[:count]


def predict(run_folder: Path, data: Path, *out: str):
    return regula("predict", "--model", str(run_folder), "--data", str(data), *(("--out", *out) if out else ()))


def test_the_tables_own_prediction_and_probability_columns_are_kept(run_folder, tmp_path):
    table = rows().assign(prediction="the team's guess", probability_Adelie=0.5)
    table.to_csv(tmp_path / "rows.csv", index=False)
    result = predict(run_folder, tmp_path / "rows.csv")
    assert result.returncode == 0, result.stderr
    scored = pd.read_csv(io.StringIO(result.stdout))
    assert (scored["prediction"] == "the team's guess").all() and (scored["probability_Adelie"] == 0.5).all()
    assert set(scored["prediction_2"]) <= set(SPECIES) and (scored["prediction_2"] == scored["species"]).mean() > 0.8
    new = ["probability_Adelie_2", "probability_Chinstrap", "probability_Gentoo"]
    assert list(scored.columns[-4:]) == ["prediction_2", *new]
    assert scored[new].sum(axis=1).round(3).eq(1).all()


def test_formula_like_cells_are_written_with_a_leading_quote_in_csv(run_folder, tmp_path):
    """OWASP's CSV injection: a spreadsheet runs a cell beginning with = + - @ tab or CR; negative numbers stay."""
    formulas = ['=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]
    table = rows().assign(note=formulas, delta=[-1.5, 2, -3, 4, -5, 6])
    table["=cmd|' /C calc'!A0"] = "plain"
    table.to_json(tmp_path / "rows.json", orient="records")  # JSON: a carriage return in a CSV input is a new row
    result = predict(run_folder, tmp_path / "rows.json", str(tmp_path / "scored.csv"))  # bytes as written: no
    assert result.returncode == 0, result.stderr  # newline translation of standard output
    assert b'"\'\rx"' in (tmp_path / "scored.csv").read_bytes()  # quoted: the carriage return does not end the row
    scored = pd.read_csv(tmp_path / "scored.csv")
    assert list(scored["note"]) == ["'" + f for f in formulas[:4]] + ["'\tx", "'\rx"]
    assert list(scored["delta"]) == [-1.5, 2, -3, 4, -5, 6]  # numbers, not text
    assert "'=cmd|' /C calc'!A0" in scored.columns and "=cmd|' /C calc'!A0" not in scored.columns
    assert (scored["island"] == rows()["island"].to_numpy()).all()  # other text as it was


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_out_is_written_in_the_format_its_suffix_names(run_folder, tmp_path, suffix):
    rows().to_csv(tmp_path / "rows.csv", index=False)
    out = tmp_path / f"scored{suffix}"
    result = predict(run_folder, tmp_path / "rows.csv", str(out))
    assert result.returncode == 0 and result.stdout == "", result.stderr
    scored = pq.read_table(out).to_pandas() if suffix == ".parquet" else pd.read_json(out, lines=True)
    assert len(scored) == len(rows()) and set(scored["prediction"]) <= set(SPECIES)
    assert list(scored.columns[: len(rows().columns)]) == list(rows().columns)
    assert scored[[f"probability_{s}" for s in SPECIES]].sum(axis=1).round(3).eq(1).all()
    csv = pd.read_csv(io.StringIO(predict(run_folder, tmp_path / "rows.csv").stdout))
    assert list(scored["prediction"]) == list(csv["prediction"])


@pytest.mark.parametrize("name", ["scored.xlsx", "scored.txt", "scored"])
def test_an_out_format_it_cannot_write_is_refused_before_scoring(run_folder, tmp_path, name):
    rows().to_csv(tmp_path / "rows.csv", index=False)
    result = predict(run_folder, tmp_path / "rows.csv", str(tmp_path / name))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip() == f"regula: error: cannot write {name}: --out takes .csv, .json, .jsonl or .parquet"
    assert not (tmp_path / name).exists()


def skewed_prices(rows: int = 600) -> pd.DataFrame:
    """A house-price-like table: the price is lognormal, exp of a function of the columns times noise."""
    rng = np.random.default_rng(5)
    area, grade, age = rng.lognormal(4.5, 0.4, rows), rng.choice(["A", "B", "C"], rows), rng.uniform(0, 60, rows)
    log_price = 11 + 0.9 * np.log(area / 90) + pd.Series(grade).map({"A": -0.4, "B": 0.0, "C": 0.5}) - 0.01 * age
    price = np.exp(log_price + rng.normal(0, 0.15, rows)).round(0)
    return pd.DataFrame({"area": area.round(1), "grade": grade, "age": age.round(0), "price": price})


def test_a_skewed_price_is_modelled_on_log1p_and_predicted_and_evaluated_on_its_own_scale(tmp_path):
    """The steps as processes on a skewed positive target: preprocessing picks log1p from the training split,
    `regula predict` answers in prices, and evaluation's metrics are those of exactly those predictions."""
    skewed_prices().to_csv(tmp_path / "prices.csv", index=False)
    splits, run = tmp_path / "splits", tmp_path / "runs" / "run-1"
    result = run_script(
        "preprocess.py", "--input", str(tmp_path / "prices.csv"), "--output-dir", str(splits), "--target", "price",
        "--target-transform", "auto", env={"REGULA_METRICS": "off"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    schema = json.loads((splits / "train" / "schema.json").read_text())
    assert schema["problem_type"] == "regression" and schema["target_scale"]["kind"] == "log1p"
    assert "preprocess: target modelled on scale log1p: the target is >= 0 and skewed" in result.stdout
    assert run_training(splits, tmp_path / "model", "--max_epochs", "60").returncode == 0
    archive = run_layout.round_model(run, 1)
    pack(tmp_path / "model", archive.parent)
    evaluation = run_layout.round_evaluation(run, 1)
    result = run_script(
        "evaluate.py", "--model-dir", str(archive.parent), "--data-dir", str(splits),
        "--output-dir", str(evaluation.parent), env={"REGULA_METRICS": "off"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = {"model_package_arn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/1", "rounds": []}
    report["rounds"].append({"round": 1, "decision": "register", "selected_round": 1})
    run_layout.report_file(run).write_text(json.dumps(report))

    # the test split's raw rows (preprocessing's sample: all of them here) and their prices, in the same order
    test_rows = pd.read_csv(splits / "test" / "raw_sample.csv")
    prices = pq.read_table(splits / "test" / "test.parquet").column(0).to_numpy().astype(np.float64)
    assert len(test_rows) == len(prices) == schema["rows"]["test"]
    test_rows.to_csv(tmp_path / "rows.csv", index=False)
    result = predict(run, tmp_path / "rows.csv", str(tmp_path / "scored.parquet"))
    assert result.returncode == 0, result.stderr
    predicted = pq.read_table(tmp_path / "scored.parquet").column("prediction").to_numpy()
    errors = predicted - prices
    by_hand = {
        "mae": np.abs(errors).mean(),
        "rmse": np.sqrt((errors**2).mean()),
        "r2": 1 - (errors**2).sum() / ((prices - prices.mean()) ** 2).sum(),
    }
    metrics = json.loads(evaluation.read_text())["metrics"]["test"]
    assert {k: metrics[k] for k in by_hand} == pytest.approx(by_hand, rel=1e-6)
    # prices, not their logarithms: within a fifth of the price on the typical row, and most of the variance
    assert np.median(np.abs(errors) / prices) < 0.2 and by_hand["r2"] > 0.6
