"""Time series: the features of a forecast, computed from the past only, the same way at training and at serving.

Packed into model.tar.gz with the inference code. A forecast is made at an *origin* t (the last time with a known
value) for `step` h = 1..Horizon, the target time t + h. Every feature of (t, h) is a value at or before t, or a value
known in advance of the target time (its calendar, the KnownColumns): nothing at or after t + 1 that is not known
in advance reaches the model.

- the seasonal naive forecast naive(t, h) = y[t + h - m * ceil(h / m)] (m the season; m = 1: the last value) is the
  baseline, and the label is the change over it: y[t + h] - naive(t, h). The model learns what the naive forecast
  misses, and its output plus naive(t, h) is the forecast.
- lags of the target, relative to the last value: y[t + 1 - k] - y[t] for k = 2..max(season, MIN_LAGS); the value
  at the target's phase one, two and three seasons back (naive(t, h) and the two before it) - y[t]; rolling means of
  the last w values - y[t]. Relative values: a series that trends out of the training range gives features the model
  has seen.
- the step h (Horizon > 1: one model for every step, the step as an input).
- the calendar of the target time (cyclic sine/cosine of the hour, day of week, day of year or month, by the
  frequency), or the phase in the season for an integer time index.
- KnownColumns at the target time; every other column at t and t - 1 (lagged), as the table transform encodes them;
  the series' identifying columns as categories.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from steps.table import TableError, infinite_problem, transform
from steps.table_values import infinite_values, parse_dates, parse_numbers

MIN_LAGS = 8  # plain lags of the target, at least: a series without a season still sees its recent past
SEASONS_BACK = 3  # the value at the target's phase in each of the last seasons: the naive forecast and 2 before it
DAY = 86_400
CALENDAR_CYCLES = 2  # a calendar feature needs its cycle this many times in the training range


class Plan:
    """What the features of a model are: read from (and written to) the schema's "series" entry."""

    def __init__(self, spec: dict):
        self.spec = spec
        self.season = int(spec["season"])
        self.horizon = int(spec["horizon"])
        self.lags = [int(k) for k in spec["lags"]]
        self.windows = [int(w) for w in spec["windows"]]
        self.history = max([*self.lags, *self.windows, SEASONS_BACK * self.season, 2])
        self.time_kind = spec["time_kind"]
        self.frequency = spec["frequency"]
        self.calendar = list(spec["calendar"])
        self.known = list(spec["known_columns"])
        self.lagged = list(spec["lagged_columns"])
        self.series_columns = list(spec["series_columns"])


def lags_for(season: int) -> list[int]:
    return list(range(1, max(season, MIN_LAGS) + 1))


def windows_for(season: int) -> list[int]:
    return sorted({w for w in (3, MIN_LAGS, season, 3 * season) if w >= 2})


def needed_history(season: int) -> int:
    return max([*lags_for(season), *windows_for(season), SEASONS_BACK * season, 2])


def calendar_parts(time_kind: str, step_seconds: float, season: int, span_seconds: float) -> list[str]:
    """Which cyclic parts of the target time describe it at this frequency: those that change from step to step and
    whose cycle the training range spans at least CALENDAR_CYCLES times (a day of year seen once is a trend)."""
    if time_kind == "integer":
        return ["phase"] if season > 1 else []
    cycles = {"hour": DAY, "day_of_week": 7 * DAY, "day_of_year": 365.25 * DAY, "month": 365.25 * DAY}
    if step_seconds < DAY:
        parts = ["hour", "day_of_week"]
    elif step_seconds == DAY:
        parts = ["day_of_week", "day_of_year"]
    elif step_seconds < 28 * DAY:
        parts = ["day_of_year"]
    elif step_seconds < 365 * DAY:
        parts = ["month"]
    else:
        parts = []
    return [p for p in parts if span_seconds >= CALENDAR_CYCLES * cycles[p]]


def calendar_season(time_kind: str, step_seconds: float) -> int | None:
    """The season a frequency suggests (inference checks it first): a day of hours, a week of days, a year of weeks,
    months or quarters."""
    if time_kind == "integer":
        return None
    for seconds, season in ((3600, 24), (DAY, 7), (7 * DAY, 52)):
        if step_seconds == seconds:
            return season
    if 28 * DAY <= step_seconds <= 31 * DAY:
        return 12
    if 89 * DAY <= step_seconds <= 92 * DAY:
        return 4
    return None


def seasonal_naive(y: np.ndarray, origins: np.ndarray, steps: np.ndarray, season: int, back: int = 0) -> np.ndarray:
    """The value one season before each target time, from what is known at the origin: y[t + h - m*ceil(h/m)];
    `back` seasons earlier still with `back` > 0."""
    m = max(1, int(season))
    return y[origins + steps - m * (np.ceil(steps / m).astype(np.int64) + back)]


