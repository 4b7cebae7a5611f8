"""Regula end to end on real and realistic tables, against scikit-learn's standard baselines on the same split.

For each table: write it to a CSV as a user would (raw columns, strings, missing values, booleans, the target as it
is), run the whole pipeline locally (`pipelines.local.run.run_local`: preprocess, train, evaluate, register or retrain
or fail; S3 and the registry in an embedded moto server), and time it. Then reproduce Regula's split with the
preprocessing step's own functions (checked against the run's schema.json) and fit two scikit-learn baselines on
the columns as Regula sees them (its column roles, so the IDs and free text it drops are dropped, and its date
expansion): median/most-frequent imputation, scaling and one-hot encoding followed by LogisticRegression or Ridge,
its C or alpha chosen on the validation rows from a small grid and then refit on train + validation; and
HistGradientBoosting with native categorical support, trained with early stopping on the validation rows, its
learning rate chosen on them. Regula also uses both (training on one, early stopping and its decision on the
other). All are scored once on the same test rows; no choice looks at them.

Classification is compared in two settings, each with the same decision rule on both sides, because the rule trades
accuracy for balanced accuracy on imbalanced tables:
- "accuracy": Regula with ClassWeight=none and the baselines as scikit-learn ships them both predict the most probable
  class; compared on test accuracy.
- "balanced": Regula with its defaults (ClassWeight=auto: the class most probable relative to its training share, the
  Bayes rule for balanced accuracy, Regula's default quality metric) and the baselines with class_weight="balanced";
  compared on test balanced accuracy.
Regression is run once (ClassWeight does not apply) and compared on R2 in both settings.

Target, in each setting: every table ends in a registered model or a correct, explained refusal, and the registered
model's test metric is within 1 point (0.01) of accuracy or balanced accuracy, or 0.02 of R2, of the better baseline
on at least 80% of tables. A refusal is correct only when the baselines also do not beat the trivial model by the
pipeline's MinLift (0.05 of balanced accuracy over chance, or of R2 over 0). For context the report gives the test
rows of each table: on the small ones a single test row is worth more than one point of accuracy.

    python benchmarks/real_tables.py [--quick] [--only NAME ...] [--param NAME=VALUE ...] [--out FILE.json]

A --param applies to every Regula run; the accuracy setting then sets ClassWeight=none over it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
import results_file  # noqa: E402  (benchmarks/, the script's own folder, is on the path)

from pipelines.local.run import run_local  # noqa: E402
from pipelines.settings import Settings  # noqa: E402
from steps import preprocess, table, table_roles, table_values  # noqa: E402

ACCURACY_TOLERANCE = 0.01
R2_TOLERANCE = 0.02
MIN_LIFT = 0.05  # the pipeline's default: a refusal is right when the baselines cannot beat the trivial model by this
TARGET_SHARE = 0.8
PARAMS = {"MaxEpochs": "100"}
# the baselines' small grids, each chosen on the validation rows (run_baselines)
LINEAR_GRID = (0.01, 0.1, 1.0, 10.0, 100.0)  # LogisticRegression's C, Ridge's alpha
HGB_RATES = (0.05, 0.1, 0.3)  # HistGradientBoosting's learning rate; its iterations by early stopping
HGB_MANY_CLASSES = 10  # beyond, a tree per class per iteration makes each fit minutes on 2 shared cores:
HGB_RATES_MANY_CLASSES = (0.1,)  # scikit-learn's default rate only
HGB_MAX_ITER = 1000
HGB_MAX_CATEGORIES = 250  # native categorical support takes at most 255 bins a column
SCHEMA_GLOB = "*/jobs/Preprocess/opt/ml/processing/output/train/schema.json"
QUICK = ("penguins", "iris", "wine", "breast_cancer", "diabetes")
# setting: (Regula's parameters over the defaults, the baselines' class_weight, the classification metric compared)
SETTINGS = {
    "accuracy": ({"ClassWeight": "none"}, None, "accuracy"),
    "balanced": ({}, "balanced", "balanced_accuracy"),
}


# -- tables ---------------------------------------------------------------------------------------------------------


def penguins() -> tuple[pd.DataFrame, str]:
    import palmerpenguins

    return palmerpenguins.load_penguins(), "species"


def penguins_raw() -> tuple[pd.DataFrame, str]:
    import palmerpenguins

    return palmerpenguins.load_penguins_raw(), "Species"


def sklearn_table(name: str, **kwargs) -> Callable[[], tuple[pd.DataFrame, str]]:
    def load() -> tuple[pd.DataFrame, str]:
        import sklearn.datasets

        return getattr(sklearn.datasets, f"load_{name}")(as_frame=True, **kwargs).frame, "target"

    return load


def with_gaps(rng: np.random.Generator, values: np.ndarray, share: float) -> np.ndarray:
    values = values.astype(object if values.dtype.kind in "bOU" else float)
    values[rng.random(len(values)) < share] = np.nan
    return values


def iso_dates(rng: np.random.Generator, n: int) -> tuple[list[str], np.ndarray]:
    days = rng.integers(0, 1500, n)
    dates = [date(2020, 1, 1) + timedelta(days=int(d)) for d in days]
    return [d.isoformat() for d in dates], np.array([d.month for d in dates])


def mixed_classification(n: int = 20000) -> tuple[pd.DataFrame, str]:
    """24% 'yes': nonlinear in numbers, a 200-value city, a boolean, the signup month; gaps, an ID, a heavy tail."""
    rng = np.random.default_rng(7)
    age, balance, score, noise = rng.normal(40, 12, n), rng.normal(0, 1, n), rng.uniform(0, 1, n), rng.normal(0, 1, n)
    income, tenure = rng.lognormal(10, 1.0, n), rng.integers(0, 120, n)
    plans = np.array(["basic", "plus", "pro", "enterprise"])
    plan = rng.choice(4, n, p=[0.4, 0.3, 0.2, 0.1])
    channels = np.array(["web", "store", "phone", "partner", "app"])
    channel = rng.integers(0, 5, n)
    weights = 1 / np.arange(1, 201) ** 0.8
    city = rng.choice(200, n, p=weights / weights.sum())
    autopay = rng.random(n) < 0.45
    signup, month = iso_dates(rng, n)
    z = (
        1.2 * np.sin(1.5 * balance)
        + 1.0 * ((score > 0.6) & (tenure < 24))
        + 0.5 * (np.log(income) - 10)
        - 0.04 * np.abs(age - 40)
        + np.array([0.0, 0.3, 0.7, -0.5])[plan]
        + np.array([0.0, -0.4, 0.3, 0.5, 0.1])[channel]
        + rng.normal(0, 0.7, 200)[city]
        + 0.8 * autopay
        + 0.6 * (month >= 11)
        + rng.logistic(0, 0.6, n)
    )
    frame = pd.DataFrame(
        {
            "customer_id": rng.permutation(n),
            "age": with_gaps(rng, age.round(0), 0.06),
            "income": income.round(2),
            "balance": with_gaps(rng, balance, 0.09),
            "tenure_months": tenure,
            "score": with_gaps(rng, score, 0.05),
            "noise": noise,
            "plan": plans[plan],
            "channel": channels[channel],
            "city": np.char.add("city_", np.char.zfill(city.astype(str), 3)),
            "autopay": with_gaps(rng, autopay, 0.07),
            "signup_date": signup,
            "churn": np.where(z > np.quantile(z, 0.76), "yes", "no"),
        }
    )
    return frame, "churn"


def imbalanced(n: int = 20000) -> tuple[pd.DataFrame, str]:
    """6% positives (integer 0/1); a good model reaches balanced accuracy about 0.8 at a balanced threshold."""
    rng = np.random.default_rng(11)
    x = rng.normal(0, 1, (n, 5))
    segments = np.array(["consumer", "smb", "mid", "enterprise", "public", "edu"])
    segment = rng.integers(0, 6, n)
    regions = np.array([f"region-{i}" for i in range(10)])
    region = rng.integers(0, 10, n)
    promo = rng.random(n) < 0.3
    z = (
        0.9 * x[:, 0]
        + 0.6 * x[:, 1] * x[:, 2]
        + 0.5 * np.maximum(x[:, 3], 0)
        + np.array([0.0, 0.3, 0.5, 0.9, -0.3, -0.6])[segment]
        + rng.normal(0, 0.4, 10)[region]
        + 0.5 * promo
        + rng.logistic(0, 0.3, n)
    )
    frame = pd.DataFrame({f"x{i}": with_gaps(rng, x[:, i], 0.04 * (i % 2)) for i in range(5)})
    frame["segment"] = segments[segment]
    frame["region"] = with_gaps(rng, regions[region], 0.03)
    frame["promo"] = promo
    frame["fraud"] = (z > np.quantile(z, 0.94)).astype(int)
    return frame, "fraud"


def mixed_regression(n: int = 20000) -> tuple[pd.DataFrame, str]:
    """A float target from numbers (some nonlinear, some with gaps), a grade, a 30-value region, a boolean, noise."""
    rng = np.random.default_rng(13)
    x = rng.normal(0, 1, (n, 4))
    size = rng.lognormal(3, 0.8, n)
    grades = np.array(list("ABCDE"))
    grade = rng.choice(5, n, p=[0.1, 0.25, 0.3, 0.25, 0.1])
    region = rng.integers(0, 30, n)
    premium = rng.random(n) < 0.2
    y = (
        2.0 * x[:, 0]
        + 1.5 * np.sin(2 * x[:, 1])
        + x[:, 2] * x[:, 3]
        + 0.8 * np.log(size)
        + np.array([0.0, 0.5, 1.0, 2.0, 3.0])[grade]
        + rng.normal(0, 1, 30)[region]
        + 1.0 * premium
        + rng.normal(0, 1, n)
    )
    frame = pd.DataFrame(
        {
            "x0": with_gaps(rng, x[:, 0], 0.05),
            "x1": x[:, 1],
            "x2": with_gaps(rng, x[:, 2], 0.05),
            "x3": x[:, 3],
            "size_sqm": size.round(1),
            "grade": grades[grade],
            "region": np.char.add("R", region.astype(str)),
            "premium": premium,
            "price": (100 + 10 * y).round(2),
        }
    )
    return frame, "price"


def fifty_classes(n: int = 10000, classes: int = 50, features: int = 20) -> tuple[pd.DataFrame, str]:
    """Gaussian clusters, one per class, labels 'c00'..'c49'."""
    rng = np.random.default_rng(17)
    centers = rng.normal(0, 0.85, (classes, features))
    y = rng.integers(0, classes, n)
    x = centers[y] + rng.normal(0, 1, (n, features))
    frame = pd.DataFrame(x.round(4), columns=[f"f{i:02d}" for i in range(features)])
    frame["label"] = [f"c{c:02d}" for c in y]
    return frame, "label"


TABLES: dict[str, Callable[[], tuple[pd.DataFrame, str]]] = {
    "penguins": penguins,
    "penguins_raw": penguins_raw,
    "breast_cancer": sklearn_table("breast_cancer"),
    "wine": sklearn_table("wine"),
    "iris": sklearn_table("iris"),
    "digits": sklearn_table("digits"),
    "diabetes": sklearn_table("diabetes", scaled=False),
    "synthetic_mixed": mixed_classification,
    "synthetic_imbalanced": imbalanced,
    "synthetic_regression": mixed_regression,
    "synthetic_50_classes": fifty_classes,
}


# -- Regula ---------------------------------------------------------------------------------------------------------


def run_regula(csv: Path, target: str, runs_dir: Path, params: dict[str, str]) -> dict:
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ["REGULA_METRICS"] = "off"
    start = time.perf_counter()
    try:
        report = run_local(Settings(), data=csv, target=target, params=dict(params), runs_dir=runs_dir, echo=_quiet)
    except Exception as error:  # a crash is a finding: keep it and go on with the next table
        return {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc(), "seconds": 0.0}
    report["seconds"] = time.perf_counter() - start
    return report


def _quiet(line: str) -> None:
    pass


def run_schema(runs_dir: Path) -> dict | None:
    paths = sorted(runs_dir.glob(SCHEMA_GLOB))
    return json.loads(paths[-1].read_text()) if paths else None


def regula_summary(report: dict) -> dict:
    if "error" in report:
        return {"outcome": "crashed", "error": report["error"], "traceback": report["traceback"], "seconds": 0.0}
    rounds = report["rounds"]
    last = rounds[-1] if rounds else None
    registered = report["decision"] == "registered"
    kept = rounds[last["selected_round"] - 1] if registered else last  # a borderline round may be the one registered
    outcome = f"registered r{kept['round']}" if registered else f"failed at {report['failed_step']}"
    return {
        "outcome": outcome,
        "registered": registered,
        "failure_reason": report["failure_reason"],
        "problem_type": last["problem_type"] if last else None,
        "test_metrics": kept["test_metrics"] if last else None,
        "rounds": [
            {k: r[k] for k in ("round", "generalization_gap", "validation_quality", "decision")} for r in rounds
        ],
        "seconds": round(report["seconds"], 1),
    }


# -- baselines on the same split ------------------------------------------------------------------------------------


def same_split(frame: pd.DataFrame, target: str) -> tuple[pd.DataFrame, str, np.ndarray, dict]:
    """Regula's split, from the preprocessing step's own functions: (labelled rows, problem type, labels, positions)."""
    frame = frame[frame[target].notna().to_numpy()]
    labels = frame[target]
    kind, _ = preprocess.problem_type(labels, "auto")
    if kind == "classification":
        classes = preprocess.sort_classes(pd.unique(labels).tolist())
        encoded = pd.Categorical(labels, categories=classes).codes.astype("int64")
    else:
        encoded = labels.astype(float).to_numpy()
    args = argparse.Namespace(validation_fraction=0.2, test_fraction=0.2, max_train_rows=0, seed=42)
    return frame, kind, encoded, preprocess.split(encoded, kind == "classification", args)


def regula_columns(frame: pd.DataFrame, target: str) -> tuple[pd.DataFrame, list[str], list[str]]:
    """The feature columns as Regula sees them, for the baselines: its column roles (steps/table_roles: the IDs,
    constants and free text it drops are dropped here too), numbers parsed as it parses them, each date column
    expanded into the same parts (steps/table.DATETIME_PARTS, a part that never varies left out), categories keyed
    as it keys them. (frame, numeric names, categorical names)."""
    features = frame.drop(columns=[target])
    roles, _ = table_roles.column_roles(features)
    out, numeric, categorical = {}, [], []
    for name, role in roles.items():
        series = features[name]
        if role == "numeric":
            out[name] = table_values.parse_numbers(series)[0]
            numeric.append(name)
        elif role == "datetime":
            dates = table_values.parse_dates(series, table_values.day_first(series))
            for part in table.DATETIME_PARTS:
                values = getattr(dates.dt, part).to_numpy(np.float64, na_value=np.nan)
                present = values[~np.isnan(values)]
                if present.size and present.min() < present.max():
                    out[f"{name}.{part}"] = values
                    numeric.append(f"{name}.{part}")
        else:
            keys = table_values.category_keys(series)
            out[name] = keys.where(keys.notna(), np.nan).astype(object).to_numpy()
            categorical.append(name)
    return pd.DataFrame(out, index=features.index), numeric, categorical


def linear_model(numeric: list[str], categorical: list[str], classification: bool, strength: float, class_weight):
    """Impute, scale, one-hot, then LogisticRegression (C = strength) or Ridge (alpha = strength)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    columns = ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            (
                "categorical",
                make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")),
                categorical,
            ),
        ]
    )
    if classification:
        model = LogisticRegression(C=strength, max_iter=3000, class_weight=class_weight)
    else:
        model = Ridge(alpha=strength)
    return make_pipeline(columns, model)


