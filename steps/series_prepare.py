"""Preprocessing of the time-series kind (TimeColumn set): a table of one or many series in, chronological splits out.

Reads the table, checks every series at once (times that do not parse, duplicates of (series, time), gaps or
irregular times, values missing, series too short for the lags and the splits: one message naming every problem,
nothing trained), infers each series' frequency (stated in the log; all series must share one) and the season
(`Season`, or inferred from the training values: steps/series.py). Splits each series by its own time range: the
forecasts whose target time is in the earliest 60% train, the next 20% validate, the last 20% test (the fractions are
ValidationFraction / TestFraction), never shuffled across time. One example per (series, origin, step): the features
of steps/series.py, the label the change over the seasonal naive forecast. Fits the table transform of those features
on the training examples only and writes the splits in the table's format, the schema (kind "series", what serving
needs, the split boundaries) and the raw history rows whose forecasts evaluation checks through the serving code.
"""

from __future__ import annotations

import argparse
import json
import math
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from steps import series as features
from steps import table as columns
from steps import table_roles
from steps.contract import NAIVE, RAW_SAMPLE, SCHEMA, SPLITS, StepError, write_split
from steps.defaults import MAX_SEASON
from steps.table_values import parse_numbers
from steps.tablefile import TableFileError, read_input_table

MIN_SEASON_ACF = 0.2  # a season is inferred only where the differenced series repeats at least this much
SEARCH_Z = 3.5  # a season found by searching every lag must repeat this many standard errors above noise
RAW_SAMPLE_SERIES = 20  # series whose next forecasts evaluation checks through the serving code
SHOWN = 5  # series named per problem


def names(text: str) -> list[str]:
    return [n.strip() for n in str(text or "").split(",") if n.strip()]


def _round(x: float) -> int:
    return int(math.floor(x + 0.5))


def boundaries(n: int, args: argparse.Namespace) -> tuple[int, int]:
    """First validation and first test index of a series of n values: the last fractions of its time range."""
    return n - _round(n * (args.validation_fraction + args.test_fraction)), n - _round(n * args.test_fraction)


def min_rows(history: int, horizon: int, args: argparse.Namespace) -> int:
    """The shortest series that gives every split forecasts: a training target after the first `history` values, a
    validation one, and a test origin with all its Horizon steps in the test range."""
    n = history + 2
    while True:
        first_validation, first_test = boundaries(n, args)
        if first_validation > history and first_test > first_validation and n - first_test >= horizon:
            return n
        n += 1


