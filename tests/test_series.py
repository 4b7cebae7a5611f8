"""Time series (TimeColumn): the chronological split, features from the past only, the seasonal naive baseline,
every problem of a bad series table at once, and a multi-series table through the local pipeline to forecasts."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import pack, regula, run_folders, run_step, run_training, serving

from pipelines.local.engine.s3 import split_uri
from pipelines.local.run import run_local
from steps import series
from steps.contract import read_schema, read_split

OFF = {"REGULA_METRICS": "off"}


def sales(days: int = 240, stores: int = 3, seed: int = 0) -> pd.DataFrame:
    """Daily sales of a few stores: a level per store, a slow trend, a weekly pattern, noise; a promo column."""
    rng = np.random.default_rng(seed)
    parts = []
    for store in range(stores):
        i = np.arange(days)
        y = 10 + 5 * store + 0.02 * i + (2 + store) * np.sin(2 * np.pi * i / 7) + rng.normal(0, 0.3, days)
        dates = pd.date_range("2021-03-01", periods=days, freq="D").strftime("%Y-%m-%d")
        parts.append(pd.DataFrame({"date": dates, "store": f"s{store}", "sales": y.round(4), "promo": i % 3 == 0}))
    return pd.concat(parts, ignore_index=True)


def preprocess(data: Path, out: Path, *args: str):
    return run_step("preprocess.py", "--input", str(data), "--output-dir", str(out), *args, env=OFF)


def test_the_seasonal_naive_forecast_is_the_value_one_season_earlier():
    y = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    # season 3, origin index 4 (value 5): step 1 -> y[2] = 3, step 2 -> y[3] = 4, step 3 -> y[4] = 5,
    # step 4 -> two seasons back: y[4 + 4 - 6] = y[2] = 3
    origins = np.array([4, 4, 4, 4])
    assert series.seasonal_naive(y, origins, np.array([1, 2, 3, 4]), 3).tolist() == [3.0, 4.0, 5.0, 3.0]
    # no season: the last value, for every step
    assert series.seasonal_naive(y, origins, np.array([1, 2, 3, 4]), 1).tolist() == [5.0, 5.0, 5.0, 5.0]


def test_the_split_is_chronological_per_series_and_the_baseline_is_the_hand_computed_naive(tmp_path):
    frame = sales(days=100, stores=2)
    frame.to_csv(tmp_path / "sales.csv", index=False)
    result = preprocess(
        tmp_path / "sales.csv",
        tmp_path / "out",
        "--target",
        "sales",
        "--time-column",
        "date",
        "--series-columns",
        "store",
        "--season",
        "7",
    )
    assert result.returncode == 0, result.stderr
    schema = read_schema(tmp_path / "out" / "train")
    assert schema["kind"] == "series" and schema["series"]["season"] == 7 and schema["series"]["frequency"] == "D"
    # 100 days: the first 21 are history only; targets 21..59 train, 60..79 validate, 80..99 test, in each store
    dates = pd.date_range("2021-03-01", periods=100, freq="D").strftime("%Y-%m-%d")
    for bounds in schema["split"]["boundaries"]:
        assert bounds["train"] == [dates[21], dates[59]]
        assert bounds["validation"] == [dates[60], dates[79]]
        assert bounds["test"] == [dates[80], dates[99]]
    assert schema["rows"] == {"train": 2 * 39, "validation": 2 * 20, "test": 2 * 20}
    assert "train targets 2021-03-22 .. 2021-04-29, validation 2021-04-30 .. 2021-05-19" in result.stdout

    # the label is the change over the seasonal naive forecast, computed by hand here: y[t] - y[t - 7]
    _, labels = read_split(tmp_path / "out" / "validation", "validation")
    by_hand = []
    for store in ("s0", "s1"):
        y = frame.loc[frame["store"] == store, "sales"].to_numpy()
        by_hand += [y[t] - y[t - 7] for t in range(60, 80)]
    np.testing.assert_allclose(labels, by_hand, atol=1e-4)
    # and the naive forecast itself, per row, for evaluation's R2 on levels: y[t - 7]
    naive = np.load(tmp_path / "out" / "validation" / "naive.npy")
    by_hand = [frame.loc[frame["store"] == s, "sales"].to_numpy()[t - 7] for s in ("s0", "s1") for t in range(60, 80)]
    np.testing.assert_allclose(naive, by_hand, atol=1e-9)


def test_max_train_rows_keeps_the_latest_training_forecasts_of_every_series(tmp_path):
    sales(days=100, stores=2).to_csv(tmp_path / "sales.csv", index=False)
    # stores of 39 training forecasts each (targets 21..59); 21 of 78 kept: 11 and 10 (largest remainders, ties to
    # the first), each store's latest by target time; validation and test keep every row
    args = ("--target", "sales", "--time-column", "date", "--series-columns", "store", "--season", "7")
    result = preprocess(tmp_path / "sales.csv", tmp_path / "out", *args, "--max-train-rows", "21")
    assert result.returncode == 0, result.stderr
    schema = read_schema(tmp_path / "out" / "train")
    assert schema["rows"] == {"train": 21, "validation": 40, "test": 40}
    dates = pd.date_range("2021-03-01", periods=100, freq="D").strftime("%Y-%m-%d")
    assert [b["train"] for b in schema["split"]["boundaries"]] == [[dates[49], dates[59]], [dates[50], dates[59]]]
    assert "MaxTrainRows 21: kept the latest 21 of 78 training forecasts" in result.stdout
    # the kept rows are the latest: their labels are y[t] - y[t - 7] for those t, by hand
    frame = pd.read_csv(tmp_path / "sales.csv")
    _, labels = read_split(tmp_path / "out" / "train", "train")
    by_hand = []
    for store, first in (("s0", 49), ("s1", 50)):
        y = frame.loc[frame["store"] == store, "sales"].to_numpy()
        by_hand += [y[t] - y[t - 7] for t in range(first, 60)]
    np.testing.assert_allclose(sorted(labels), sorted(by_hand), atol=1e-4)


def test_no_feature_reads_a_value_at_or_after_the_forecast_time():
    """A series where peeking shows: the covariate `leak` is the target at the same time. Every feature of a
    forecast made at origin t must stay the same when every value after t (target and covariates) changes."""
    rng = np.random.default_rng(1)
    n, origin = 120, 80
    y = rng.normal(size=n)
    frame = pd.DataFrame({"leak": y.copy(), "price": rng.normal(size=n)})
    spec = {
        "season": 7,
        "horizon": 3,
        "lags": series.lags_for(7),
        "windows": series.windows_for(7),
        "time_kind": "integer",
        "frequency": 1,
        "calendar": ["phase"],
        "known_columns": ["price"],
        "lagged_columns": ["leak"],
        "series_columns": [],
    }
    plan = series.Plan(spec)
    times = np.arange(n, dtype=np.float64)
    origins, steps = np.full(3, origin), np.arange(1, 4)
    before, naive = series.raw_features(y, times, frame, origins, steps, plan, {})

    changed_y, changed = y.copy(), frame.copy()
    changed_y[origin + 1 :] += 100.0
    changed.loc[origin + 1 :, "leak"] += 100.0
    after, naive_after = series.raw_features(changed_y, times, changed, origins, steps, plan, {})
    unknown = [c for c in before.columns if not c.startswith("price")]
    pd.testing.assert_frame_equal(before[unknown], after[unknown])
    np.testing.assert_array_equal(naive, naive_after)
    assert before["leak at t"].tolist() == [y[origin]] * 3  # the covariate is lagged: its value at the origin
    # a known covariate is read at the target time, and only that one
    np.testing.assert_array_equal(before["price at target"], frame["price"].to_numpy()[origin + 1 : origin + 4])


def test_a_leaking_covariate_does_not_reach_the_training_features(tmp_path):
    """Through preprocessing: y is noise and the covariate `leak` is y at the same time, so a feature that read any
    value at the target time would predict it exactly; every training feature must be uncorrelated with it."""
    rng = np.random.default_rng(2)
    y = rng.normal(size=300)
    pd.DataFrame({"t": np.arange(300), "y": y, "leak": y}).to_csv(tmp_path / "noise.csv", index=False)
    result = preprocess(
        tmp_path / "noise.csv", tmp_path / "out", "--target", "y", "--time-column", "t", "--season", "1"
    )
    assert result.returncode == 0, result.stderr
    features, labels = read_split(tmp_path / "out" / "train", "train")
    names = read_schema(tmp_path / "out" / "train")["features"]
    # one series, Horizon 1, 8 values of history: training row i forecasts y[8 + i] from origin 7 + i
    future, last = y[8 : 8 + len(labels)], y[7 : 7 + len(labels)]
    np.testing.assert_allclose(labels, future - last, atol=1e-5)  # the change over the naive (last) value
    varying = [j for j in range(len(names)) if features[:, j].std() > 0]  # with no season, "naive" is 0 throughout
    correlations = {names[j]: abs(np.corrcoef(features[:, j], future)[0, 1]) for j in varying}
    assert max(correlations.values()) < 0.3, correlations
    # the covariate is there, lagged: at the origin it is the last value
    np.testing.assert_allclose(np.corrcoef(features[:, names.index("leak at t")], last)[0, 1], 1.0, atol=1e-3)


def test_every_problem_of_a_bad_series_table_is_reported_at_once(tmp_path):
    frame = sales(days=60, stores=3)
    frame.loc[5, "date"] = "not a date"
    frame = pd.concat([frame, frame.iloc[[10]]], ignore_index=True)  # s0 has one day twice
    frame = frame[(frame["store"] != "s2") | (frame["date"] == "2021-03-01")]  # s2 has a single row
    frame = frame.drop(index=frame.index[(frame["store"] == "s1") & (frame["date"] == "2021-03-20")])  # a gap in s1
    frame.to_csv(tmp_path / "bad.csv", index=False)
    result = preprocess(
        tmp_path / "bad.csv",
        tmp_path / "out",
        "--target",
        "sales",
        "--time-column",
        "date",
        "--series-columns",
        "store",
        "--season",
        "7",
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "ERROR preprocess: 4 problems: (1) TimeColumn 'date': 1 values are not dates or times ('not a date'; rows 5); "
        "(2) duplicate (series, time) rows in 1 series: store=s0 (1, first at 2021-03-11); "
        "(3) gaps in 1 series: store=s1 (1 missing steps of 1D); fill the missing times before training; "
        "(4) 1 series too short: store=s2 (1 rows); each needs at least 36 rows (21 values of history for the lags "
        "of season 7, then Horizon 1 and the validation and test ranges)"
    )
    assert not (tmp_path / "out" / "train" / "train.parquet").exists()  # nothing written, nothing to train


@pytest.mark.slow  # a whole pipeline: the slow tier (pytest --slow)
def test_a_multi_series_table_registers_a_forecaster_and_regula_predict_forecasts(tmp_path, clients):
    frame = sales()
    frame.to_csv(tmp_path / "sales.csv", index=False)
    params = {"TimeColumn": "date", "SeriesColumn": "store", "Horizon": "2", "MaxEpochs": "60", "HiddenLayers": "64"}
    report = run_local(
        data=tmp_path / "sales.csv", target="sales", runs_dir=tmp_path / "runs", params=params, echo=lambda _: None
    )
    assert report["decision"] == "registered", report["failure_reason"]
    (run,) = run_folders(tmp_path / "runs")
    package = clients["sagemaker"].describe_model_package(ModelPackageName=report["model_package_arn"])
    bucket, key = split_uri(package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"])
    evaluation = json.loads(clients["s3"].get_object(Bucket=bucket, Key=key)["Body"].read())
    assert set(evaluation["regression_metrics"]) == {"mse", "rmse", "mae", "r2", "r2_change_over_naive", "mase"}
    assert evaluation["metrics"]["validation"]["mase"] < 1 and evaluation["baseline"]["validation"][
        "mase"
    ] == pytest.approx(1)
    assert evaluation["quality"]["validation"] >= evaluation["quality"]["baseline"] + 0.05
    assert evaluation["split"]["boundaries"][0]["test"] == ["2021-09-09", "2021-10-26"]

    # the last 30 days of each store as history: the next 2 days of each, with their dates
    frame[frame["date"] <= "2021-10-20"].groupby("store").tail(30).to_csv(tmp_path / "history.csv", index=False)
    predicted = regula("predict", "--model", str(run), "--data", str(tmp_path / "history.csv"))
    assert predicted.returncode == 0, predicted.stderr
    forecasts = pd.read_csv(pd.io.common.StringIO(predicted.stdout))
    assert forecasts[["store", "time", "step"]].values.tolist() == [
        [store, day, step] for store in ("s0", "s1", "s2") for step, day in ((1, "2021-10-21"), (2, "2021-10-22"))
    ]
    actual = frame.set_index(["store", "date"])["sales"]
    errors = [abs(f - actual[(s, t)]) for s, t, f in forecasts[["store", "time", "forecast"]].values]
    assert np.mean(errors) < 1.0  # noise 0.3, weekly swings of 4-8: the forecast follows the week

    short = frame.groupby("store").tail(5)
    short.to_json(tmp_path / "short.json", orient="records")
    refused = regula("predict", "--model", str(run), "--data", str(tmp_path / "short.json"))
    assert refused.returncode == 2 and refused.stdout == ""
    assert "store=s0: 5 rows of history, needs at least 21" in refused.stderr
    assert "store=s2: 5 rows of history, needs at least 21" in refused.stderr


@pytest.fixture(scope="module")
def forecaster(tmp_path_factory) -> Path:
    """A small forecaster of two stores' sales (Horizon 3, season 7), trained for 3 epochs: a model folder."""
    tmp_path = tmp_path_factory.mktemp("forecaster")
    sales(days=120, stores=2).to_csv(tmp_path / "sales.csv", index=False)
    result = preprocess(
        tmp_path / "sales.csv",
        tmp_path / "out",
        "--target",
        "sales",
        "--time-column",
        "date",
        "--series-columns",
        "store",
        "--horizon",
        "3",
        "--season",
        "7",
    )
    assert result.returncode == 0, result.stderr
    model = tmp_path / "model"
    trained = run_training(tmp_path / "out", model, "--max_epochs", "3", "--hidden", "16")
    assert trained.returncode == 0, trained.stderr
    return model


