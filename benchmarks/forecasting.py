"""Forecasting: Regula's time-series mode end to end against the seasonal naive forecast and HistGradientBoosting.

For each series (real ones that ship inside statsmodels, and synthetic ones with trend, seasonality and several
series in one table): write a CSV as a user would, run the whole pipeline locally (`pipelines.local.run.run_local`: the
chronological split, the ladder, the gate, the registry in an embedded moto server) with TimeColumn (and SeriesColumn,
KnownColumns) set, and take the registered round's test MAE. Then, on the very split files the run's preprocessing
wrote (the same lag features, the same chronological rows), fit scikit-learn's HistGradientBoostingRegressor on the
training rows (its label: the change over the seasonal naive forecast, as Regula's) and score the same test rows. The
seasonal naive forecast's test MAE is the mean absolute label (it forecasts a change of 0).

Target: Regula's test MAE at or below HGB's on most series, and below the seasonal naive forecast's on every one.
The pipeline runs at the product defaults (benchmarks/README.md): a run that registers nothing is a miss, its row
says why.

    python benchmarks/forecasting.py [--only NAME ...] [--param NAME=VALUE ...] [--out FILE.json]
    python benchmarks/forecasting.py --regularizers [--only NAME ...]   # which regularizer moves the gap
    python benchmarks/forecasting.py --variants [--only NAME ...]       # the MLP against a GRU and a robust loss
    python benchmarks/forecasting.py --variants --variant MLP --variant "MLP, 5 seeds averaged"   # some of them

statsmodels (the real series) is in Regula's `dev` extra. --regularizers and --variants train one round per setting
on the same split files (preprocess.py once per series); --variants decides on validation MAE only, over the series
and init seeds, and reports test beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
import results_file  # noqa: E402  (benchmarks/, the script's own folder, is on the path)

from pipelines.local import layout as run_layout  # noqa: E402
from pipelines.local.run import run_local  # noqa: E402
from pipelines.settings import Settings  # noqa: E402
from steps.contract import read_split  # noqa: E402

PARAMS = {"MaxEpochs": "100"}  # otherwise the product defaults: no RegisterBestCandidate (benchmarks/README.md)
SPLITS_GLOB = "*/jobs/Preprocess/opt/ml/processing/output"


# -- the series -----------------------------------------------------------------------------------------------------


def statsmodels_data(name: str) -> pd.DataFrame:
    import statsmodels.datasets as datasets

    if name == "elec_equip":
        from statsmodels.datasets import elec_equip

        return elec_equip.load().data
    return getattr(datasets, name).load_pandas().data


def sunspots():
    data = statsmodels_data("sunspots")
    return data.assign(YEAR=data["YEAR"].astype(int)), {"TimeColumn": "YEAR", "TargetColumn": "SUNACTIVITY"}


def nile():
    return statsmodels_data("nile").astype({"year": int}), {"TimeColumn": "year", "TargetColumn": "volume"}


def co2():
    # 61 weeks have no value: interpolated here, as preprocessing's error message asks
    data = statsmodels_data("co2").interpolate().rename_axis("week").reset_index()
    data["week"] = data["week"].dt.strftime("%Y-%m-%d")
    return data, {"TimeColumn": "week", "TargetColumn": "co2"}


def elec_equip():
    data = statsmodels_data("elec_equip")
    data = data.rename(columns={data.columns[0]: "orders"}).rename_axis("month").reset_index()
    data["month"] = pd.to_datetime(data["month"]).dt.strftime("%Y-%m-%d")
    return data, {"TimeColumn": "month", "TargetColumn": "orders"}


def macro_gdp():
    data = statsmodels_data("macrodata")
    quarter = pd.PeriodIndex.from_fields(year=data["year"].astype(int), quarter=data["quarter"].astype(int), freq="Q")
    frame = pd.DataFrame({"quarter": quarter.to_timestamp().strftime("%Y-%m-%d"), "realgdp": data["realgdp"]})
    frame["unemp"], frame["infl"] = data["unemp"], data["infl"]  # covariates: lagged (known only afterwards)
    return frame, {"TimeColumn": "quarter", "TargetColumn": "realgdp"}


def elnino():
    data = statsmodels_data("elnino")
    long = data.melt(id_vars="YEAR", var_name="month", value_name="temperature")
    months = {
        m: i
        for i, m in enumerate(["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], 1)
    }
    long["date"] = pd.to_datetime({"year": long["YEAR"].astype(int), "month": long["month"].map(months), "day": 1})
    long = long.sort_values("date")[["date", "temperature"]]
    long["date"] = long["date"].dt.strftime("%Y-%m-%d")
    return long, {"TimeColumn": "date", "TargetColumn": "temperature"}


def synthetic_season(seed: int = 0):
    """One series on an integer index: trend, a season of 12, noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(480)
    y = 50 + 0.1 * t + 8 * np.sin(2 * np.pi * t / 12) + 3 * np.cos(2 * np.pi * t / 6) + rng.normal(0, 1.0, len(t))
    return pd.DataFrame({"t": t, "y": y.round(4)}), {"TimeColumn": "t", "TargetColumn": "y"}


