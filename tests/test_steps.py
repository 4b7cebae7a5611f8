"""The step entry points as SageMaker runs them, on real files: separate processes for the process contract and the
runs that train; the many input checks run the same entry points in this process (helpers.run_step)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import palmerpenguins
import pyarrow.parquet as pq
import pytest
from helpers import BAD_INPUTS, pack, run_script, run_step
from helpers import run_training as train
from sklearn.datasets import load_digits
from sklearn.metrics import log_loss

from steps import archive as archive_files
from steps import serving_code


def read(splits: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    table = pq.read_table(splits / name / f"{name}.parquet")
    return np.column_stack([c.to_numpy() for c in table.columns[1:]]), table.column(0).to_numpy()


def test_preprocess_splits_stratified_and_scales_on_train_only(splits):
    (train, y_train), (validation, y_val), (test, y_test) = (read(splits, n) for n in ("train", "validation", "test"))
    schema = json.loads((splits / "train" / "schema.json").read_text())
    assert len(train) == 300 and schema["rows"] == {"train": 300, "validation": len(validation), "test": len(test)}
    assert train.dtype == np.float32 and train.shape[1] == len(schema["features"])
    assert set(y_train) == set(y_val) == set(y_test) == set(range(10))
    assert schema["problem_type"] == "classification" and schema["classes"] == list(range(10))
    # digits has pixels that are 0 in every row: dropped as constant, and named
    digits = load_digits(as_frame=True).frame
    constant = [c for c in digits.columns if digits[c].nunique() == 1]
    assert constant and sorted(schema["dropped"]) == sorted(constant)
    # centered on the training median, scaled by the training spread: the training split only
    raw = digits.drop(columns=["target", *constant])
    column = schema["features"].index("pixel_2_3")
    spec = next(c for c in schema["transform"]["columns"] if c["name"] == "pixel_2_3")
    assert np.median(train[:, column]) == pytest.approx(0, abs=1e-6)
    assert spec["median"] in set(raw["pixel_2_3"]) and spec["scale"] > 0


def test_preprocess_is_seeded(splits, tmp_path):
    source = load_digits(as_frame=True).frame
    source.to_csv(tmp_path / "d.csv", index=False)
    run_step(
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
    again, train = read(tmp_path / "again", "train"), read(splits, "train")
    assert np.array_equal(again[0], train[0]) and np.array_equal(again[1], train[1])


def test_preprocess_reads_parquet(tmp_path):
    frame = load_digits(as_frame=True).frame
    frame.to_parquet(tmp_path / "d.parquet")
    result = run_step(
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
    assert (tmp_path / "out" / "test" / "test.parquet").exists()
    assert "(Parquet)" in result.stdout


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_preprocess_rejects_bad_input_in_one_line(case, tmp_path):
    content, message = BAD_INPUTS[case]
    (tmp_path / "data.csv").write_text(content)
    result = run_step(
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


@pytest.mark.parametrize("script", ["preprocess.py", "train.py", "evaluate.py"])
def test_a_step_that_fails_is_a_process_with_exit_code_2_one_line_and_the_failure_file(script, splits, tmp_path):
    """The process contract, in a real process per script (the checks above and below run the same entry points in
    this process): exit code 2, the one line on stderr and in SM_OUTPUT_FAILURE, no traceback, nothing written."""
    (tmp_path / "data.csv").write_text(BAD_INPUTS["every problem at once"][0])
    out = tmp_path / "out"
    args, message = {
        "preprocess.py": (
            ["--input", str(tmp_path / "data.csv"), "--output-dir", str(out), "--target", "label"],
            "preprocess: " + BAD_INPUTS["every problem at once"][1],
        ),
        "train.py": (
            ["--train", str(splits / "train"), "--validation", str(splits / "validation"), "--model_dir", str(out),
             "--dropout", "1.0"],
            "train: Dropout must be a number in [0, 0.8), got 1.0",
        ),
        "evaluate.py": (
            ["--model-dir", str(tmp_path), "--data-dir", str(splits), "--output-dir", str(out), "--max-gap", "-1"],
            "evaluate: MaxGap must be",
        ),
    }[script]  # fmt: skip
    env = {"REGULA_METRICS": "off", "SM_OUTPUT_FAILURE": str(tmp_path / "failure")}
    result = run_script(script, *args, env=env)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"ERROR {(tmp_path / 'failure').read_text().strip()}"], result.stderr
    assert result.stderr.startswith(f"ERROR {message}"), result.stderr
    assert "Traceback" not in result.stderr + result.stdout and not out.exists()


def test_an_epoch_of_a_large_table_is_a_bounded_number_of_rows(splits, tmp_path):
    """On more training rows than EPOCH_ROWS an epoch trains on that many, drawn at random, so early stopping looks
    as often on 2M rows as on 200k; a smaller table's epoch is one pass."""
    from steps.contract import SCHEMA, write_split
    from steps.train import EPOCH_ROWS

    rng = np.random.default_rng(0)
    large = tmp_path / "large"
    for name, rows in (("train", EPOCH_ROWS + 40_000), ("validation", 2_000)):
        x = rng.standard_normal((rows, 4)).astype(np.float32)
        write_split(large / name, name, [(x, (x[:, 0] > 0).astype(np.int64))], ["a", "b", "c", "d"])
    schema = {"problem_type": "classification", "features": ["a", "b", "c", "d"], "classes": [0, 1]}
    (large / "train" / SCHEMA).write_text(json.dumps({**schema, "class_counts": [1, 1]}))
    for data, rows in ((large, EPOCH_ROWS), (splits, 300)):
        model = tmp_path / f"model-{data.name}"
        result = train(data, model, "--max_epochs", "2", "--hidden", "8", in_process=True)
        assert result.returncode == 0, result.stderr
        config = json.loads((model / "config.json").read_text())
        assert config["training"]["epoch_rows"] == rows and f"epochs of {rows} rows" in result.stdout
        assert len(json.loads((model / "history.json").read_text())) == 2