def boosted_model(
    numeric: list[str], categorical: list[str], classification: bool, rate: float, iterations: int, class_weight
):
    """HistGradientBoosting with its native categorical support (categories as ordinal codes, at most
    HGB_MAX_CATEGORIES per column, the rarest grouped), missing values as it handles them. iterations=0: up to
    HGB_MAX_ITER with early stopping on the validation rows passed to fit."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.preprocessing import OrdinalEncoder

    encode = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan, max_categories=HGB_MAX_CATEGORIES)
    columns = ColumnTransformer([("numeric", "passthrough", numeric), ("categorical", encode, categorical)])
    options = {
        "learning_rate": rate,
        "max_iter": iterations or HGB_MAX_ITER,
        "early_stopping": not iterations,
        "categorical_features": [False] * len(numeric) + [True] * len(categorical),
        "random_state": 0,
    }
    if classification:
        return columns, HistGradientBoostingClassifier(class_weight=class_weight, **options)
    return columns, HistGradientBoostingRegressor(**options)


def metric_of(model, features, y_true: np.ndarray, classification: bool, metric: str) -> float:
    return score(model, features, y_true, classification)[metric if classification else "r2"]


def run_baselines(
    frame: pd.DataFrame,
    target: str,
    kind: str,
    encoded: np.ndarray,
    positions: dict,
    class_weight: str | None,
    metric: str,
) -> dict:
    """The linear model and HGB on Regula's split and columns, each choosing on the validation rows, as Regula's
    model uses both (training on one, early stopping and its decision on the other): the linear model's C or alpha
    from LINEAR_GRID, then refit on train + validation; HGB trained on the training rows with early stopping on the
    validation rows (its iterations), its learning rate from HGB_RATES. Scored once on the test rows."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # one thread, as Regula's jobs train: OpenMP's spinning threads crawl on shared cores
        return _run_baselines(frame, target, kind, encoded, positions, class_weight, metric)