def synthetic_stores(seed: int = 0):
    """Six stores, daily for two years: a level and trend each, a weekly pattern, promotions known in advance."""
    rng = np.random.default_rng(seed)
    parts = []
    dates = pd.date_range("2022-01-01", periods=730, freq="D")
    for store in range(6):
        i = np.arange(len(dates))
        promo = rng.random(len(dates)) < 0.15
        weekly = (1 + 0.3 * store) * np.sin(2 * np.pi * (i + store) / 7)
        yearly = 2 * np.sin(2 * np.pi * i / 365.25)
        y = 20 + 4 * store + 0.005 * (1 + store) * i + weekly + yearly + 3 * promo + rng.normal(0, 0.7, len(i))
        parts.append(
            pd.DataFrame(
                {"date": dates.strftime("%Y-%m-%d"), "store": f"store{store}", "promo": promo, "sales": y.round(3)}
            )
        )
    params = {"TimeColumn": "date", "TargetColumn": "sales", "SeriesColumn": "store", "KnownColumns": "promo"}
    return pd.concat(parts, ignore_index=True), params


def synthetic_ar(seed: int = 0):
    """Three monthly series: an autoregressive cycle on a season of 12 (where the naive forecast is weak)."""
    rng = np.random.default_rng(seed)
    parts = []
    months = pd.date_range("1990-01-01", periods=360, freq="MS")
    for k in range(3):
        e = rng.normal(0, 1.0, len(months))
        y = np.zeros(len(months))
        for i in range(2, len(months)):
            y[i] = 1.2 * y[i - 1] - 0.5 * y[i - 2] + e[i]
        y += 5 * np.sin(2 * np.pi * np.arange(len(months)) / 12) + 10 * k
        parts.append(pd.DataFrame({"month": months.strftime("%Y-%m-%d"), "region": f"r{k}", "value": y.round(4)}))
    params = {"TimeColumn": "month", "TargetColumn": "value", "SeriesColumn": "region"}
    return pd.concat(parts, ignore_index=True), params


SERIES = {
    "sunspots": sunspots,
    "nile": nile,
    "co2": co2,
    "elec_equip": elec_equip,
    "macro_gdp": macro_gdp,
    "elnino": elnino,
    "synthetic_season": synthetic_season,
    "synthetic_stores": synthetic_stores,
    "synthetic_ar": synthetic_ar,
}


# -- one series -----------------------------------------------------------------------------------------------------