def frequency_of(times: np.ndarray, time_kind: str, common=None):
    """(frequency, missing steps) of a sorted series' times; (None, None) when they are irregular, (None, 0) when
    there are too few to tell. Dates: pandas' inferred frequency, else the common one (or the most frequent step)
    with the missing times counted; integers: the most frequent step."""
    if len(times) < 3 and common is None:
        return None, 0
    if time_kind == "integer":
        steps = np.diff(times)
        step = common if common is not None else Counter(steps.tolist()).most_common(1)[0][0]
        if step <= 0 or np.any((times - times[0]) % step):
            return None, None
        return int(step), int((times[-1] - times[0]) // step + 1 - len(times))
    index = pd.DatetimeIndex(times)
    if len(times) >= 3:
        with warnings.catch_warnings():  # pandas 3 announces offsets instead of strings: either is read as text
            warnings.simplefilter("ignore")
            inferred = pd.infer_freq(index)
        inferred = getattr(inferred, "freqstr", inferred)
        if inferred:
            return inferred, 0
    candidates = [common] if common else []
    if len(times) >= 2:
        step = pd.Series(np.diff(times)).mode()[0]
        days = step / pd.Timedelta(days=1)
        candidates.append(f"{int(days)}D" if days == int(days) else pd.tseries.frequencies.to_offset(step).freqstr)
    for candidate in candidates:
        grid = pd.date_range(index[0], index[-1], freq=candidate)
        if index.isin(grid).all():
            return candidate, len(grid) - len(index)
    return None, None


def shown(items: list[str]) -> str:
    return ", ".join(items[:SHOWN]) + (f", and {len(items) - SHOWN} more" if len(items) > SHOWN else "")


def prepare(args: argparse.Namespace, problems: list[str], path: Path) -> dict[str, int]:
    try:
        frame = read_input_table(path)
    except TableFileError as error:
        raise StepError(str(error)) from None
    frame.columns = [str(c) for c in frame.columns]
    time, target = args.time_column, args.target
    keys, known = names(args.series_columns), names(args.known_columns)
    exclude, categorical = names(args.exclude_columns), names(args.categorical_columns)
    for option, listed in (
        ("TimeColumn", [time]),
        ("TargetColumn", [target]),
        ("SeriesColumn", keys),
        ("KnownColumns", known),
        ("ExcludeColumns", exclude),
        ("CategoricalColumns", categorical),
    ):
        unknown = [n for n in listed if n not in frame.columns]
        if unknown:
            problems.append(f"{option} names columns the table does not have: {', '.join(unknown)}")
    roles_of = {time: "TimeColumn", target: "TargetColumn", **{k: "SeriesColumn" for k in keys}}
    clash = [n for n in known if n in roles_of]
    if clash:
        problems.append(f"KnownColumns may not name the {', '.join(roles_of[n] for n in clash)}: {', '.join(clash)}")
    if args.problem_type == "classification":
        problems.append("ProblemType classification does not fit a forecast: TimeColumn forecasts numbers (regression)")
    if args.quality_metric not in ("auto", "r2"):
        problems.append(f"QualityMetric {args.quality_metric} is for classification; forecasts use r2 (or auto)")
    if problems:
        raise columns.TableError(problems)

    # -- every value and every series checked, all problems at once ---------------------------------------------
    time_kind = "integer" if pd.api.types.is_numeric_dtype(frame[time]) else "datetime"
    times, bad = features.parse_times(frame[time], time_kind)
    if len(bad):
        what = "whole numbers" if time_kind == "integer" else "dates or times"
        rows = ", ".join(map(str, bad.index[:5]))
        problems.append(
            f"TimeColumn '{time}': {len(bad)} values are not {what} ({', '.join(map(repr, pd.unique(bad)[:3]))}; "
            f"rows {rows})"
        )
    values, not_numbers = parse_numbers(frame[target])
    if len(not_numbers):
        examples = ", ".join(map(repr, pd.unique(not_numbers)[:3]))
        problems.append(f"target column '{target}': {len(not_numbers)} values are not numbers ({examples})")
    if keys and frame[keys].isna().any(axis=1).any():
        problems.append(f"SeriesColumn: {int(frame[keys].isna().any(axis=1).sum())} rows have no series value")
    data = frame.assign(__time__=times, __y__=values)
    data = data[~data.index.isin(bad.index)]
    if keys:
        data = data.dropna(subset=keys)
    groups = list(data.groupby(keys, sort=True)) if keys else [((), data)]
    series = []
    for key_values, group in groups:
        key_values = key_values if isinstance(key_values, tuple) else (key_values,)
        key = {c: features._plain(v) for c, v in zip(keys, key_values, strict=True)}
        series.append((key, group.sort_values("__time__", kind="stable")))

    duplicated, unvalued = [], []
    for key, group in series:
        copies = group["__time__"].duplicated()
        if copies.any():
            first = features._time_text(group["__time__"][copies].iloc[0], _plain_plan(time_kind))
            duplicated.append(f"{features.series_label(key)} ({int(copies.sum())}, first at {first})")
        missing = np.isnan(group["__y__"].to_numpy())
        if missing.any() and not len(not_numbers):
            unvalued.append(f"{features.series_label(key)} ({int(missing.sum())})")
    if duplicated:
        problems.append(f"duplicate (series, time) rows in {len(duplicated)} series: {shown(duplicated)}")
    if unvalued:
        problems.append(
            f"rows without a value of '{target}' in {len(unvalued)} series: {shown(unvalued)}; fill them (e.g. "
            "interpolate) before training"
        )

    found = {}
    for index, (_, group) in enumerate(series):
        if not group["__time__"].duplicated().any():
            found[index] = frequency_of(group["__time__"].to_numpy(), time_kind)
    counts = Counter(f for f, _ in found.values() if f is not None)
    common = counts.most_common(1)[0][0] if counts else None
    gapped, irregular = [], []
    for index, (frequency, gaps) in list(found.items()):
        key, group = series[index]
        if frequency is None and common is not None and len(group) >= 2:
            frequency, gaps = frequency_of(group["__time__"].to_numpy(), time_kind, common)
            found[index] = (frequency, gaps)
        if gaps is None:
            irregular.append(features.series_label(key))
        elif gaps:
            gapped.append(f"{features.series_label(key)} ({gaps} missing steps of {frequency})")
    if gapped:
        problems.append(f"gaps in {len(gapped)} series: {shown(gapped)}; fill the missing times before training")
    if irregular:
        problems.append(f"times at no regular frequency in {len(irregular)} series: {shown(irregular)}")
    frequencies = Counter(f for f, _ in found.values() if f is not None)
    if len(frequencies) > 1:
        problems.append(
            "the series have different frequencies: "
            + ", ".join(f"{f} ({n} series)" for f, n in frequencies.most_common())
            + "; forecast each frequency in a run of its own"
        )
    if common is None and not problems:
        problems.append("no series has enough regular times to infer its frequency (3 at least)")

    # -- the season and the lags: the shortest series that can be forecast -------------------------------------
    lengths = [len(group) for _, group in series]
    if time_kind == "integer" or common is None:
        step_seconds = 0.0
    else:
        step_seconds = pd.Series(np.diff(series[lengths.index(max(lengths))][1]["__time__"].to_numpy())).median()
        step_seconds = step_seconds.total_seconds()
    season, season_reason = args.season, "given by Season"
    if not problems and not season:
        first_validation = [boundaries(n, args)[0] for n in lengths]
        parts = [group["__y__"].to_numpy()[:b] for (_, group), b in zip(series, first_validation, strict=True)]
        season, season_reason = infer_season(parts, features.calendar_season(time_kind, step_seconds))
    history = features.needed_history(max(season, 1))
    needed = min_rows(history, args.horizon, args)
    short = [f"{features.series_label(k)} ({len(g)} rows)" for k, g in series if len(g) < needed]
    if short:
        problems.append(
            f"{len(short)} series too short: {shown(short)}; each needs at least {needed} rows ({history} values "
            f"of history for the lags{f' of season {season}' if season > 1 else ''}, then Horizon {args.horizon} "
            "and the validation and test ranges)"
        )
    if problems:
        raise columns.TableError(problems)
    for (key, group), (frequency, _) in zip(series, [found[i] for i in range(len(series))], strict=True):
        if len(series) <= 10 or key == series[0][0]:
            print(f"preprocess: {features.series_label(key)}: {len(group)} rows, frequency {frequency}", flush=True)
    if len(series) > 10:
        print(f"preprocess: {len(series)} series, every one at frequency {common}", flush=True)
    print(f"preprocess: season {season} ({season_reason}); {history} values of history per forecast", flush=True)

    # -- the covariates: known at the target time (KnownColumns), or lagged ------------------------------------
    others = [c for c in frame.columns if c not in (time, target, *keys)]
    roles, dropped = table_roles.column_roles(frame[others], exclude, categorical)
    for name, why in dropped.items():
        print(f"preprocess: dropped column '{name}': {why}", flush=True)
    longest = series[lengths.index(max(lengths))][1]["__time__"].to_numpy()
    span = (
        0.0
        if time_kind == "integer"
        else (longest[boundaries(len(longest), args)[0] - 1] - longest[0]) / np.timedelta64(1, "s")
    )
    spec = {
        "time_column": time,
        "time_kind": time_kind,
        "frequency": common,
        "season": int(max(season, 1)),
        "season_reason": season_reason,
        "horizon": args.horizon,
        "lags": features.lags_for(max(season, 1)),
        "windows": features.windows_for(max(season, 1)),
        "calendar": features.calendar_parts(time_kind, step_seconds, max(season, 1), span),
        "known_columns": [c for c in known if c in roles],
        "lagged_columns": [c for c in others if c in roles and c not in known],
        "series_columns": keys,
    }
    plan = features.Plan(spec)

    # -- examples: (series, origin, step), split by the target time ---------------------------------------------
    blocks, labels, naives, split_of, order, bounds, stamps = [], [], [], [], [], [], []
    for number, (key, group) in enumerate(series):
        n = len(group)
        first_validation, first_test = boundaries(n, args)
        origins = np.concatenate([np.arange(plan.history - 1, n - h) for h in range(1, plan.horizon + 1)])
        steps = np.concatenate([np.full(n - h - plan.history + 1, h) for h in range(1, plan.horizon + 1)])
        y = group["__y__"].to_numpy()
        raw, naive = features.raw_features(
            y, group["__time__"].to_numpy(), group.reset_index(drop=True), origins, steps, plan, key
        )
        target_index = origins + steps
        blocks.append(raw)
        labels.append(y[target_index] - naive)
        naives.append(naive)
        split_of.append(np.where(target_index < first_validation, 0, np.where(target_index < first_test, 1, 2)))
        # the test forecasts from the last origin before the test range first: the raw sample serves them
        order.append(np.stack([origins != first_test - 1, np.full(len(origins), number), origins, steps], axis=1))
        stamp = group["__time__"].to_numpy()
        stamps.append(stamp)
        bounds.append(
            {
                "series": key,
                **{
                    name: [features._time_text(stamp[a], plan), features._time_text(stamp[b - 1], plan)]
                    for name, (a, b) in zip(
                        SPLITS,
                        ((plan.history, first_validation), (first_validation, first_test), (first_test, n)),
                        strict=True,
                    )
                },
            }
        )
    raw = pd.concat(blocks, ignore_index=True)
    labels, split_of, order = np.concatenate(labels), np.concatenate(split_of), np.concatenate(order)
    naives = np.concatenate(naives)
    positions = {}
    for index, name in enumerate(SPLITS):
        rows = np.flatnonzero(split_of == index)
        positions[name] = rows[np.lexsort(order[rows].T[::-1])]
    if 0 < args.max_train_rows < len(positions["train"]):
        rows = positions["train"]
        positions["train"] = most_recent(rows, order[rows, 1], order[rows, 2] + order[rows, 3], args.max_train_rows)
        kept = order[positions["train"]]
        first = np.full(len(bounds), np.iinfo(np.int64).max)  # each series' earliest kept target, in one pass
        np.minimum.at(first, kept[:, 1], kept[:, 2] + kept[:, 3])
        for number, b in enumerate(bounds):  # the training range each series keeps
            kept_any = first[number] < np.iinfo(np.int64).max
            b["train"] = [features._time_text(stamps[number][first[number]], plan), b["train"][1]] if kept_any else None
        print(
            f"preprocess: MaxTrainRows {args.max_train_rows}: kept the latest {len(positions['train'])} of {len(rows)} "
            f"training forecasts, the same share ({len(positions['train']) / len(rows):.0%}) of each series' by "
            "target time: each series keeps the most recent part of its training range",
            flush=True,
        )
    for b in bounds[:10]:
        print(
            f"preprocess: {features.series_label(b['series'])}: train targets "
            + (f"{b['train'][0]} .. {b['train'][1]}" if b["train"] else "none (MaxTrainRows)")
            + ", "
            f"validation {b['validation'][0]} .. {b['validation'][1]}, test {b['test'][0]} .. {b['test'][1]}",
            flush=True,
        )

    raw_roles = {c: "numeric" for c in raw.columns}
    for name in plan.known:
        raw_roles[f"{name} at target"] = roles[name]
    for name in plan.lagged:
        raw_roles[f"{name} at t"] = raw_roles[f"{name} at t-1"] = roles[name]
    for name in keys:
        raw_roles[f"series {name}"] = "categorical"
    marks = table_roles.missing_marks(raw, raw_roles)
    gaps = table_roles.columns_with_gaps(raw, raw_roles, marks)
    # no piecewise-linear bins: the lags' scaled values alone (the bins were measured on tables, not on series)
    transform = columns.fit(raw, raw_roles, marks, rows=positions["train"], gaps=gaps, bins=0)

    output = Path(args.output_dir)
    labels = labels.astype(np.float32)
    for name in SPLITS:
        rows = positions[name]
        write_split(
            output / name, name, [(columns.transform(raw.iloc[rows], transform), labels[rows])], transform["features"]
        )
        np.save(output / name / NAIVE, naives[rows])  # evaluation's metrics on levels (label + naive)
    write_raw_sample(output / "test" / RAW_SAMPLE, frame, series, plan, args)

    train_labels = labels[positions["train"]].astype(np.float64)
    schema = {
        "kind": "series",
        "source": path.name,
        "target": target,
        "problem_type": "regression",
        "problem_type_reason": "TimeColumn is set: the next values of the target are forecast",
        # the labels are the change over the seasonal naive forecast: the trivial model (that forecast) outputs 0
        "baseline": "seasonal_naive",
        "input_columns": [time, target, *keys, *plan.known, *plan.lagged],
        "roles": raw_roles,
        "dropped": dropped,
        "transform": transform,
        "features": transform["features"],
        "series": spec,
        "split": {
            "rule": (
                f"each series by its own time range: targets in the earliest "
                f"{1 - args.validation_fraction - args.test_fraction:.0%} train, the next "
                f"{args.validation_fraction:.0%} validate, the last {args.test_fraction:.0%} test"
            ),
            "series_count": len(series),
            "boundaries": bounds[:100],
        },
        "rows": {name: len(positions[name]) for name in SPLITS},
        "seed": args.seed,
        "target_mean": float(train_labels.mean()),
        "target_std": float(train_labels.std()) or 1.0,
    }
    (output / "train" / SCHEMA).write_text(json.dumps(schema, indent=2, default=str))
    print(
        f"preprocess: {len(series)} series, {len(frame)} rows -> {len(raw)} forecasts (Horizon {plan.horizon}) x "
        f"{len(transform['features'])} features -> " + ", ".join(f"{n} {len(positions[n])}" for n in SPLITS),
        flush=True,
    )
    return {
        "InputRows": len(frame),
        "TrainRows": len(positions["train"]),
        "ValidationRows": len(positions["validation"]),
    }


def most_recent(rows: np.ndarray, number: np.ndarray, target: np.ndarray, limit: int) -> np.ndarray:
    """MaxTrainRows on series: `limit` of the training forecasts `rows` (series `number`, `target` time index), the
    same share of each series' (largest remainders), each series' latest by target time, in their order. A forecast
    is best learnt from the recent past; a sample of whole series would leave series the model never saw."""
    counts = np.bincount(number)
    quota = counts * (limit / len(rows))
    keep = np.floor(quota).astype(int)
    keep[np.argsort(keep - quota, kind="stable")[: limit - int(keep.sum())]] += 1
    newest = np.lexsort((-target, number))  # by series, the latest target first
    rank = np.empty(len(rows), dtype=int)
    rank[newest] = np.arange(len(rows)) - (np.cumsum(counts) - counts)[number[newest]]
    return rows[rank < keep[number]]


def write_raw_sample(path: Path, frame: pd.DataFrame, series, plan, args) -> None:
    """The history rows of the first series up to the last origin before their test range (and, with KnownColumns,
    the rows of the forecast times, target left empty): served, they give the test split's first forecasts."""
    parts = []
    for _, group in series[:RAW_SAMPLE_SERIES]:
        first_test = boundaries(len(group), args)[1]
        rows = frame.loc[group.index[first_test - plan.history : first_test]]
        if plan.known:
            ahead = frame.loc[group.index[first_test : first_test + plan.horizon]].copy()
            ahead[args.target] = None
            rows = pd.concat([rows, ahead])
        parts.append(rows)
    pd.concat(parts).to_csv(path, index=False)


def _plain_plan(time_kind: str):
    return argparse.Namespace(time_kind=time_kind)


def season_strength(y_parts: list[np.ndarray], lag: int) -> float:
    """The autocorrelation at `lag` of the first differences, pooled over series."""
    num = den = 0.0
    for y in y_parts:
        d = np.diff(y)
        if len(d) <= lag + 1:
            continue
        d = d - d.mean()
        num += float(np.dot(d[lag:], d[:-lag]))
        den += float(np.dot(d, d))
    return num / den if den > 0 else 0.0


def infer_season(y_parts: list[np.ndarray], calendar: int | None) -> tuple[int, str]:
    """The season of the training values, and why: the frequency's calendar season where the series repeat at it,
    else the lag up to MAX_SEASON where they repeat most (at least MIN_SEASON_ACF), else none (1: plain naive)."""
    shortest = min((len(y) for y in y_parts), default=0)
    if calendar and calendar < shortest // 3:
        strength = season_strength(y_parts, calendar)
        if strength >= MIN_SEASON_ACF:
            return calendar, f"the frequency's season {calendar}, autocorrelation {strength:.2f}"
    top = min(MAX_SEASON, shortest // 3)
    if top < 2:
        return 1, "the series are too short to infer a season: plain naive"
    strengths = {lag: season_strength(y_parts, lag) for lag in range(2, top + 1)}
    best = max(strengths, key=strengths.get)
    # the best of many lags: noise alone reaches about 2-3 standard errors (1 / sqrt(values)) among them
    threshold = max(MIN_SEASON_ACF, SEARCH_Z / math.sqrt(max(sum(len(y) - 1 for y in y_parts), 1)))
    if strengths[best] >= threshold:
        return best, f"the strongest repetition up to {top} steps, autocorrelation {strengths[best]:.2f}"
    return 1, f"no lag up to {top} repeats (autocorrelation {strengths[best]:.2f} < {threshold:.2f}): plain naive"