def _run_baselines(frame, target, kind, encoded, positions, class_weight, metric) -> dict:
    features, numeric, categorical = regula_columns(frame, target)
    classification = kind == "classification"
    train, validation, test = positions["train"], positions["validation"], positions["test"]
    both = np.concatenate([train, validation])
    x, y = features.iloc, encoded
    results = {}

    start = time.perf_counter()
    tried = {}
    for strength in LINEAR_GRID:
        model = linear_model(numeric, categorical, classification, strength, class_weight)
        model.fit(x[train], y[train])
        tried[strength] = metric_of(model, x[validation], y[validation], classification, metric)
    chosen = max(tried, key=tried.get)  # ties: the first, the strongest regularization
    model = linear_model(numeric, categorical, classification, chosen, class_weight).fit(x[both], y[both])
    results["linear"] = {
        **score(model, x[test], y[test], classification),
        "chosen": {"C" if classification else "alpha": chosen},
        "validation": {str(k): round(v, 4) for k, v in tried.items()},
        "seconds": round(time.perf_counter() - start, 1),
    }

    start = time.perf_counter()
    tried, models = {}, {}
    rates = HGB_RATES if len(np.unique(y)) <= HGB_MANY_CLASSES else HGB_RATES_MANY_CLASSES
    for rate in rates:
        columns, model = boosted_model(numeric, categorical, classification, rate, 0, class_weight)
        columns.fit(x[train])
        model.fit(columns.transform(x[train]), y[train], X_val=columns.transform(x[validation]), y_val=y[validation])
        models[rate] = make_pipeline_of(columns, model)
        tried[rate] = metric_of(models[rate], x[validation], y[validation], classification, metric)
    chosen = max(tried, key=tried.get)
    results["hgb"] = {
        **score(models[chosen], x[test], y[test], classification),
        "chosen": {"learning_rate": chosen, "max_iter": int(models[chosen][-1].n_iter_)},
        "validation": {str(k): round(v, 4) for k, v in tried.items()},
        "seconds": round(time.perf_counter() - start, 1),
    }
    return results