def test_the_model_server_forecasts_from_history_as_csv_or_json(forecaster):
    with serving(forecaster) as base:
        url = f"{base}/invocations"
        history = sales(days=120, stores=2).groupby("store").tail(25)
        answers = []
        for body, content_type in (
            (history.to_csv(index=False), "text/csv"),
            (history.to_json(orient="records"), "application/json"),
        ):
            status, answer = post(url, body, content_type)
            assert status == 200, answer
            answers.append(answer)
        assert answers[0] == answers[1]
        assert [(f["store"], f["time"], f["step"]) for f in answers[0]["forecasts"]] == [
            (store, day, step)
            for store in ("s0", "s1")
            for step, day in ((1, "2021-06-29"), (2, "2021-06-30"), (3, "2021-07-01"))
        ]
        status, answer = post(url, history.groupby("store").tail(4).to_csv(index=False), "text/csv")
        assert status == 400
        assert "store=s0: 4 rows of history, needs at least 21" in str(answer)
        assert "store=s1: 4 rows of history, needs at least 21" in str(answer)


def test_the_model_server_refuses_too_many_series_infinite_values_and_foreign_keys_with_400(forecaster):
    from steps.inference import MAX_REQUEST_SERIES

    history = sales(days=120, stores=2).groupby("store").tail(25).reset_index(drop=True)
    with serving(forecaster) as base:
        url = f"{base}/invocations"
        # one row per store: the cap is counted before any series is encoded, and it is the cap that answers
        many = pd.DataFrame(
            {"date": "2021-06-28", "store": [f"x{i}" for i in range(MAX_REQUEST_SERIES + 1)], "sales": 1.0}
        ).assign(promo=False)
        status, answer = post(url, many.to_csv(index=False), "text/csv")
        assert status == 400
        assert json.loads(answer)["error"] == (
            f"the rows hold {MAX_REQUEST_SERIES + 1} series; a request may forecast at most {MAX_REQUEST_SERIES}"
        )
        status, answer = post(url, many.iloc[:MAX_REQUEST_SERIES].to_csv(index=False), "text/csv")
        assert status == 400 and "at most" not in answer  # at the cap: each series is encoded, and each too short
        assert "store=x0: 1 rows of history, needs at least 21" in answer
        assert f"store=x{MAX_REQUEST_SERIES - 1}: 1 rows of history" in answer

        # an infinite value is named as such (it used to read as a missing value: a gap, or a forecast row)
        infinite = history.astype({"sales": object})
        infinite.loc[[3, 30], "sales"] = ["inf", "-Infinity"]
        status, answer = post(url, infinite.to_csv(index=False), "text/csv")
        assert status == 400
        assert json.loads(answer)["error"] == (
            "column 'sales': 2 values are infinite, not finite numbers (inf, -inf; rows 3, 30)"
        )

        # JSON records with none of the model's keys: which came and which were expected, not "no rows"
        status, answer = post(url, json.dumps([{"day": "2021-06-28", "value": 3}, {"shop": "s0"}]), "application/json")
        assert status == 400
        assert json.loads(answer)["error"] == (
            "the 2 JSON records have none of the model's columns: got 'day', 'value', 'shop'; expected 'date', "
            "'sales', 'store', 'promo'"
        )


