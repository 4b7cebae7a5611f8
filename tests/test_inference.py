"""Raw rows through the serving code packed with a really trained model (code/steps/inference.py beside the weights)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from helpers import run_script, run_training
from palmerpenguins import load_penguins

from steps import serving_code

SPECIES = ["Adelie", "Chinstrap", "Gentoo"]


def load_serving_code(model_dir: Path) -> tuple[ModuleType, ModuleType]:
    """code/steps/inference.py of `model_dir` and the code/steps/table.py it uses, imported as evaluation does;
    afterwards this process's `steps` modules are the repository's again."""
    modules = serving_code.import_artifact(model_dir / "code")
    for module in modules.values():
        assert Path(module.__file__).is_relative_to(model_dir / "code"), module
    return modules["inference"], modules["table"]


def train_model(root: Path, frame: pd.DataFrame, target: str, epochs: int) -> Path:
    """preprocess.py then train.py on `frame`, as the pipeline runs them; the model folder."""
    frame.to_csv(root / "table.csv", index=False)
    result = run_script(
        "preprocess.py",
        "--input",
        str(root / "table.csv"),
        "--output-dir",
        str(root / "splits"),
        "--target",
        target,
        env={"REGULA_METRICS": "off"},
    )
    assert result.returncode == 0, result.stderr
    result = run_training(root / "splits", root / "model", "--max_epochs", str(epochs))
    assert result.returncode == 0, result.stderr
    for name in ("model.pt", "config.json", "schema.json", "code/steps/inference.py", "code/steps/table.py"):
        assert (root / "model" / name).is_file(), name
    return root / "model"


def regression_table(rows: int = 400) -> pd.DataFrame:
    """y = 3a - 2b + a shop's effect + noise, with the shop as text."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=rows), rng.normal(size=rows)
    shop = rng.choice(["north", "south", "east"], size=rows)
    effect = pd.Series(shop).map({"north": 2.0, "south": -1.0, "east": 0.0}).to_numpy()
    return pd.DataFrame({"a": a, "b": b, "shop": shop, "y": 3 * a - 2 * b + effect + rng.normal(0, 0.3, rows)})


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    """The penguins classifier and the regression model, trained side by side (each step is one process)."""
    jobs = {
        "penguins": (load_penguins(), "species", 30),
        "regression": (regression_table(), "y", 50),
    }
    with ThreadPoolExecutor(len(jobs)) as pool:
        futures = {n: pool.submit(train_model, tmp_path_factory.mktemp(n), *job) for n, job in jobs.items()}
        return {name: future.result() for name, future in futures.items()}


@pytest.fixture(scope="module")
def penguins(trained):
    frame = load_penguins()
    model_dir = trained["penguins"]
    inference, table = load_serving_code(model_dir)
    predictor = inference.model_fn(str(model_dir))

    def serve(body, content_type: str = "text/csv") -> dict:
        rows = inference.input_fn(body, content_type)
        return json.loads(inference.output_fn(inference.predict_fn(rows, predictor), "application/json"))

    return SimpleNamespace(
        inference=inference,
        predictor=predictor,
        serve=serve,
        rows=frame.drop(columns=["species"]),
        species=frame["species"],
        required=table.required_columns(predictor.schema["transform"]),
    )


def records(rows: pd.DataFrame) -> list[dict]:
    """Rows as JSON objects, missing values as null."""
    return json.loads(rows.to_json(orient="records"))


def sample(penguins, count: int = 12) -> pd.DataFrame:
    """Four rows of each species; the fourth has only island and year (numbers and sex missing)."""
    return pd.concat([penguins.rows.iloc[0:4], penguins.rows.iloc[150:154], penguins.rows.iloc[300:304]])[:count]


# -- what comes back ------------------------------------------------------------------------------------------------