def score(model, features: pd.DataFrame, y_true: np.ndarray, classification: bool) -> dict:
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, r2_score, roc_auc_score

    predicted = model.predict(features)
    if not classification:
        return {"r2": float(r2_score(y_true, predicted))}
    scores = {
        "accuracy": float(accuracy_score(y_true, predicted)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, predicted)),
    }
    if len(model.classes_) == 2:  # threshold-free: compares the probabilities whatever the decision rule
        scores["roc_auc"] = float(roc_auc_score(y_true, model.predict_proba(features)[:, 1]))
    return scores


def make_pipeline_of(columns, model):
    """A fitted ColumnTransformer and a fitted model as one predictor (predict, predict_proba, classes_)."""
    from sklearn.pipeline import Pipeline

    return Pipeline([("columns", columns), ("model", model)])


def id_like_columns(frame: pd.DataFrame, target: str) -> list[str]:
    """Integer or text columns with one distinct value per row: identifiers, given to the baselines anyway."""
    rows = len(frame)
    return [
        c
        for c in frame.columns
        if c != target
        and not pd.api.types.is_float_dtype(frame[c])
        and rows >= 20
        and frame[c].nunique() >= 0.95 * rows
    ]


# -- comparison -----------------------------------------------------------------------------------------------------


def verdict(regula: dict, baselines: dict, kind: str, classes: int, metric: str) -> dict:
    metric = metric if kind == "classification" else "r2"
    tolerance = R2_TOLERANCE if metric == "r2" else ACCURACY_TOLERANCE
    best = max(b[metric] for b in baselines.values())
    quality = "balanced_accuracy" if kind == "classification" else "r2"
    chance = 1 / classes if kind == "classification" else 0.0
    learnable = max(b[quality] for b in baselines.values()) - chance >= MIN_LIFT
    if regula.get("registered"):
        value = regula["test_metrics"][metric]
        within = value >= best - tolerance
        label = ("yes" if within else "no") + f" ({value - best:+.3f})"
        return {"metric": metric, "value": value, "best": best, "within": within, "label": label}
    if regula["outcome"] == "crashed":
        return {"metric": metric, "value": None, "best": best, "within": False, "label": "miss (crash)"}
    value = regula["test_metrics"][metric] if regula.get("test_metrics") else None
    correct = bool(regula["rounds"]) and regula["rounds"][-1]["decision"] == "underfit" and not learnable
    if correct:
        label = "correct refusal"
    elif not regula["rounds"]:
        label = "miss (step error)"
    else:
        label = f"miss (refused: {regula['rounds'][-1]['decision']})"
    return {"metric": metric, "value": value, "best": best, "within": correct, "label": label}


