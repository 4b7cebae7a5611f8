"""Predictions that explain themselves (`regula predict`, pipelines/models/predict.py) with a really trained binary
model
(ClassWeight balanced, as the default gives on balanced accuracy): the decision rule and its threshold, warnings for
categories the model never saw, rows named by their line in the file, --skip-bad-rows, the output's dialect."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from helpers import regula_here
from test_inference import train_model

from pipelines.models.predict import PredictError, predict

HEADER = "customer_id,plan,usage,tenure\n"


def churn_table(rows: int = 600) -> pd.DataFrame:
    """About 20% churn, driven by low usage and the basic plan; usage has gaps, tenure none."""
    rng = np.random.default_rng(1)
    plan = rng.choice(["basic", "pro", "team"], size=rows)
    usage = rng.normal(50, 20, size=rows)
    tenure = rng.integers(1, 60, size=rows)
    chance = 0.03 + 0.45 * (usage < 35) + 0.15 * (plan == "basic")
    churned = np.where(rng.random(rows) < chance, "yes", "no")
    usage[rng.random(rows) < 0.1] = np.nan
    return pd.DataFrame(
        {"customer_id": np.arange(rows), "plan": plan, "usage": usage, "tenure": tenure, "churned": churned}
    )


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return train_model(tmp_path_factory.mktemp("churn"), churn_table(), "churned", 8)


def scored(model_dir, tmp_path, text: str, name: str = "new.csv", **kwargs):
    data = tmp_path / name
    data.write_text(text)
    notes = []
    rows, _ = predict(model_dir, data, tmp_path / "out.json", echo=notes.append, **kwargs)
    return rows, json.loads((tmp_path / "out.json").read_text()), notes  # written there, not to standard output


def test_the_decision_rule_and_threshold_are_in_the_output_and_explain_every_prediction(model_dir, tmp_path):
    schema = json.loads((model_dir / "schema.json").read_text())
    assert schema["class_weight"] == "balanced" and schema["classes"] == ["no", "yes"]
    share = schema["class_counts"][1] / sum(schema["class_counts"])
    lines = "".join(f"{i},{'basic' if i % 2 else 'pro'},{10 + 7 * i},{1 + i}\n" for i in range(12))
    _, result, notes = scored(model_dir, tmp_path, HEADER + lines)
    rule = result["decision_rule"]
    assert rule["thresholds"] == {"yes": pytest.approx(share, abs=1e-6)}
    assert rule["training_shares"]["yes"] == pytest.approx(share, abs=1e-6)
    for label, (_, p_yes) in zip(result["predictions"], result["probabilities"], strict=True):
        assert label == ("yes" if p_yes > share else "no")
    assert f"'yes' when probability_yes > {share:.3f}, so a row can be 'yes' with a probability under 0.5" in notes[-1]
    assert notes[-1].startswith("decision rule: ClassWeight=balanced: the class with the highest probability divided")


def test_categories_never_seen_are_warned_about_with_counts(model_dir, tmp_path):
    lines = "1,gold,40,3\n2,gold,50,4\n3,platinum,60,5\n4,pro,70,6\n5,Basic ,30,7\n"
    rows, result, notes = scored(model_dir, tmp_path, HEADER + lines)
    assert rows == 5 and len(result["predictions"]) == 5  # still scored
    warnings = [n for n in notes if n.startswith("warning:")]
    # a case variant is another category to the model: warned about too (the spaces around it are not)
    assert warnings == [
        "warning: column 'plan': 4 rows hold categories the model never saw in training ('gold' (2), 'platinum' (1), "
        "'Basic' (1)): scored as no known category"
    ]


def test_problems_name_file_lines_and_skip_bad_rows_scores_the_rest(model_dir, tmp_path):
    text = HEADER + "1,pro,40,3\n2,pro,50,\n3,team,60,5\n4,pro,lots,6\n5,basic,30,7\n"
    (tmp_path / "new.csv").write_text(text)
    with pytest.raises(PredictError) as refused:
        predict(model_dir, tmp_path / "new.csv", None, echo=lambda _: None)
    assert str(refused.value) == (
        "new.csv: 2 problems: (1) column 'usage': 1 values are not numbers ('lots'; rows 5); (2) column 'tenure': 1 "
        "missing values (rows 3); the model was trained without gaps there (rows are numbered by their line in the "
        "file, the header being line 1); --skip-bad-rows scores the rows that can be"
    )
    rows, result, notes = scored(model_dir, tmp_path, text, skip_bad_rows=True)
    assert rows == 3 and len(result["predictions"]) == 3
    assert notes[:3] == [
        "skipped 2 of 5 rows (--skip-bad-rows); scored the other 3:",
        "  line 3: column 'tenure': 1 missing values (rows 3); the model was trained without gaps there",
        "  line 5: column 'usage': 1 values are not numbers ('lots'; rows 5)",
    ]
    # the same three rows alone score the same
    _, alone, _ = scored(model_dir, tmp_path, HEADER + "1,pro,40,3\n3,team,60,5\n5,basic,30,7\n", name="ok.csv")
    assert alone["probabilities"] == result["probabilities"]


def test_a_semicolon_file_is_read_and_the_output_says_its_dialect(model_dir, tmp_path):
    text = "customer_id;plan;usage;tenure\n1;pro;40,5;3\n2;basic;20,25;4\n"
    _, result, notes = scored(model_dir, tmp_path, text, name="semi.csv")
    _, same, _ = scored(model_dir, tmp_path, HEADER + "1,pro,40.5,3\n2,basic,20.25,4\n", name="comma.csv")
    assert result["probabilities"] == same["probabilities"]
    assert notes[-1] == (
        "note: semi.csv is ';'-separated with decimal commas; the predictions are written comma-separated with "
        "decimal points (the format every tool reads back the same), not in the input's dialect"
    )


def test_predict_help_states_the_decision_rule():
    text = regula_here("predict", "--help").stdout
    assert "the class with the\n  highest probability divided by its share of the training rows" in text
    assert "--skip-bad-rows" in text