def target_times(times, origins: np.ndarray, steps: np.ndarray, plan: Plan):
    """The time of origin + step: an integer index advances by its step, dates by their frequency."""
    base = np.asarray(times)[origins]
    if plan.time_kind == "integer":
        return base + steps * int(plan.frequency)
    offset = pd.tseries.frequencies.to_offset(plan.frequency)
    base = pd.DatetimeIndex(base)
    out = np.empty(len(origins), dtype="datetime64[ns]")
    for h in np.unique(steps):
        chosen = steps == h
        out[chosen] = (base[chosen] + int(h) * offset).to_numpy()
    return out


def _calendar(frame: dict, when, plan: Plan) -> None:
    if plan.time_kind == "integer":
        if "phase" in plan.calendar:
            angle = 2 * np.pi * (np.asarray(when, dtype=np.float64) / float(plan.frequency) % plan.season) / plan.season
            frame["calendar phase sin"], frame["calendar phase cos"] = np.sin(angle), np.cos(angle)
        return
    when = pd.DatetimeIndex(when)
    periods = {
        "hour": (when.hour + when.minute / 60, 24),
        "day_of_week": (when.day_of_week, 7),
        "day_of_year": (when.day_of_year - 1, 365.25),
        "month": (when.month - 1, 12),
    }
    for part in plan.calendar:
        values, period = periods[part]
        angle = 2 * np.pi * np.asarray(values, dtype=np.float64) / period
        frame[f"calendar {part} sin"], frame[f"calendar {part} cos"] = np.sin(angle), np.cos(angle)


def raw_features(y, times, covariates: pd.DataFrame, origins, steps, plan: Plan, key: dict) -> tuple:
    """The raw feature frame of one series' forecasts (origin, step) and their seasonal naive forecasts. `y` holds
    the target in time order (values after an origin are never read for it), `covariates` the other columns row
    for row (a KnownColumn is read at the target time, any other at the origin and one step before)."""
    origins, steps = np.asarray(origins, dtype=np.int64), np.asarray(steps, dtype=np.int64)
    y = np.asarray(y, dtype=np.float64)
    last = y[origins]
    naive = seasonal_naive(y, origins, steps, plan.season)
    frame = {}
    for k in plan.lags:
        if k > 1:
            frame[f"lag {k}"] = y[origins + 1 - k] - last
    sums = np.concatenate([[0.0], np.cumsum(y)])
    for w in plan.windows:
        frame[f"mean {w}"] = (sums[origins + 1] - sums[origins + 1 - w]) / w - last
    frame["naive"] = naive - last
    if plan.season > 1:  # the target's phase in the seasons before: aligned with the target time, whatever the step
        for back in range(1, SEASONS_BACK):
            frame[f"season -{back + 1}"] = seasonal_naive(y, origins, steps, plan.season, back) - last
    if plan.horizon > 1:
        frame["step"] = steps.astype(np.float64)
    _calendar(frame, target_times(times, origins, steps, plan), plan)
    out = pd.DataFrame(frame)
    for name in plan.known:
        out[f"{name} at target"] = covariates[name].to_numpy()[origins + steps]
    for name in plan.lagged:
        values = covariates[name].to_numpy()
        out[f"{name} at t"] = values[origins]
        out[f"{name} at t-1"] = values[origins - 1]
    for name, value in key.items():
        out[f"series {name}"] = [value] * len(origins)
    return out, naive


# -- serving: a request's history rows -> the forecasts' features ---------------------------------------------------


class Forecasts:
    """The encoded inputs of one forecast per (series, step), and how to answer with them (Predictor.predict)."""

    def __init__(self, features: np.ndarray, naive: np.ndarray, rows: list[dict]):
        import torch

        self.x = torch.as_tensor(np.ascontiguousarray(features, dtype=np.float32))
        self.naive, self.rows = naive, rows

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index):
        return self.x[index]

    def subset(self, index):
        return Forecasts(self.x[index].numpy(), self.naive[index], [self.rows[i] for i in np.arange(len(self))[index]])

    def to(self, device):
        return self

    def model_shape(self) -> dict:
        return {"n_features": int(self.x.shape[1]), "extra": {}}

    def work_per_row(self) -> int:
        return int(self.x.shape[1])

    def answer(self, outputs: np.ndarray) -> dict:
        """The forecasts: the model's change over the seasonal naive forecast, added to it."""
        values = (np.asarray(outputs, dtype=np.float64) + self.naive).round(6)
        forecasts = [{**row, "forecast": float(v)} for row, v in zip(self.rows, values, strict=True)]
        return {"predictions": values.tolist(), "forecasts": forecasts}


def series_label(key: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in key.items()) if key else "the series"


def parse_times(values: pd.Series, time_kind: str) -> tuple[np.ndarray, pd.Series]:
    """Times as float64 whole numbers (integer index) or datetime64, and the values that are neither (or missing)."""
    if time_kind == "integer":
        numbers = parse_numbers(values)[0]
        bad = np.isnan(numbers) | (numbers != np.round(numbers))
        return numbers, values[bad].astype(str)
    dates = parse_dates(values)
    return dates.to_numpy(dtype="datetime64[ns]"), values[dates.isna().to_numpy()].astype(str)


