"""Free-text columns (issue 20): recognized from their structure, a vocabulary fitted on the training split only,
a bag of n-grams into the model's first layer, L1 pruning n-grams as the ladder rises, raw text served."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from helpers import pack, regula, run_folders, run_step, run_training, serving

from steps import serving_code
from steps.table import fit, transform
from steps.table_roles import column_roles
from steps.text import MAX_TEXT_CHARS, encode, text_columns

NOISE = [f"w{i}" for i in range(300)] + ["très", "größe", "東京", "naïve"]
SIGNAL = {"yes": ["great", "love", "excellent", "superb"], "no": ["awful", "hate", "boring", "poor"]}


def messages(rows: int, seed: int = 0) -> pd.DataFrame:
    """Short messages whose label shows in a few words among many noise words (Unicode ones too), with an amount, a
    city, an order number and a URL beside them."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(["yes", "no"], rows)
    texts = []
    for label in labels:
        words = list(rng.choice(NOISE, rng.integers(4, 14)))
        if rng.random() < 0.85:
            words.insert(rng.integers(0, len(words)), rng.choice(SIGNAL[label]))
        texts.append(" ".join(words))
    return pd.DataFrame(
        {
            "message": texts,
            "amount": rng.normal(size=rows).round(3),
            "city": rng.choice(["Oslo", "Paris", "Lima", "São Paulo"], rows),
            "order": [f"ORD-{i:06d}" for i in rng.permutation(rows)],
            "link": [f"https://shop.example.com/item/{i}?ref=mail" for i in rng.permutation(rows)],
            "target": labels,
        }
    )


def preprocess(data, out, *options):
    return run_step(
        "preprocess.py", "--input", str(data), "--output-dir", str(out), *options, env={"REGULA_METRICS": "off"}
    )


# -- roles ---------------------------------------------------------------------------------------------------------