def test_csv_with_header_gives_species_and_probabilities(penguins):
    rows = sample(penguins)
    out = penguins.serve(rows.to_csv(index=False))
    assert out["classes"] == SPECIES
    assert len(out["predictions"]) == len(rows) and set(out["predictions"]) <= set(SPECIES)
    probabilities = np.array(out["probabilities"])
    assert probabilities.shape == (len(rows), 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
    assert [SPECIES[i] for i in probabilities.argmax(axis=1)] == out["predictions"]


def test_raw_rows_are_predicted_well(penguins):
    out = penguins.serve(penguins.rows.to_csv(index=False))
    accuracy = np.mean(np.array(out["predictions"]) == penguins.species.to_numpy())
    assert accuracy > 0.9


def test_extra_columns_such_as_the_target_are_ignored(penguins):
    rows = sample(penguins)
    with_target = rows.assign(species="Gentoo", comment="seen on a Tuesday")
    assert penguins.serve(with_target.to_csv(index=False)) == penguins.serve(rows.to_csv(index=False))


@pytest.mark.parametrize(
    "body",
    ["shuffled csv", "json records", "json instances", "json lines", "csv bytes"],
)
def test_every_format_and_column_order_gives_the_same_answer(penguins, body):
    rows = sample(penguins)
    expected = penguins.serve(rows.to_csv(index=False))
    shuffled = rows[list(np.random.default_rng(3).permutation(rows.columns))]
    assert list(shuffled.columns) != list(rows.columns)
    bodies = {
        "shuffled csv": (shuffled.to_csv(index=False), "text/csv"),
        "json records": (json.dumps(records(shuffled)), "application/json"),
        "json instances": (json.dumps({"instances": records(rows)}), "application/json"),
        "json lines": ("\n".join(json.dumps(r) for r in records(rows)), "application/jsonlines"),
        "csv bytes": (rows.to_csv(index=False).encode(), "text/csv; charset=utf-8"),
    }
    out = penguins.serve(*bodies[body])
    assert out["predictions"] == expected["predictions"]
    assert out["probabilities"] == expected["probabilities"]


def test_one_json_object_is_one_row(penguins):
    row = sample(penguins).iloc[[5]]
    out = penguins.serve(json.dumps(records(row)[0]), "application/json")
    assert out["predictions"] == penguins.serve(row.to_csv(index=False))["predictions"]


# -- gaps and unknowns are served ------------------------------------------------------------------------------------


def test_missing_value_in_a_number_column_still_predicts(penguins):
    # bill_length_mm has gaps in the table (so it is optional, with a missing-indicator): a row that has the column
    # but no value in it is imputed
    rows = sample(penguins, 3).copy()
    rows["bill_length_mm"] = [np.nan, 40.0, np.nan]
    out = penguins.serve(rows.to_csv(index=False))
    assert len(out["predictions"]) == 3
    out = penguins.serve(json.dumps(records(rows)), "application/json")
    assert len(out["predictions"]) == 3


def test_optional_column_left_out_still_predicts(penguins):
    optional = sorted(set(penguins.predictor.schema["roles"]) - set(penguins.required))
    # the columns with gaps anywhere in penguins: the four measurements and sex
    assert optional == ["bill_depth_mm", "bill_length_mm", "body_mass_g", "flipper_length_mm", "sex"]
    rows = sample(penguins)
    out = penguins.serve(rows.drop(columns=["sex"]).to_csv(index=False))
    assert len(out["predictions"]) == len(rows)
    rows = rows.assign(sex=None)
    assert penguins.serve(json.dumps(records(rows)), "application/json")["predictions"] == out["predictions"]


def test_unknown_island_still_predicts(penguins):
    rows = sample(penguins).assign(island="Atlantis")
    out = penguins.serve(rows.to_csv(index=False))
    assert len(out["predictions"]) == len(rows)
    np.testing.assert_allclose(np.sum(out["probabilities"], axis=1), 1.0, atol=1e-4)


# -- client errors ---------------------------------------------------------------------------------------------------


def client_error(penguins, body, content_type: str = "text/csv") -> str:
    with pytest.raises(penguins.inference.ClientError) as error:
        penguins.serve(body, content_type)
    assert isinstance(error.value, ValueError)
    return str(error.value)


def test_missing_required_column_is_a_client_error(penguins):
    assert "year" in penguins.required
    message = client_error(penguins, sample(penguins).drop(columns=["year"]).to_csv(index=False))
    assert "missing required column(s): year" in message


def test_wrong_typed_value_is_a_client_error_naming_column_and_row(penguins):
    rows = sample(penguins).astype({"body_mass_g": object})
    rows.iloc[2, rows.columns.get_loc("body_mass_g")] = "abc"
    message = client_error(penguins, rows.to_csv(index=False))
    assert "column 'body_mass_g'" in message and "'abc'" in message and "rows 2" in message
    message = client_error(penguins, json.dumps(records(rows)), "application/json")
    assert "column 'body_mass_g'" in message and "'abc'" in message


def test_an_infinite_number_is_refused_as_infinite_naming_column_and_row(penguins):
    """inf read as a missing value: refused as "missing" where the table had no gaps, and where it had (body mass)
    silently imputed with the median: a prediction for a number the client never sent."""
    rows = sample(penguins).astype({"body_mass_g": object, "year": object})
    rows.iloc[2, rows.columns.get_loc("body_mass_g")] = "inf"
    rows.iloc[5, rows.columns.get_loc("year")] = "-Infinity"
    message = client_error(penguins, rows.to_csv(index=False))
    assert message == (
        "2 problems: (1) column 'body_mass_g': 1 values are infinite, not finite numbers (inf; rows 2); "
        "(2) column 'year': 1 values are infinite, not finite numbers (-inf; rows 5)"
    )
    # JSON's Infinity (Python's json reads and writes it), read against the model's columns as the server does
    body = json.dumps([{**r, "bill_length_mm": float("inf")} if i == 1 else r for i, r in enumerate(records(rows[:2]))])
    with pytest.raises(penguins.inference.ClientError) as error:
        penguins.predictor.predict(penguins.predictor.read_rows(body, "application/json"))
    assert str(error.value) == "column 'bill_length_mm': 1 values are infinite, not finite numbers (inf; rows 1)"


def test_json_records_with_none_of_the_models_keys_name_the_keys_sent_and_expected(penguins):
    body = json.dumps([{"Island": "Dream", "mass": 3000}, {"note": "x"}])
    with pytest.raises(penguins.inference.ClientError) as error:
        penguins.predictor.predict(penguins.predictor.read_rows(body, "application/json"))
    assert str(error.value) == (
        "the 2 JSON records have none of the model's columns: got 'Island', 'mass', 'note'; expected 'island', "
        "'bill_length_mm', 'bill_depth_mm', 'flipper_length_mm', 'body_mass_g', 'sex', 'year'"
    )
    with pytest.raises(penguins.inference.ClientError) as error:  # objects without keys: none came
        penguins.predictor.predict(penguins.predictor.read_rows("[{}, {}]", "application/json"))
    assert str(error.value).startswith("the 2 JSON records have none of the model's columns: got no keys; expected")


def test_missing_column_and_wrong_value_are_one_error_naming_both(penguins):
    rows = sample(penguins).drop(columns=["year"]).astype({"body_mass_g": object})
    rows.iloc[0, rows.columns.get_loc("body_mass_g")] = "abc"
    message = client_error(penguins, rows.to_csv(index=False))
    assert message.startswith("2 problems")
    assert "missing required column(s): year" in message and "column 'body_mass_g'" in message


def test_csv_without_header_is_a_client_error(penguins):
    message = client_error(penguins, sample(penguins).to_csv(index=False, header=False))
    assert "header row" in message


def test_json_list_of_lists_is_a_client_error(penguins):
    lists = sample(penguins).to_json(orient="values")
    assert json.loads(lists)[0][0] == "Torgersen"
    for body in (lists, json.dumps({"instances": json.loads(lists)})):
        assert "objects keyed by column name" in client_error(penguins, body, "application/json")


@pytest.mark.parametrize(
    ("body", "content_type", "says"),
    [
        ("", "text/csv", "cannot read the CSV body"),
        (b"", "text/csv", "cannot read the CSV body"),
        ("", "application/json", "cannot read the JSON body"),
        ("[]", "application/json", "no rows"),
        ("", "application/jsonlines", "no rows"),
        ("island,year\n", "text/csv", "no rows"),
    ],
)
def test_empty_body_is_a_client_error(penguins, body, content_type, says):
    assert says in client_error(penguins, body, content_type)


def test_broken_json_is_a_client_error(penguins):
    assert "cannot read the JSON body" in client_error(penguins, '[{"island": "Dream",', "application/json")


def test_unsupported_content_type_is_a_client_error(penguins):
    message = client_error(penguins, sample(penguins).to_csv(index=False), "application/x-npy")
    assert "unsupported content type 'application/x-npy'" in message and "text/csv" in message


def test_json_list_where_a_category_belongs_is_a_client_error(penguins):
    row = {**records(sample(penguins, 1))[0], "island": ["Dream"]}
    assert "island" in client_error(penguins, json.dumps([row]), "application/json")


def test_body_that_is_not_utf8_is_a_client_error_naming_line_and_byte(penguins):
    """Never decoded another way: Latin-1 would make 'mâle' a category the model never saw, silently."""
    body = sample(penguins).assign(sex="mâle").to_csv(index=False).encode("latin-1")
    column = body.splitlines()[1].find(b"\xe2") + 1
    assert f"the body is not UTF-8 text: line 2, byte {column} (0xe2)" in client_error(penguins, body)


def test_csv_row_with_a_field_beyond_the_header_is_a_client_error_naming_its_line(penguins):
    """An unquoted comma in a value: pandas dropped the last field of the row (or shifted the row by one)."""
    lines = sample(penguins).to_csv(index=False).splitlines(keepends=True)
    for number in (1, 5):  # the first data row decides how pandas reads the rest
        wrong = lines[:]
        wrong[number] = wrong[number].replace(",", ", and more,", 1)
        message = client_error(penguins, "".join(wrong))
        assert f"line {number + 1} has 8 fields, the header 7: a value holding a comma needs quotes" in message


def test_csv_rows_ending_in_a_delimiter_keep_values_in_their_columns(penguins):
    rows = penguins.inference.input_fn("bill_length_mm,bill_depth_mm\n39.1,18.7,\n", "text/csv")
    assert rows.to_dict("records") == [{"bill_length_mm": 39.1, "bill_depth_mm": 18.7}]


# -- regression -----------------------------------------------------------------------------------------------------


def test_regression_model_serves_values_near_the_truth(trained):
    frame = regression_table()
    model_dir = trained["regression"]
    inference, _ = load_serving_code(model_dir)
    predictor = inference.model_fn(str(model_dir))
    assert predictor.schema["problem_type"] == "regression"
    body = frame.drop(columns=["y"]).to_csv(index=False)
    out = json.loads(inference.output_fn(inference.predict_fn(inference.input_fn(body, "text/csv"), predictor)))
    predictions = np.array(out["predictions"])
    assert set(out) == {"predictions"} and predictions.dtype == np.float64 and predictions.shape == (len(frame),)
    truth = frame["y"].to_numpy()
    r2 = 1 - np.sum((truth - predictions) ** 2) / np.sum((truth - truth.mean()) ** 2)
    assert r2 > 0.7


# -- JSON records cost memory linear in the body ----------------------------------------------------------------------

SPARSE_RECORDS = """
import json, resource, sys, time
from steps import serving_code
model_dir = sys.argv[1]
inference = serving_code.import_inference(model_dir + "/code")
predictor = inference.model_fn(model_dir)
# 16,000 records of one distinct key each: 192 KB that pandas' from_records makes a 16,000 x 16,000 frame (2 GB)
body = "[" + ",".join('{"c%d":0}' % n for n in range(16_000)) + "]"
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
resource.setrlimit(resource.RLIMIT_DATA, (2 << 30, 2 << 30))  # the machine is shared: fail instead of swapping
answers, start = {}, time.perf_counter()
for name, read in (("input_fn", inference.input_fn), ("predictor", getattr(predictor, "read_rows", None))):
    try:
        answers[name] = ["rows", read(body, "application/json").shape[0]]
    except Exception as error:  # MemoryError included: the answer says which
        answers[name] = [type(error).__name__, str(error)[:300]]
answers["seconds"] = time.perf_counter() - start
answers["grown_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(json.dumps(answers))
"""


def test_json_records_with_distinct_keys_cost_memory_linear_in_the_body(trained):
    """A separate process, so that the quadratic frame of the old reader cannot take this one's memory with it."""
    import subprocess
    import sys

    from helpers import REPO

    result = subprocess.run(
        [sys.executable, "-c", SPARSE_RECORDS, str(trained["penguins"])],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    answers = json.loads(result.stdout.splitlines()[-1])
    assert (
        answers["input_fn"][0] == "ClientError"
        and "too sparse: 16000 records x 16000 distinct keys" in (answers["input_fn"][1])
    )
    assert answers["predictor"][0] == "ClientError"
    assert "over 4096 distinct keys that are not the model's columns" in answers["predictor"][1]
    assert answers["grown_mb"] < 200 and answers["seconds"] < 10, answers


def test_json_keys_beyond_the_models_columns_are_dropped_while_reading(penguins):
    rows = sample(penguins)
    expected = penguins.serve(rows.to_csv(index=False))
    noisy = [{**record, **{f"note_{i}": "x" * 20 for i in range(200)}} for record in records(rows)]
    read = penguins.predictor.read_rows(json.dumps(noisy), "application/json")
    assert list(read.columns) == list(rows.columns)  # the notes never became columns
    out = json.loads(penguins.inference.output_fn(penguins.inference.predict_fn(read, penguins.predictor)))
    assert out == expected
    # a record may leave out optional columns: a missing key is a missing value, the rows keep their order
    sparse = records(rows)
    del sparse[1]["sex"]
    read = penguins.predictor.read_rows(json.dumps(sparse), "application/json")
    assert read["sex"].isna().tolist() == [i == 1 or pd.isna(rows["sex"].iloc[i]) for i in range(len(rows))]


def test_a_wide_header_is_refused_in_linear_time(penguins):
    """The duplicate-name check counted each name over the whole header: 32,000 names took 18 s."""
    import time

    from steps.inference import MAX_REQUEST_COLUMNS

    header, row = sample(penguins, 1).to_csv(index=False).splitlines()

    def widened(extra: int) -> str:  # the model's columns and `extra` more, one row
        return f"{header},{','.join(f'c{i}' for i in range(extra))}\n{row},{','.join('0' * extra)}\n"

    wide = widened(MAX_REQUEST_COLUMNS)
    started = time.perf_counter()
    message = client_error(penguins, wide)
    assert (
        message == f"the body has {MAX_REQUEST_COLUMNS + 7} columns; a request may have at most {MAX_REQUEST_COLUMNS}"
    )
    assert time.perf_counter() - started < 5
    assert len(penguins.serve(widened(2000).encode())["predictions"]) == 1