# -- one table, all tables ------------------------------------------------------------------------------------------


def run_table(name: str, workdir: Path, params: dict[str, str]) -> dict:
    frame, target = TABLES[name]()
    csv = workdir / name / f"{name}.csv"
    csv.parent.mkdir(parents=True)
    frame.to_csv(csv, index=False)
    frame = pd.read_csv(csv, low_memory=False)  # what the user's file holds, as preprocessing reads it
    labelled, kind, encoded, positions = same_split(frame, target)
    sizes = {split: len(rows) for split, rows in positions.items()}
    classes = len(np.unique(encoded)) if kind == "classification" else 0

    settings, schema = {}, None
    for setting, (regula_params, class_weight, metric) in SETTINGS.items():
        if kind == "regression" and settings:  # ClassWeight does not apply: the first run serves every setting
            settings[setting] = settings["accuracy"]
            continue
        runs_dir = workdir / name / setting
        regula = regula_summary(run_regula(csv, target, runs_dir, {**params, **regula_params}))
        run = run_schema(runs_dir)
        if run is not None:
            schema = run
            assert schema["rows"] == sizes, f"{name}: split differs from Regula's: {schema['rows']} vs {sizes}"
            assert schema["problem_type"] == kind, f"{name}: problem type {schema['problem_type']} vs {kind}"
        baselines = run_baselines(labelled, target, kind, encoded, positions, class_weight, metric)
        settings[setting] = {
            "regula": regula,
            "baselines": baselines,
            "verdict": verdict(regula, baselines, kind, classes, metric),
        }
    return {
        "table": name,
        "rows": len(frame),
        "labelled_rows": len(labelled),
        "columns": frame.shape[1] - 1,
        "problem_type": kind,
        "classes": classes or None,
        "split": sizes,
        "split_checked": schema is not None,
        "regula_dropped_columns": schema["dropped"] if schema else None,
        "id_like_columns": id_like_columns(labelled, target),
        "settings": settings,
    }


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def markdown(results: list[dict], setting: str) -> list[str]:
    metric = SETTINGS[setting][2]
    lines = [
        f"### {setting} setting ({metric}; R2 for regression)",
        "",
        "| table | rows | test rows (1 pt =) | problem | Regula outcome | Regula | LogReg/Ridge | HGB | within? "
        "| Regula s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        kind = r["problem_type"] + (f" ({r['classes']})" if r["classes"] else "")
        test = r["split"]["test"]
        point = f"{test} ({test / 100:.2f} rows)" if r["classes"] else str(test)
        s = r["settings"][setting]
        metric = s["verdict"]["metric"]
        cells = [(s["regula"].get("test_metrics") or {}).get(metric)] + [b[metric] for b in s["baselines"].values()]
        lines.append(
            f"| {r['table']} | {r['rows']} | {point} | {kind} | {s['regula']['outcome']} "
            f"| {' | '.join(fmt(c) for c in cells)} | {s['verdict']['label']} | {s['regula']['seconds']:.0f} |"
        )
    within = sum(r["settings"][setting]["verdict"]["within"] for r in results)
    lines += ["", f"{within} of {len(results)} tables within target ({setting} setting)", ""]
    return lines


def notes(results: list[dict]) -> list[str]:
    lines = []
    for r in results:
        if r["id_like_columns"]:
            columns = ", ".join(r["id_like_columns"])
            lines.append(f"- {r['table']}: ID-like columns (each side drops what Regula drops): {columns}")
        if r["regula_dropped_columns"]:
            dropped = "; ".join(f"{c}: {why}" for c, why in r["regula_dropped_columns"].items())
            lines.append(f"- {r['table']}: Regula dropped {dropped}")
        for setting, s in r["settings"].items():
            regula = s["regula"]
            auc = [b.get("roc_auc") for b in s["baselines"].values()]
            if regula.get("test_metrics") and "roc_auc" in regula["test_metrics"] and None not in auc:
                lines.append(
                    f"- {r['table']} ({setting}): test ROC AUC Regula {regula['test_metrics']['roc_auc']:.3f}, "
                    f"LogReg {auc[0]:.3f}, HGB {auc[1]:.3f}"
                )
            if not regula.get("registered"):
                reason = regula.get("failure_reason") or regula.get("error")
                lines.append(f"- {r['table']} ({setting}): {regula['outcome']}: {reason}")
    return lines


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=list(TABLES), help="run these tables only")
    parser.add_argument("--quick", action="store_true", help=f"the small real tables only: {', '.join(QUICK)}")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="a pipeline parameter")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "real_tables.json")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    names = args.only or (list(QUICK) if args.quick else list(TABLES))
    params = {**PARAMS, **dict(p.split("=", 1) for p in args.param)}
    start = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="regula-tables-") as tmp:
        for name in names:
            print(f"{name} ...", file=sys.stderr, flush=True)
            results.append(run_table(name, Path(tmp), params))
            labels = {k: v["verdict"]["label"] for k, v in results[-1]["settings"].items()}
            print(f"{name}: {labels}", file=sys.stderr, flush=True)
            # the tables so far, marked incomplete: a long run that is stopped still leaves what it measured
            partial = {"params": params, "complete": False, "tables": results}
            results_file.write(args.out, {**partial, "seconds": round(time.perf_counter() - start, 1)})
    total = time.perf_counter() - start
    for setting in SETTINGS:
        print("\n".join(markdown(results, setting)))
    print(f"total {total:.0f} s")
    print("\n".join(notes(results)))
    results_file.write(args.out, {"params": params, "complete": True, "seconds": round(total, 1), "tables": results})


if __name__ == "__main__":
    main()