def test_evaluation_reports_r2_on_levels_beside_the_change_and_the_registry_layout_shows_levels(forecaster, tmp_path):
    splits = forecaster.parent / "out"
    result = run_step(
        "evaluate.py", "--model-dir", str(pack(forecaster, tmp_path / "packed").parent), "--data-dir", str(splits),
        "--output-dir", str(tmp_path / "eval"), env=OFF,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    evaluation = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    frame = sales(days=120, stores=2)
    for split in ("validation", "test"):
        # the seasonal naive forecast's R2 on levels, by hand: y[t] against y[t - 7] over the split's target times
        # (each target time once per step: Horizon 3 repeats every pair three times, which leaves R2 as it is)
        levels, naive = [], []
        for bounds in evaluation["split"]["boundaries"]:
            store = frame[frame["store"] == bounds["series"]["store"]].reset_index(drop=True)
            first, last = (store.index[store["date"] == day][0] for day in bounds[split])
            levels += store["sales"].iloc[first : last + 1].tolist()
            naive += store["sales"].iloc[first - 7 : last + 1 - 7].tolist()
        levels, naive = np.array(levels), np.array(naive)
        spread = ((levels - levels.mean()) ** 2).sum()
        by_hand = 1 - ((levels - naive) ** 2).sum() / spread
        assert evaluation["baseline"][split]["r2_levels"] == pytest.approx(by_hand, abs=1e-4)
        assert by_hand > 0.5  # a weekly series: the naive forecast already explains most of the levels' spread
        # the model's: the same squared error as on the change (rmse), over the spread of the levels
        metrics = evaluation["metrics"][split]
        expected = 1 - metrics["rmse"] ** 2 * len(levels) / spread
        assert metrics["r2_levels"] == pytest.approx(expected, abs=1e-4)
        assert metrics["r2_levels"] != pytest.approx(metrics["r2"], abs=0.05)  # not the change's R2
    layout = evaluation["regression_metrics"]
    assert set(layout) == {"mse", "rmse", "mae", "r2", "r2_change_over_naive", "mase"}
    assert layout["r2"]["value"] == evaluation["metrics"]["test"]["r2_levels"]
    assert layout["r2_change_over_naive"]["value"] == evaluation["metrics"]["test"]["r2"]
    quality = evaluation["quality"]  # the gate's R2 stays the change's
    assert quality["metric"] == "r2" and quality["test"] == evaluation["metrics"]["test"]["r2"]


def test_the_gru_example_reads_the_window_and_serves_from_its_artifact(forecaster, tmp_path):
    """examples/series_gru through the model contract: training tells it where the lags are (spec.extra window,
    oldest first), the artifact carries the code and the spec, and evaluation's served forecasts match."""
    splits = forecaster.parent / "out"
    gru = Path(__file__).resolve().parent.parent / "examples" / "series_gru" / "model.py"
    model = tmp_path / "model"
    trained = run_training(splits, model, "--max_epochs", "2", "--model_code", str(gru))
    assert trained.returncode == 0, trained.stderr
    config = json.loads((model / "config.json").read_text())
    names = read_schema(splits / "train")["features"]
    window = config["spec"]["extra"]["window"]
    assert [names[i] for i in window] == [f"lag {k}" for k in range(8, 1, -1)]  # season 7: lags 2..8, oldest first
    result = run_step(
        "evaluate.py", "--model-dir", str(pack(model, tmp_path / "packed").parent), "--data-dir", str(splits),
        "--output-dir", str(tmp_path / "eval"), env=OFF,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    evaluation = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert evaluation["model"]["code_sha256"] != "builtin:mlp" and evaluation["served_rows_checked"] > 0


def post(url: str, body: str, content_type: str):
    request = urllib.request.Request(url, data=body.encode(), headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_the_built_in_forecaster_is_five_mlps_trained_each_on_its_own_loss_and_averaged(forecaster):
    import torch

    from steps import model as built_in
    from steps import model_code
    from steps.objective import Objective

    trained, config = built_in.load(forecaster)
    assert config["model"] == "Regula's 5 averaged MLPs"
    assert isinstance(trained, built_in.Averaged) and len(trained.members) == built_in.SERIES_MEMBERS == 5
    first = [m.net[0].weight for m in trained.members]
    assert all(not torch.equal(first[0], w) for w in first[1:]), "each member from its own initialization"
    x = torch.randn(7, first[0].shape[1])
    with torch.no_grad():
        members = torch.stack([m(x) for m in trained.members])
        assert torch.allclose(trained(x), members.mean(dim=0)), "scored: the members' average"
        trained.train()
        model_code.set_dropout(trained, 0.0)  # the same outputs in training mode, but for dropout
        assert torch.equal(trained(x), members), "training: every member's output"
    y = torch.randn(7)
    objective = Objective({"problem_type": "regression"})
    expected = sum(torch.nn.functional.mse_loss(members[k, :, 0], y) for k in range(5))
    assert torch.allclose(objective.train_loss(members, y), expected)