def hgb_mae(splits: Path) -> dict[str, float]:
    """HGB's validation and test MAE, fitted on the training rows."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    x_train, y_train = read_split(splits / "train", "train")
    model = HistGradientBoostingRegressor(random_state=0).fit(x_train, y_train)
    out = {}
    for name in ("validation", "test"):
        x, y = read_split(splits / name, name)
        out[name] = float(np.mean(np.abs(model.predict(x) - y)))
    return out


def run_one(name: str, extra: dict[str, str], workdir: Path) -> dict:
    frame, params = SERIES[name]()
    target = params.pop("TargetColumn")
    csv = workdir / f"{name}.csv"
    frame.to_csv(csv, index=False)
    runs = workdir / f"runs-{name}"
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ["REGULA_METRICS"] = "off"
    start = time.perf_counter()
    report = run_local(
        Settings(), data=csv, target=target, params={**PARAMS, **params, **extra}, runs_dir=runs, echo=lambda _: None
    )
    seconds = time.perf_counter() - start
    (splits,) = sorted(runs.glob(SPLITS_GLOB))
    schema = json.loads((splits / "train" / "schema.json").read_text())
    _, test_labels = read_split(splits / "test", "test")
    row = {
        "series": name,
        "rows": len(frame),
        "series_count": schema["split"]["series_count"],
        "season": schema["series"]["season"],
        "frequency": schema["series"]["frequency"],
        "test_rows": len(test_labels),
        "decision": report["decision"],
        "failure_reason": report.get("failure_reason"),
        "naive_test_mae": float(np.mean(np.abs(test_labels))),
        **{f"hgb_{name}_mae": mae for name, mae in hgb_mae(splits).items()},
        "seconds": round(seconds, 1),
    }
    rounds = report.get("rounds") or []
    run_dir = next(p for p in runs.iterdir() if p.is_dir() and not p.name.startswith("."))
    row["ladder"] = []
    for summary in rounds:  # every round's validation and test: why the chosen one was chosen, and what it missed
        evaluation = json.loads(run_layout.round_evaluation(run_dir, summary["round"]).read_text())
        metrics = evaluation["metrics"]
        row["ladder"].append(
            {
                "round": summary["round"],
                "level": evaluation["regularization"]["level"],
                "round_decision": evaluation["round_decision"],
                "gap": evaluation["generalization_gap"]["relative"],
                **{f"{s}_mase": metrics[s]["mase"] for s in ("train", "validation", "test")},
                "validation_r2": metrics["validation"]["r2"],
            }
        )
    if report["decision"] == "registered" and rounds:
        last = rounds[-1]
        chosen = last.get("selected_round") or last["round"]
        evaluation = json.loads(run_layout.round_evaluation(run_dir, chosen).read_text())
        row.update(
            round=chosen,
            rounds=len(rounds),
            regularization=evaluation["regularization"],
            test_mae=evaluation["metrics"]["test"]["mae"],
            test_mase=evaluation["metrics"]["test"]["mase"],
            test_r2_levels=evaluation["metrics"]["test"].get("r2_levels"),
            validation_r2=evaluation["metrics"]["validation"]["r2"],
            validation_mase=evaluation["metrics"]["validation"]["mase"],
            gap=evaluation["generalization_gap"]["relative"],
        )
        refit = (report.get("refit") or {}).get("test_metrics")
        if refit:  # the registered model is the round refit on training + validation rows (steps/refit.py)
            row.update(round_test_mase=row["test_mase"], refit=True, test_mae=refit["mae"], test_mase=refit["mase"],
                       test_r2_levels=refit.get("r2_levels"))  # fmt: skip
    return row


# -- which regularizer moves the gap on series: one round each, from the base strengths, one knob raised -------------

SWEEP = {
    "base": {},
    "L2 x10": {"--l2": "0.1"},
    "L2 x100": {"--l2": "1.0"},
    "L1 x10": {"--l1": "1e-4"},
    "L1 x100": {"--l1": "1e-3"},
    "dropout 0.3": {"--dropout": "0.3"},
    "dropout 0.5": {"--dropout": "0.5"},
}


def step(script: str, *args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "REGULA_METRICS": "off"}
    result = subprocess.run(
        [sys.executable, str(REPO / "steps" / script), *args], capture_output=True, text=True, env=env
    )
    if result.returncode:
        raise RuntimeError(f"{script}: {result.stderr.strip()[-500:]}")


# -- the model: the built-in MLP over the features, a GRU over the raw window, the MLP with a robust loss -------------

VARIANTS = {
    "MLP": {},
    "GRU over the window": {"--model_code": str(REPO / "examples" / "series_gru" / "model.py")},
    "MLP, Huber loss": {"--model_code": str(REPO / "benchmarks" / "forecasting_models" / "huber_mlp.py")},
    # five MLPs from their own initializations, averaged (the tables' variant: benchmarks/table_models/)
    "MLP, 5 seeds averaged": {"--model_code": str(REPO / "benchmarks" / "table_models" / "seed_ensemble.py")},
}
VARIANT_SEEDS = (1, 2)  # init seeds: the split of a series is fixed (chronological), its initialisation is not


def sweep_one(name: str, workdir: Path, settings: dict | None = None, seeds=(None,)) -> list[dict]:
    frame, params = SERIES[name]()
    csv = workdir / f"{name}.csv"
    frame.to_csv(csv, index=False)
    options = {
        "TimeColumn": "--time-column",
        "TargetColumn": "--target",
        "SeriesColumn": "--series-columns",
        "KnownColumns": "--known-columns",
    }
    splits = workdir / f"splits-{name}"
    step(
        "preprocess.py",
        "--input",
        str(csv),
        "--output-dir",
        str(splits),
        *[x for k, v in params.items() for x in (options[k], v)],
    )
    rows = []
    settings = SWEEP if settings is None else settings
    for label, knobs in settings.items():
        for seed in seeds:
            tag = f"{label}-{seed}".replace(" ", "_").replace(",", "")
            model, packed, out = (workdir / f"{name}-{tag}-{part}" for part in ("model", "packed", "eval"))
            started = time.perf_counter()
            step(
                "train.py",
                "--train",
                str(splits / "train"),
                "--validation",
                str(splits / "validation"),
                "--model_dir",
                str(model),
                "--max_epochs",
                PARAMS["MaxEpochs"],
                *[x for kv in knobs.items() for x in kv],
                *(["--seed", str(seed)] if seed is not None else []),
            )
            packed.mkdir()
            subprocess.run(["tar", "czf", str(packed / "model.tar.gz"), "-C", str(model), "."], check=True)
            step("evaluate.py", "--model-dir", str(packed), "--data-dir", str(splits), "--output-dir", str(out))
            evaluation = json.loads((out / "evaluation.json").read_text())
            rows.append(
                {
                    "series": name,
                    "setting": label,
                    **({"seed": seed} if seed is not None else {}),
                    "gap": evaluation["generalization_gap"]["relative"],
                    "validation_mae": evaluation["metrics"]["validation"]["mae"],
                    "validation_mase": evaluation["metrics"]["validation"]["mase"],
                    "validation_r2": evaluation["metrics"]["validation"]["r2"],
                    "test_mae": evaluation["metrics"]["test"]["mae"],
                    "test_mase": evaluation["metrics"]["test"]["mase"],
                    "best_epoch": evaluation["best_epoch"],
                    "seconds": round(time.perf_counter() - started, 1),
                }
            )
            print(
                " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in rows[-1].items()),
                flush=True,
            )
    return rows


def decide_variants(rows: list[dict]) -> dict:
    """Per variant: its mean validation MAE relative to the MLP's on the same series (over the seeds), on how many
    series it is ahead and behind, and the kept one: a variant replaces the MLP only when it is ahead on more series
    than behind and its mean relative validation MAE is lower (benchmarks/README.md, on validation only)."""
    by = {}
    for r in rows:
        by.setdefault((r["series"], r["setting"]), []).append(r)
    series = sorted({r["series"] for r in rows})
    out = {}
    for variant in dict.fromkeys(r["setting"] for r in rows):  # the variants run, in their order
        ratios, test_ratios = [], []
        for name in series:
            mine, base = by.get((name, variant)), by.get((name, "MLP"))
            if not mine or not base:
                continue
            ratios.append(np.mean([r["validation_mae"] for r in mine]) / np.mean([r["validation_mae"] for r in base]))
            test_ratios.append(np.mean([r["test_mae"] for r in mine]) / np.mean([r["test_mae"] for r in base]))
        out[variant] = {
            "validation_mae_vs_mlp": float(np.mean(ratios)) if ratios else None,
            "ahead": int(sum(r < 1 for r in ratios)),
            "behind": int(sum(r > 1 for r in ratios)),
            "test_mae_vs_mlp": float(np.mean(test_ratios)) if test_ratios else None,
        }
    better = [
        v for v, d in out.items() if v != "MLP" and d["ahead"] > d["behind"] and (d["validation_mae_vs_mlp"] or 1) < 1
    ]
    kept = min(better, key=lambda v: out[v]["validation_mae_vs_mlp"]) if better else "MLP"
    return {"variants": out, "kept": kept}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", default=list(SERIES), choices=list(SERIES))
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--regularizers", action="store_true", help="one round per regularizer setting instead")
    parser.add_argument("--variants", action="store_true", help="one round per model variant and seed instead")
    parser.add_argument(
        "--variant", action="append", choices=list(VARIANTS), help="with --variants: only these (and MLP)"
    )
    parser.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/forecasting*.json")
    args = parser.parse_args()
    extra = dict(item.partition("=")[::2] for item in args.param)
    results = REPO / "benchmarks" / "results"
    if args.regularizers or args.variants:
        chosen = {k: v for k, v in VARIANTS.items() if k == "MLP" or not args.variant or k in args.variant}
        settings, seeds = (SWEEP, (None,)) if args.regularizers else (chosen, VARIANT_SEEDS)
        with tempfile.TemporaryDirectory() as tmp:
            rows = [row for name in args.only for row in sweep_one(name, Path(tmp), settings, seeds)]
        if args.regularizers:
            results_file.write(args.out or results / "forecasting_regularizers.json", {"rows": rows})
        else:
            decision = decide_variants(rows)
            print(json.dumps(decision, indent=1))
            record = {"seeds": list(VARIANT_SEEDS), "params": PARAMS, "decision": decision, "rows": rows}
            results_file.write(args.out or results / "forecasting_variants.json", record)
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only:
            row = run_one(name, extra, Path(tmp))
            rows.append(row)
            mae = row.get("test_mae")
            print(
                f"{name}: {row['decision']} (round {row.get('round')}), test MAE Regula "
                f"{mae if mae is None else round(mae, 4)}, HGB {row['hgb_test_mae']:.4f}, seasonal naive "
                f"{row['naive_test_mae']:.4f} (season {row['season']}), {row['seconds']} s",
                flush=True,
            )
    # a run that registered nothing is a miss in both counts (benchmarks/README.md)
    summary = {
        "at_or_below_hgb": sum(r.get("test_mae") is not None and r["test_mae"] <= r["hgb_test_mae"] for r in rows),
        "below_naive": sum(r.get("test_mae") is not None and r["test_mae"] < r["naive_test_mae"] for r in rows),
        "registered": sum(r.get("test_mae") is not None for r in rows),
        "series": len(rows),
    }
    print(f"summary: {summary}")
    results_file.write(
        args.out or results / "forecasting.json", {"params": {**PARAMS, **extra}, "summary": summary, "series": rows}
    )


if __name__ == "__main__":
    main()