def encode(rows: pd.DataFrame, schema: dict) -> Forecasts:
    """Request rows (the recent history of one or more series) -> the features of their next Horizon values.
    Raises TableError naming every series that cannot be forecast, and why."""
    plan = Plan(schema["series"])
    target, time = schema["target"], schema["series"]["time_column"]
    required = [time, target, *plan.series_columns, *plan.known, *plan.lagged]
    absent = [c for c in required if c not in rows.columns]
    if absent:
        raise TableError([f"missing required column(s): {', '.join(absent)}"])
    problems = []
    times, bad = parse_times(rows[time], plan.time_kind)
    if len(bad):
        problems.append(f"column '{time}': {len(bad)} values are not times ({', '.join(map(repr, bad[:3]))})")
    values, not_numbers = parse_numbers(rows[target])
    if len(not_numbers):
        problems.append(f"column '{target}': {len(not_numbers)} values are not numbers")
    # an infinite number would read as missing (a gap, or the start of the forecast rows): name it instead
    numeric = {c["name"] for c in schema["transform"]["columns"] if c["kind"] == "numeric"}
    for name in [target, *plan.known, *plan.lagged]:
        if name == target or {f"{name} at target", f"{name} at t"} & numeric:
            problems += infinite_problem(name, infinite_values(rows[name]))
    if problems:
        raise TableError(problems)
    frame = rows.assign(__time__=times, __y__=values).reset_index(drop=True)
    groups = frame.groupby(plan.series_columns, sort=True, dropna=False) if plan.series_columns else [((), frame)]
    blocks, naives, answered = [], [], []
    for key_values, group in groups:
        key_values = key_values if isinstance(key_values, tuple) else (key_values,)
        key = {c: _plain(v) for c, v in zip(plan.series_columns, key_values, strict=True)}
        name = series_label(key)
        group = group.sort_values("__time__", kind="stable")
        if group["__time__"].duplicated().any():
            problems.append(f"{name}: {int(group['__time__'].duplicated().sum())} duplicate times")
            continue
        known = np.flatnonzero(~np.isnan(group["__y__"].to_numpy()))
        if len(known) == 0:
            problems.append(f"{name}: no row with a value of '{target}'; needs the last {plan.history} values")
            continue
        end = known[-1]
        history = group.iloc[: end + 1]
        gaps = np.isnan(history["__y__"].to_numpy()[-plan.history :]).sum()
        if end + 1 < plan.history:
            problems.append(
                f"{name}: {end + 1} rows of history, needs at least {plan.history} (the last {plan.history} values "
                f"of '{target}', one per step)"
            )
            continue
        if gaps:
            problems.append(f"{name}: {gaps} of the last {plan.history} rows have no value of '{target}'")
            continue
        recent = history.iloc[-plan.history :]
        grid = target_times(
            recent["__time__"].to_numpy(), np.zeros(plan.history, dtype=np.int64), np.arange(plan.history), plan
        )
        if not np.array_equal(np.asarray(grid), recent["__time__"].to_numpy()):
            problems.append(
                f"{name}: the last {plan.history} rows are not consecutive steps of {plan.frequency} (gaps or "
                "another frequency)"
            )
            continue
        steps = np.arange(1, plan.horizon + 1)
        origin = len(recent) - 1
        wanted = target_times(recent["__time__"].to_numpy(), np.full(plan.horizon, origin), steps, plan)
        covariates = recent.reset_index(drop=True)
        if plan.known:
            future = group.iloc[end + 1 :].set_index("__time__")
            missing = [t for t in wanted if t not in future.index]
            if missing:
                shown = ", ".join(_time_text(t, plan) for t in missing[:3])
                problems.append(
                    f"{name}: KnownColumns ({', '.join(plan.known)}) need a row for each forecast time, missing "
                    f"{len(missing)} ({shown})"
                )
                continue
            ahead = future.loc[list(wanted)].reset_index()
            covariates = pd.concat([covariates, ahead], ignore_index=True)
        raw, naive = raw_features(
            recent["__y__"].to_numpy(),
            recent["__time__"].to_numpy(),
            covariates,
            np.full(plan.horizon, origin),
            steps,
            plan,
            key,
        )
        blocks.append(raw)
        naives.append(naive)
        answered += [{**key, "time": _time_text(t, plan), "step": int(h)} for t, h in zip(wanted, steps, strict=True)]
    if problems:
        raise TableError(problems)
    if not blocks:
        raise TableError(["no rows to forecast from"])
    features = transform(pd.concat(blocks, ignore_index=True), schema["transform"])
    return Forecasts(features, np.concatenate(naives), answered)


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def _time_text(value, plan: Plan) -> str | int:
    if plan.time_kind == "integer":
        return int(value)
    stamp = pd.Timestamp(value)
    return stamp.date().isoformat() if stamp == stamp.normalize() else stamp.isoformat()