def test_early_stopping_counts_optimizer_steps_on_a_small_table(splits, tmp_path):
    """300 training rows are 5 steps of batch 64 an epoch: the minimum training and the patience are counted in
    optimizer steps, so a small table trains as many steps before it may stop as a large one (defaults.MIN_STEPS)."""
    from steps.defaults import MIN_STEPS

    def trained(*args: str) -> tuple[dict, list]:
        model = tmp_path / f"model{len(list(tmp_path.iterdir()))}"
        result = train(splits, model, "--max_epochs", "300", *args, in_process=True)
        assert result.returncode == 0, result.stderr
        config = json.loads((model / "config.json").read_text())
        epochs = config["epochs"]
        assert f"train: stopped after {epochs} epochs ({epochs * per_epoch} optimizer steps)" in result.stdout
        return config, json.loads((model / "history.json").read_text())

    per_epoch = -(-300 // 64)
    config, short = trained("--patience", "2", "--patience_steps", "0", "--min_steps", "0")
    stopped = len(short)
    assert stopped < 300 and config["training"]["steps"] == stopped * per_epoch
    # the same run (same seed, same epochs up to there) may not stop where it did before the minimum
    minimum = (stopped + 10) * per_epoch
    config, history = trained("--patience", "2", "--patience_steps", "0", "--min_steps", str(minimum))
    assert [h["val_loss"] for h in history[:stopped]] == [h["val_loss"] for h in short]
    assert len(history) == 300 or config["training"]["steps"] == len(history) * per_epoch >= minimum
    # patience in steps: it stops once that many steps (here 8 epochs) passed without a better validation loss
    config, history = trained("--patience", "2", "--patience_steps", str(8 * per_epoch), "--min_steps", "0")
    waited = len(history) - config["best_epoch"]
    assert len(history) == 300 or waited == 8
    config, history = trained()  # the defaults
    assert len(history) == 300 or config["training"]["steps"] >= MIN_STEPS


def test_training_stops_early_restores_best_and_packs_inference_code(splits, tmp_path):
    # patience in epochs alone: the steps' minimum (the test above) would train these 300 rows to MaxEpochs
    stop = ("--patience", "3", "--patience_steps", "0", "--min_steps", "0")
    result = train(splits, tmp_path / "model", *stop, "--max_epochs", "200")
    assert result.returncode == 0, result.stderr
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    history = json.loads((tmp_path / "model" / "history.json").read_text())
    assert config["epochs"] == len(history) < 200, "early stopping"
    best = min(history, key=lambda h: h["val_loss"])
    assert config["best_epoch"] == best["epoch"] and len(history) == best["epoch"] + 3
    code = tmp_path / "model" / "code"
    packed = sorted(p.relative_to(code).as_posix() for p in code.rglob("*.py"))
    modules = [
        "__init__",
        "cnn",
        "image_decode",
        "inference",
        "inputs",
        "model",
        "model_code",
        "series",
        "serving_code",
        "table",
        "table_roles",
        "table_values",
        "target_encoding",
        "target_scale",
        "text",
    ]
    assert packed == ["serve.py", *(f"steps/{name}.py" for name in modules)], "the handlers, transform and server"
    epoch_lines = [line for line in result.stdout.splitlines() if line.startswith("epoch ")]
    assert len(epoch_lines) == len(history) and "gap=" in epoch_lines[0] and "val_loss_rise_streak=" in epoch_lines[0]

    # the restored weights are the best epoch's: evaluating them reproduces its losses as training measured them
    packed = pack(tmp_path / "model", tmp_path / "packed").parent
    # MaxGap 10: no model of these rows is that far off, and it beats the baseline by far: one decision, register
    evaluation = evaluate(packed, splits, tmp_path / "eval", "--max-gap", "10", in_process=False)
    assert evaluation.returncode == 0, evaluation.stderr
    report = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert report["metrics"]["validation"]["loss"] == pytest.approx(best["val_loss"], rel=1e-4)
    assert report["metrics"]["train"]["loss"] == pytest.approx(best["train_eval_loss"], rel=1e-4)
    # the relative gap: in units of the baseline's validation loss, the log loss of the training class shares
    (_, y_train), (_, y_val) = read(splits, "train"), read(splits, "validation")
    shares = np.bincount(y_train, minlength=10) / len(y_train)
    baseline = log_loss(y_val, np.tile(shares, (len(y_val), 1)), labels=range(10))
    assert report["baseline"]["validation"]["loss"] == pytest.approx(baseline, rel=1e-6)
    expected_gap = (best["val_loss"] - best["train_eval_loss"]) / baseline
    assert report["generalization_gap"]["relative"] == pytest.approx(expected_gap, rel=1e-3, abs=1e-5)
    assert (report["round_decision"], report["decision"]) == ("register", "register")
    assert ") <= MaxGap 10 and validation balanced_accuracy " in report["reason"]
    assert report["served_rows_checked"] == len(read(splits, "test")[1])  # every test row (fewer than 500)

    # the same model held to a perfect validation score, which it does not have: underfit, whatever its gap
    assert report["quality"]["validation"] < 1
    result = evaluate(packed, splits, tmp_path / "eval-high-bar", "--max-gap", "10", "--min-quality", "1")
    assert result.returncode == 0, result.stderr
    refused = json.loads((tmp_path / "eval-high-bar" / "evaluation.json").read_text())
    assert (refused["round_decision"], refused["decision"]) == ("underfit", "underfit")
    assert "< 1.0000 (the baseline's" in refused["reason"]


def evaluate(packed: Path, splits: Path, output: Path, *args: str, in_process: bool = True, env: dict | None = None):
    """steps/evaluate.py on a packed model, CloudWatch off."""
    run = run_step if in_process else run_script
    return run(
        "evaluate.py",
        "--model-dir",
        str(packed),
        "--data-dir",
        str(splits),
        "--output-dir",
        str(output),
        *args,
        env={"REGULA_METRICS": "off", **(env or {})},
    )


def test_evaluation_refuses_a_model_whose_serving_code_scores_raw_rows_differently(splits, tmp_path):
    """The artifact's own transform (code/steps/table.py) scales features differently from the one preprocessing
    used, as a stale or edited serving copy would: evaluation scores the raw test rows through it, finds them
    different from the evaluated features, fails the step with that message, and writes no evaluation (so nothing
    can register)."""
    result = train(splits, tmp_path / "model", "--max_epochs", "3")
    assert result.returncode == 0, result.stderr
    table = tmp_path / "model" / "code" / "steps" / "table.py"
    scaling = 'out[:, 0] = np.clip(scaled / column["scale"], -bound, bound)'
    assert table.read_text().count(scaling) == 1
    table.write_text(table.read_text().replace(scaling, scaling.replace('column["scale"]', '(2 * column["scale"])')))
    packed = pack(tmp_path / "model", tmp_path / "packed").parent
    failure = tmp_path / "failure"

    result = evaluate(packed, splits, tmp_path / "eval", in_process=False, env={"SM_OUTPUT_FAILURE": str(failure)})
    assert result.returncode == 2
    message = "evaluate: the serving code scores raw CSV rows differently from the evaluated features (max diff "
    assert result.stderr.strip().splitlines()[-1].startswith(f"ERROR {message}"), result.stderr
    assert "Traceback" not in result.stderr
    assert failure.read_text().startswith(message)
    assert not (tmp_path / "eval" / "evaluation.json").exists()


@pytest.mark.parametrize(
    "args,message",
    [
        # the pipeline parameters' rules and messages (steps/parameter_table.py), as the client and Preprocess say them
        (["--dropout", "1.0"], "Dropout must be a number in [0, 0.8), got 1.0"),
        (["--l1", "-0.1"], "L1 must be a number >= 0, got -0.1"),
        (["--growth", "0.5"], "RegularizationGrowth must be a number in [1.5, 1000] (the largest step), got 0.5"),
        (["--hidden", "a,b"], "HiddenLayers must be comma-separated positive layer sizes, got 'a,b'"),
        (["--patience", "0"], "Patience must be a whole number between 1 and 100000, got 0"),
        (["--stop_on_overfitting", "maybe"], "StopOnOverfitting must be one of no, yes, got 'maybe'"),
        (["--average_decay", "1"], "average_decay must be in [0, 1), got 1.0"),
        (["--average_decay", "nan"], "average_decay must be in [0, 1), got nan"),
    ],
)
def test_training_rejects_invalid_hyperparameters(splits, tmp_path, args, message):
    failure = {"SM_OUTPUT_FAILURE": str(tmp_path / "failure")}
    result = train(splits, tmp_path / "model", *args, env=failure, in_process=True)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert message in (tmp_path / "failure").read_text()
    assert not (tmp_path / "model").exists()


@pytest.mark.parametrize(
    "device,instance,message",
    [
        ("cpu", "ml.g5.xlarge", "is a GPU instance, but the training image is the CPU build"),
        ("gpu", "ml.m5.xlarge", "has no GPU, but the training image is the GPU build"),
        ("cpu", "ml.m6g.xlarge", "is a Graviton (arm64) instance"),
    ],
)
def test_training_refuses_an_instance_its_image_was_not_built_for(splits, tmp_path, device, instance, message):
    """A console or API start does not pass `regula start`'s check: the job refuses before reading any data."""
    env = {"REGULA_TRAINING_DEVICE": device, "SM_CURRENT_INSTANCE_TYPE": instance}
    result = train(splits, tmp_path / "model", env={**env, "SM_OUTPUT_FAILURE": str(tmp_path / "failure")})
    assert result.returncode == 2 and message in (tmp_path / "failure").read_text(), result.stderr
    assert not (tmp_path / "model").exists()


@pytest.mark.parametrize(
    "instance,kind,fits",
    [
        ("ml.m5.xlarge", ("cpu", "x86_64"), {"cpu"}),
        ("ml.c5n.2xlarge", ("cpu", "x86_64"), {"cpu"}),
        ("ml.m7i-flex.large", ("cpu", "x86_64"), {"cpu"}),
        ("ml.g4dn.xlarge", ("gpu", "x86_64"), {"gpu"}),
        ("ml.g6e.12xlarge", ("gpu", "x86_64"), {"gpu"}),
        ("ml.p4de.24xlarge", ("gpu", "x86_64"), {"gpu"}),
        ("ml.p5en.48xlarge", ("gpu", "x86_64"), {"gpu"}),
        ("ml.c7g.large", ("cpu", "arm64"), set()),
        ("ml.r6gd.xlarge", ("cpu", "arm64"), set()),
        ("ml.trn1.2xlarge", ("neuron", "x86_64"), set()),
        ("local", None, {"cpu", "gpu"}),  # not judged: SageMaker refuses a name it does not know
    ],
)
def test_instance_types_are_told_apart_by_their_family(instance, kind, fits):
    from steps.parameters import instance_kind, training_instance_problem

    assert instance_kind(instance) == kind
    assert {device for device in ("cpu", "gpu") if training_instance_problem(instance, device) is None} == fits


def test_inference_handlers_serve_the_packed_model_on_raw_rows(splits, tmp_path):
    assert train(splits, tmp_path / "model", "--max_epochs", "5").returncode == 0
    archive = pack(tmp_path / "model", tmp_path / "packed")
    served = tmp_path / "served"
    archive_files.extract(archive, served)
    inference = serving_code.import_inference(served / "code")
    predictor = inference.model_fn(str(served))
    raw = load_digits(as_frame=True).frame.drop(columns=["target"]).head(3)
    out = json.loads(inference.output_fn(inference.predict_fn(inference.input_fn(raw.to_csv(index=False)), predictor)))
    assert len(out["predictions"]) == 3 and all(p in range(10) for p in out["predictions"])
    assert np.allclose(np.sum(out["probabilities"], axis=1), 1, atol=1e-4)
    shuffled = raw[list(reversed(raw.columns))]
    as_json = inference.input_fn(json.dumps(shuffled.to_dict(orient="records")), "application/json")
    assert inference.predict_fn(as_json, predictor)["predictions"] == out["predictions"]
    with pytest.raises(inference.ClientError, match="missing required column"):
        predictor.predict(raw.iloc[:, :10])


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_preprocess_detects_the_delimiter_and_a_legacy_encoding(delimiter, tmp_path):
    penguins = palmerpenguins.load_penguins()
    penguins["island"] = penguins["island"].str.replace("Dream", "Drëam")  # not ASCII: latin-1 below
    (tmp_path / "data.csv").write_bytes(penguins.to_csv(index=False, sep=delimiter).encode("latin-1"))
    result = run_step(
        "preprocess.py", "--input", str(tmp_path / "data.csv"), "--output-dir", str(tmp_path / "out"),
        "--target", "species", env={"REGULA_METRICS": "off"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # the log says why it is Latin-1: nothing in the file is a UTF-8 character
    how = f"(CSV, delimiter {delimiter!r}, latin-1 (not UTF-8: no UTF-8 character among the non-ASCII bytes of its"
    assert how in result.stdout and "): 344 rows, 8 columns" in result.stdout
    schema = json.loads((tmp_path / "out" / "train" / "schema.json").read_text())
    assert "island=Drëam" in schema["features"] and schema["roles"]["sex"] == "categorical"


def preprocess(tmp_path, data: bytes):
    (tmp_path / "data.csv").write_bytes(data)
    return run_step(
        "preprocess.py", "--input", str(tmp_path / "data.csv"), "--output-dir", str(tmp_path / "out"),
        "--target", "species", env={"REGULA_METRICS": "off"},
    )  # fmt: skip


def refused(result, tmp_path, message: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR preprocess: ") and message in lines[0], result.stderr
    assert not (tmp_path / "out").exists(), "nothing half-written"


def test_preprocess_refuses_a_utf8_file_with_one_stray_byte_naming_its_line_and_byte(tmp_path):
    """Read as Latin-1, every 'Drëam' of the UTF-8 file would be a new category 'DrÃ«am', unseen at serving."""
    penguins = palmerpenguins.load_penguins()
    penguins["island"] = penguins["island"].str.replace("Dream", "Drëam")
    lines = penguins.to_csv(index=False).encode().splitlines(keepends=True)
    lines[200] = lines[200].replace(b"Torgersen", b"T\xf6rgersen").replace(b"Biscoe", b"B\xefscoe")
    assert b"\xf6" in lines[200] or b"\xef" in lines[200]
    column = lines[200].find(b"\xf6") if b"\xf6" in lines[200] else lines[200].find(b"\xef")
    refused(preprocess(tmp_path, b"".join(lines)), tmp_path, "data.csv is UTF-8 (")
    assert f"except line 201, byte {column + 1} (0x" in preprocess(tmp_path, b"".join(lines)).stderr


def test_preprocess_refuses_a_row_with_a_field_beyond_the_header_naming_its_line(tmp_path):
    """An unquoted comma in one value: pandas read the row with its last field dropped (or shifted)."""
    text = palmerpenguins.load_penguins().to_csv(index=False)
    lines = text.splitlines(keepends=True)
    first, later = lines[:], lines[:]
    first[1] = first[1].replace("Torgersen", "Torgersen, north")  # the first row decides pandas' reading
    later[100] = later[100].replace(",", ",,", 1)
    refused(preprocess(tmp_path, "".join(first).encode()), tmp_path, "data.csv: line 2 has 9 fields, the header 8")
    refused(preprocess(tmp_path, "".join(later).encode()), tmp_path, "data.csv: line 101 has 9 fields, the header 8")
    # a trailing delimiter on every row is no field: read as before
    trailing = "".join(line.rstrip("\n") + ",\n" if n else line for n, line in enumerate(lines))
    result = preprocess(tmp_path, trailing.encode())
    assert result.returncode == 0 and "344 rows, 8 columns" in result.stdout, result.stderr


def test_a_header_over_64_kib_is_read_whole_for_duplicates(tmp_path):
    """The header used to be cut at 64 KiB: a duplicate past the cut went unseen, and a name cut in two could
    look like an earlier one."""
    from steps.tablefile import TableFileError, read_table

    names = [f"feature_{i:05d}_{'x' * 20}" for i in range(3000)]
    assert len(",".join(names)) > 65536
    late = tmp_path / "late.csv"
    late.write_text(",".join([*names, names[10]]) + "\n" + ",".join(["1"] * (len(names) + 1)) + "\n")
    with pytest.raises(TableFileError, match=f"duplicate column names: {names[10]}$"):
        read_table(late)
    # the name that straddles byte 65536 begins like an earlier name (cut at the byte, it is that name): no duplicate
    base = names[:1800]
    filler = "f" * (65536 - len(",".join(base)) - 1 - 1 - len(names[0]))
    straddling = [*base, filler, names[0] + "_and_more", *names[1800:]]
    assert len(",".join([*base, filler])) + 1 + len(names[0]) == 65536
    whole = tmp_path / "whole.csv"
    whole.write_text(",".join(straddling) + "\n" + ",".join(["1"] * len(straddling)) + "\n")
    frame, _ = read_table(whole)
    assert list(frame.columns) == straddling


def test_preprocess_reads_a_european_csv_with_decimal_commas(tmp_path):
    palmerpenguins.load_penguins().to_csv(tmp_path / "eu.csv", sep=";", decimal=",", index=False)
    result = run_step(
        "preprocess.py", "--input", str(tmp_path / "eu.csv"), "--output-dir", str(tmp_path / "out"),
        "--target", "species", env={"REGULA_METRICS": "off"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "(CSV, delimiter ';', decimal comma, utf-8-sig)" in result.stdout
    roles = json.loads((tmp_path / "out" / "train" / "schema.json").read_text())["roles"]
    assert roles["bill_length_mm"] == roles["body_mass_g"] == "numeric"


def test_duplicate_columns_are_reported_with_every_other_problem(tmp_path):
    (tmp_path / "data.csv").write_text("a,b,a\n1,2,3\n4,5,6\n")
    result = run_step(
        "preprocess.py", "--input", str(tmp_path / "data.csv"), "--output-dir", str(tmp_path / "out"),
        "--target", "label", "--exclude-columns", "zz", env={"REGULA_METRICS": "off"},
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().startswith(
        "ERROR preprocess: 3 problems: (1) duplicate column names: a; "
        "(2) ExcludeColumns names columns the table does not have: zz; (3) target column 'label' not found"
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("level", ["NaN", "-1", "0.5", '"1"'])
def test_training_refuses_an_earlier_evaluation_with_an_unusable_level(splits, tmp_path, level):
    earlier = tmp_path / "round1"
    earlier.mkdir()
    report = (
        f'{{"round": 1, "regularization": {{"level": {level}}}, "thresholds": {{"max_gap": 0.1}}, '
        '"generalization_gap": {"relative": 0.3, "after_best_epoch": 0.4}, "decision": "overfit"}'
    )
    (earlier / "evaluation.json").write_text(report)
    result = train(splits, tmp_path / "model", "--round", "2", "--earlier", str(earlier), in_process=True)
    assert result.returncode == 2, result.stderr
    assert "holds no usable level and gap" in result.stderr and "Traceback" not in result.stderr


def test_the_earlier_rounds_evaluations_are_read_and_checked_alike_by_training_and_evaluation(tmp_path):
    import argparse

    from steps.contract import StepError
    from steps.evaluate import earlier_rounds
    from steps.train_args import earlier_rounds as training_reads

    report = {
        "round": 1, "regularization": {"level": 1.0, "dropout": 0.1, "l1": 1e-5, "l2": 0.01},
        "generalization_gap": {"relative": 0.3, "standard_error": 0.02, "after_best_epoch": None},
        "thresholds": {"max_gap": 0.1}, "model_uri": "s3://b/m.tar.gz", "artifact_sha256": "ab",
        "quality": {"metric": "accuracy", "validation": 0.9, "baseline": 0.5, "test": 0.9}, "round_decision": "overfit",
        "decision": "overfit",
    }  # fmt: skip
    folder = tmp_path / "round1"
    folder.mkdir()
    evaluation = folder / "evaluation.json"
    evaluation.write_text(json.dumps(report))
    args = argparse.Namespace(earlier=str(folder), round=2)
    assert training_reads(args) == [{"round": 1, "level": 1.0, "gap": 0.3, "decision": "overfit"}]
    assert [s["round"] for s in earlier_rounds(str(tmp_path), 2)] == [1]

    evaluation.write_text(json.dumps({**report, "round": 2}))
    for read in (lambda: training_reads(args), lambda: earlier_rounds(str(tmp_path), 2)):
        with pytest.raises(StepError, match=r"round1/evaluation\.json is round 2's evaluation, expected round 1's"):
            read()
    evaluation.write_text(json.dumps({"round": 1}))
    for read in (lambda: training_reads(args), lambda: earlier_rounds(str(tmp_path), 2)):
        with pytest.raises(StepError, match=r"^cannot read round 1's evaluation .*round1/evaluation\.json: "):
            read()
    evaluation.write_text("{not json")
    for read in (lambda: training_reads(args), lambda: earlier_rounds(str(tmp_path), 2)):
        with pytest.raises(StepError, match=r"^cannot read round 1's evaluation "):
            read()


def test_a_windows_export_is_read_as_windows_1252_and_the_note_says_why(tmp_path):
    """0x80 is the euro sign in a spreadsheet's export, a control character in Latin-1."""
    from steps.tablefile import read_table

    (tmp_path / "w.csv").write_bytes("city,n\nZürich,1\n€ zone,2\n".encode("cp1252"))
    frame, how = read_table(tmp_path / "w.csv")
    assert list(frame["city"]) == ["Zürich", "€ zone"]
    assert how == "CSV, delimiter ',', cp1252 (not UTF-8: no UTF-8 character among the non-ASCII bytes of its 2 lines)"