def test_text_identifier_url_and_category_are_told_apart_each_with_its_log_line(tmp_path):
    messages(200).to_csv(tmp_path / "m.csv", index=False)
    result = preprocess(tmp_path / "m.csv", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(
        line.startswith("preprocess: text column 'message': free text: 100% distinct values, ")
        and "words per value on average" in line
        for line in lines
    ), result.stdout
    for identifier in ("order", "link"):
        assert any(
            line.startswith(f"preprocess: dropped column '{identifier}': one distinct text per row, not free text (")
            and "1.0 words per value on average" in line
            and line.endswith("): an identifier")
            for line in lines
        ), result.stdout
    assert "preprocess: numeric: amount; categorical: city; text: message" in lines
    schema = json.loads((tmp_path / "out" / "train" / "schema.json").read_text())
    assert schema["roles"] == {"message": "text", "amount": "numeric", "city": "categorical"}
    assert sorted(schema["dropped"]) == ["link", "order"]


def test_text_columns_forces_a_column_to_text_and_exclude_columns_keeps_one_out(tmp_path):
    frame = messages(200)
    frame["tag"] = [f"tag {i % 37}" for i in range(len(frame))]  # two words: a category unless forced
    assert column_roles(frame.drop(columns=["target"]))[0]["tag"] == "categorical"
    frame.to_csv(tmp_path / "m.csv", index=False)
    result = preprocess(tmp_path / "m.csv", tmp_path / "out", "--text-columns", "tag", "--exclude-columns", "message")
    assert result.returncode == 0, result.stderr
    assert "preprocess: text column 'tag': named in TextColumns" in result.stdout
    assert "preprocess: dropped column 'message': excluded (ExcludeColumns)" in result.stdout
    schema = json.loads((tmp_path / "out" / "train" / "schema.json").read_text())
    assert schema["roles"]["tag"] == "text" and "message" not in schema["roles"]

    unknown = preprocess(tmp_path / "m.csv", tmp_path / "bad", "--text-columns", "nope")
    assert unknown.returncode == 2
    assert "TextColumns names columns the table does not have: nope" in unknown.stderr
    assert not (tmp_path / "bad" / "train").exists()


# -- the transform ---------------------------------------------------------------------------------------------------


def test_the_vocabulary_is_fitted_on_the_training_rows_only_and_unknown_words_are_ignored():
    frame = pd.DataFrame(
        {"note": [f"common words here row{i % 3}" for i in range(30)] + ["zebra common words validation"] * 10}
    )
    spec = fit(frame, {"note": "text"}, rows=np.arange(30))  # rows 30-39 are the validation split
    (column,) = text_columns(spec)
    assert "common" in column["vocabulary"] and "common words" in column["vocabulary"]
    assert not [g for g in column["vocabulary"] if "zebra" in g or "validation" in g]
    block, problems, _ = encode(frame.iloc[30:], spec)
    assert problems == [] and len(block) == 10
    vocabulary = column["vocabulary"]
    first = sorted(vocabulary[i] for i in block.ids[block.offsets[0] : block.offsets[1]])
    assert first == ["common", "common words", "words"]  # zebra, validation and their pairs: unknown, ignored
    # only the known n-grams of a row, L2-normalized; an empty or missing text is an empty bag
    rows = pd.DataFrame({"note": ["Common WORDS, zebra!", "", None, "zebra"]})
    block, problems, _ = encode(rows, spec)
    assert problems == [] and np.diff(block.offsets).tolist() == [3, 0, 0, 0]
    assert sorted(vocabulary[i] for i in block.ids) == ["common", "common words", "words"]
    assert np.sum(block.weights**2) == pytest.approx(1.0, rel=1e-5)
    assert transform(rows, spec).shape == (4, 0)  # the text is not a dense feature


def test_text_recognition_needs_words_letters_and_variety():
    rows = 60
    frame = pd.DataFrame(
        {
            "review": [f"the plot was slow but the cast {w}" for w in NOISE[:rows]],
            "numbers": [" ".join(str(i * k) for k in range(5)) for i in range(rows)],
            "label": [["red fast car", "blue slow bike"][i % 2] for i in range(rows)],
        }
    )
    roles, dropped = column_roles(frame)
    assert roles == {"review": "text", "label": "categorical"}
    assert "not free text" in dropped["numbers"] and "an identifier" in dropped["numbers"]


# -- bad text ---------------------------------------------------------------------------------------------------------


def test_text_that_is_not_text_is_refused_by_name_and_nothing_is_written(tmp_path):
    frame = messages(100)
    cells = [m.encode() for m in frame["message"]]
    cells[7] = b"\xff\xfe\x00binary"
    table = pa.table({"message": pa.array(cells, pa.binary()), "amount": frame["amount"], "target": frame["target"]})
    pq.write_table(table, tmp_path / "m.parquet")
    result = preprocess(tmp_path / "m.parquet", tmp_path / "out", "--text-columns", "message")
    assert result.returncode == 2
    assert "column 'message': 1 values are not text (bytes that are not UTF-8 text; rows 7)" in result.stderr
    assert not (tmp_path / "out" / "train" / "schema.json").exists()


def test_a_text_over_the_limit_is_cut_and_the_cut_is_reported():
    frame = messages(100)
    spec = fit(frame, {"message": "text"})
    long = "great " * (MAX_TEXT_CHARS // 3)
    block, problems, notes = encode(pd.DataFrame({"message": [long, "short great text"]}), spec)
    assert problems == []
    assert notes == [
        f"column 'message': 1 texts longer than {MAX_TEXT_CHARS} characters were cut to their first "
        f"{MAX_TEXT_CHARS} (rows 0)"
    ]
    _, problems, _ = encode(pd.DataFrame({"message": [["a", "list"], "ok"]}), spec)
    assert problems == ["column 'message': 1 values are not text (a list, not text; rows 0)"]


# -- training, serving, the pipeline ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def text_splits(tmp_path_factory):
    folder = tmp_path_factory.mktemp("text")
    messages(600).to_csv(folder / "m.csv", index=False)
    result = preprocess(folder / "m.csv", folder / "splits")
    assert result.returncode == 0, result.stderr
    return folder / "splits"


def test_l1_zeroes_n_gram_weights_and_the_model_says_how_many_it_uses(text_splits, tmp_path):
    used = []
    for l1 in ("1e-5", "1e-4", "1e-3"):
        result = run_training(text_splits, tmp_path / l1, "--l1", l1, "--max_epochs", "15", in_process=True)
        assert result.returncode == 0, result.stderr
        config = json.loads((tmp_path / l1 / "config.json").read_text())
        usage = config["feature_usage"]
        assert f"the model uses {usage['text_features_used']} of {usage['text_vocabulary']} text n-grams" in (
            result.stdout
        )
        weights = torch.load(tmp_path / l1 / "model.pt", weights_only=True)["text.weight"]
        assert int((weights.abs().amax(1) > usage["tolerance"]).sum()) == usage["text_features_used"]
        used.append(usage["text_features_used"])
    vocabulary = usage["text_vocabulary"]
    assert vocabulary > 300
    assert used[0] > used[1] > used[2], used
    # at 1e-3 L1 prunes a sixth or more; fewer than before n-gram dropout (which pruned half): with entries dropped in
    # training, the frequent noise words keep data gradients above L1 longer; and fewer than without the amount's
    # piecewise-linear bins (a quarter), 16 features of noise the network can fit instead
    assert used[0] > 0.9 * vocabulary and used[2] < 0.85 * vocabulary


def test_the_served_model_scores_raw_text_in_csv_and_json_as_evaluated(text_splits, tmp_path):
    model = tmp_path / "model"
    assert run_training(text_splits, model, "--max_epochs", "10", in_process=True).returncode == 0
    inference = serving_code.import_inference(model / "code")
    predictor = inference.Predictor(model)
    rows = pd.DataFrame(
        {
            "message": ['I "love" it, truly,\nsuperb', "awful, boring\r\nand poor", "", None],
            "amount": [0.1, -0.2, 0.0, 1.0],
            "city": ["Oslo", "Lima", "Paris", "Oslo"],
        }
    )
    as_csv = inference.read_rows(rows.to_csv(index=False).encode(), "text/csv")
    assert as_csv["message"].tolist()[:2] == rows["message"].tolist()[:2]  # quotes, commas, newlines kept
    as_json = inference.read_rows(rows.to_json(orient="records"), "application/json")
    by_csv, by_json = predictor.predict(as_csv), predictor.predict(as_json)
    assert by_csv["probabilities"] == by_json["probabilities"] and "warnings" not in by_csv
    assert by_csv["predictions"][:2] == ["yes", "no"]
    long = predictor.predict(pd.DataFrame({"message": ["superb " * MAX_TEXT_CHARS], "amount": [0], "city": ["Oslo"]}))
    assert long["warnings"] == [
        f"column 'message': 1 texts longer than {MAX_TEXT_CHARS} characters were cut to their first "
        f"{MAX_TEXT_CHARS} (rows 0)"
    ]
    with pytest.raises(inference.ClientError, match=r"column 'message': 1 values are not text \(a dict, not text"):
        predictor.predict(
            inference.read_rows('[{"message": {"a": 1}, "amount": 1, "city": "Oslo"}]', "application/json")
        )
    with pytest.raises(inference.ClientError, match="the body is not UTF-8 text"):
        inference.read_rows(b"message,amount,city\n\xff\xfe,1,Oslo\n", "text/csv")
    # the artifact as SageMaker packs it carries the text transform
    assert (model / "code" / "steps" / "text.py").is_file()
    pack(model, tmp_path / "packed")


def test_a_text_table_runs_end_to_end_and_regula_predict_scores_raw_rows(tmp_path, clients):
    frame = messages(800, seed=1)
    frame.to_csv(tmp_path / "messages.csv", index=False)
    result = regula(
        "run", "--local", "--data", str(tmp_path / "messages.csv"), "--target", "target",
        "--runs-dir", str(tmp_path / "runs"), "--param", "MaxGap=0.3", timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    (run_dir,) = run_folders(tmp_path / "runs")
    report = json.loads((run_dir / "report.json").read_text())
    assert report["decision"] == "registered"
    rounds = report["rounds"]
    assert rounds[0]["decision"] == "overfit", "many noise words: round 1 memorizes them"
    used = [r["feature_usage"]["text_features_used"] for r in rounds]
    assert len(rounds) >= 2 and used == sorted(used, reverse=True), used  # never more n-grams at a stronger level
    for r in rounds:
        usage = r["feature_usage"]
        line = f"round {r['round']}: uses {usage['text_features_used']} of {usage['text_vocabulary']} text n-grams"
        assert line in result.stdout
    assert rounds[-1]["test_metrics"]["balanced_accuracy"] > 0.75
    train_log = (run_dir / "logs" / "TrainRound1.log").read_text()
    assert f"the model uses {used[0]} of " in train_log

    long = "superb love " * (MAX_TEXT_CHARS // 10)  # over the limit: cut, scored, and said so
    raw = pd.DataFrame(
        {
            "message": [long, "superb, great\nw1 w2", 'awful "poor" w3', "", "w4 w5 w6"],
            "amount": [0.5, 0.3, 0.1, -1, 0],
            "city": ["Lima", "Oslo", "São Paulo", "Lima", "Paris"],
        }
    )
    raw.to_csv(tmp_path / "rows.csv", index=False)
    scored = regula(
        "predict", "--model", str(run_dir), "--data", str(tmp_path / "rows.csv"), "--out", str(tmp_path / "p.csv")
    )
    assert scored.returncode == 0, scored.stderr
    cut = f"column 'message': 1 texts longer than {MAX_TEXT_CHARS} characters were cut to their first {MAX_TEXT_CHARS}"
    assert f"warning: {cut} (rows 2)\n" in scored.stderr  # the CSV file's line 2 (the header is line 1)
    out = pd.read_csv(tmp_path / "p.csv", keep_default_na=False)
    assert out["message"].tolist() == raw["message"].fillna("").tolist()  # the rows as given, with their predictions
    assert out["prediction"].tolist()[:3] == ["yes", "yes", "no"]
    raw.to_json(tmp_path / "rows.json", orient="records")
    as_json = regula(
        "predict", "--model", str(run_dir), "--data", str(tmp_path / "rows.json"), "--out", str(tmp_path / "p.json")
    )
    assert as_json.returncode == 0, as_json.stderr
    answer = json.loads((tmp_path / "p.json").read_text())
    assert answer["predictions"] == out["prediction"].tolist()
    assert answer["warnings"] == [f"{cut} (rows 1)"] and f"warning: {cut} (rows 1)\n" in as_json.stderr


def test_the_run_report_counts_fewer_n_grams_as_the_ladder_rises(tmp_path, clients):
    """The ladder's L1 prunes n-grams: the report and the summary count them per round. MaxGap 0.2 without the
    linear reference climbs to level 100, where L1 1e-3 zeroes a quarter of them; that round loses the earlier
    rounds' quality, so the run gives up and nothing is registered."""
    messages(800, seed=1).to_csv(tmp_path / "messages.csv", index=False)
    result = regula(
        "run", "--local", "--data", str(tmp_path / "messages.csv"), "--target", "target", "--runs-dir",
        str(tmp_path / "runs"), "--param", "MaxGap=0.2", "--param", "GapReference=none", timeout=900,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    (run_dir,) = run_folders(tmp_path / "runs")
    report = json.loads((run_dir / "report.json").read_text())
    assert report["model_package_arn"] is None
    rounds = report["rounds"]
    levels = [r["regularization"]["level"] for r in rounds]
    used = [r["feature_usage"]["text_features_used"] for r in rounds]
    vocabulary = rounds[0]["feature_usage"]["text_vocabulary"]
    assert len(rounds) == 3 and levels == sorted(levels) and levels[-1] > levels[0], levels
    assert used == sorted(used, reverse=True) and used[0] == vocabulary and used[-1] < 0.9 * vocabulary, used
    for r, count in zip(rounds, used, strict=True):
        assert f"round {r['round']}: uses {count} of {vocabulary} text n-grams" in result.stdout


def test_the_model_server_takes_raw_text_in_quoted_csv_and_json(text_splits, tmp_path):
    """code/serve.py of a text model's artifact, as SageMaker hosting runs it: only the artifact's code on the path."""
    model = tmp_path / "model"
    assert run_training(text_splits, model, "--max_epochs", "5", in_process=True).returncode == 0
    with serving(model) as base:  # only the artifact's code on the path
        url = f"{base}/invocations"
        rows = pd.DataFrame(
            {"message": ['superb, "great"\nlove it', "awful, poor", ""], "amount": [1, 2, 3], "city": ["Oslo"] * 3}
        )

        def post(body: str, content_type: str):
            request = urllib.request.Request(url, data=body.encode(), headers={"Content-Type": content_type})
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    return response.status, json.loads(response.read())
            except urllib.error.HTTPError as error:
                return error.code, error.read().decode()

        by_csv = post(rows.to_csv(index=False), "text/csv")
        by_json = post(rows.to_json(orient="records"), "application/json")
        assert by_csv[0] == 200 and by_csv == by_json and len(by_csv[1]["predictions"]) == 3
        expected = serving_code.import_inference(model / "code").Predictor(model).predict(rows)
        assert by_csv[1] == json.loads(json.dumps(expected))
        status, message = post('[{"message": ["a", "list"], "amount": 1, "city": "Oslo"}]', "application/json")
        assert status == 400 and "column 'message': 1 values are not text (a list, not text; rows 0)" in message


def leanings(rows: int, seed: int = 0, vocabulary: int = 600, words: int = 15) -> pd.DataFrame:
    """Reviews scored by the sum of their words' small leanings: every word says a little, none says much, and
    there are almost as many words as training rows, so any model's training rows lie far from its validation
    rows (as for real bags of n-grams)."""
    rng = np.random.default_rng(seed)
    lean = rng.normal(size=vocabulary)
    ids = rng.integers(0, vocabulary, (rows, words))
    score = lean[ids].sum(1) / np.sqrt(words) + rng.normal(size=rows) * 0.5
    return pd.DataFrame({"review": [" ".join(f"w{i}" for i in row) for row in ids], "target": score.round(4)})


def test_a_text_gap_above_max_gap_is_judged_beside_the_linear_reference_and_not_without_it(tmp_path):
    """Above MaxGap, evaluation fits the linear reference (steps/reference.py: here Ridge on the TF-IDF bag) and
    records its gap, the limit it holds the round to and its verdict (steps/quality.reference_verdict, whose every
    branch tests/test_quality.py checks by hand); with GapReference=none there is none. The network here overfits
    about as much as Ridge does but validates worse than it: overfit either way, for a different reason."""
    leanings(1500, seed=1).to_csv(tmp_path / "m.csv", index=False)
    text_splits = tmp_path / "splits"
    assert preprocess(tmp_path / "m.csv", text_splits).returncode == 0
    strengths = ("--dropout", "0.41", "--l1", "1e-4", "--l2", "0.32")  # the ladder's level 10
    result = run_training(text_splits, tmp_path / "model", *strengths, in_process=True)
    assert result.returncode == 0, result.stderr
    pack(tmp_path / "model", tmp_path / "artifact")
    reports = {}
    for choice in ("linear", "none"):
        out = tmp_path / choice
        result = run_step(
            "evaluate.py", "--model-dir", str(tmp_path / "artifact"), "--data-dir", str(text_splits),
            "--output-dir", str(out), "--gap-reference", choice, env={"REGULA_METRICS": "off"},
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        reports[choice] = json.loads((out / "evaluation.json").read_text())
    linear, none = reports["linear"], reports["none"]
    assert linear["generalization_gap"] == none["generalization_gap"]  # the same model, measured the same
    gap, se = linear["generalization_gap"]["relative"], linear["generalization_gap"]["standard_error"]
    assert gap - se > 0.1, "the model's gap is above MaxGap"
    reference = linear["reference"]
    assert reference["model"].startswith("Ridge(alpha=") and reference["train_rows"] == 900
    # the rows lie far apart for Ridge too: its gap is above MaxGap beyond its noise, and the round's is within it
    assert reference["gap"] - reference["gap_se"] > 0.1
    assert reference["limit"] == pytest.approx(reference["gap"] + np.hypot(se, reference["gap_se"]) - se)
    assert gap - se <= reference["limit"]
    assert linear["quality"]["validation"] < reference["validation"] and reference["verdict"] == "no_better"
    assert linear["decision"] == "overfit" and linear["thresholds"]["gap_limit"] == 0.1
    assert f"but validates r2 {reference['validation']:.4f} against this round's" in linear["reason"]
    assert none["decision"] == "overfit" and none["reference"] is None and none["thresholds"]["gap_limit"] == 0.1
    assert "reference" not in none["reason"]
