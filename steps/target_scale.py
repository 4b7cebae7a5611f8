"""The scale a regression network predicts on: the target standardized, after log1p where the target is skewed.

A price, a count or a duration is positive and right-skewed: a few large values dominate the squared error on the
raw scale, so the network spends its fit on them and predicts the many small ones poorly. Such a target is modelled
as log1p(y) (squared error on it is about relative error on y), and predictions are turned back with expm1: every
metric, evaluation.json, the served predictions and `regula predict` are on the original scale.

The rule, from the training split alone (preprocessing's `choose`): log1p when every training value is >= 0, their
skewness is above SKEWNESS, and log1p makes the skewness smaller in magnitude (values in [0, 1), where log1p is nearly
linear, gain nothing). The network fits the mean of log1p(y), whose inverse is about the conditional median:
training then measures the smearing factor (`with_smearing`) that turns it into the conditional mean. log1p rather
than Yeo-Johnson: it has no fitted parameter (a Yeo-Johnson lambda is an estimate that moves with the split, and its
inverse is undefined past a bound for some lambdas), its inverse is exact everywhere, and it covers the case that
matters, a skewed positive quantity; a target with negative values keeps its scale. Measured raw against log1p:
benchmarks/results/target_transform.json.

Packed with the serving code (steps/serving_code.py): numpy only.
"""

from __future__ import annotations

import numpy as np

SKEWNESS = 1.0  # a training target skewed beyond this (and >= 0) is modelled on the log1p scale
KINDS = ("auto", "none", "log1p", "log1p-median")  # log1p-median: expm1 alone, without the smearing factor
# preprocessing's default: the raw scale. log1p (auto's rule) did not validate better in R2 on the original scale on
# the skewed tables measured (benchmarks/results/target_transform.json): it stays an option of preprocess.py.
DEFAULT = "none"


def skewness(values: np.ndarray) -> float:
    """The sample skewness (the third standardized moment); 0 for a constant."""
    values = np.asarray(values, dtype=np.float64)
    spread = values.std()
    return float(np.mean(((values - values.mean()) / spread) ** 3)) if spread > 0 else 0.0


def choose(train_values: np.ndarray, requested: str = DEFAULT) -> dict:
    """The target's scale from the training split's values: its kind (none or log1p), why, and the mean and standard
    deviation of the (transformed) training values that standardize it."""
    values = np.asarray(train_values, dtype=np.float64)
    before = skewness(values)
    after = skewness(np.log1p(values)) if values.min() >= 0 else None
    if requested.startswith("log1p") and after is None:
        raise ValueError("--target-transform log1p needs a target without negative values")
    if requested != "auto":
        kind = requested.removesuffix("-median")
        reason = "the default" if requested == DEFAULT else f"--target-transform {requested}"
    elif after is None:
        kind, reason = "none", "the target has negative values"
    elif before <= SKEWNESS:
        kind, reason = "none", f"the target's skewness {before:.2f} is at most {SKEWNESS:g}"
    elif abs(after) >= abs(before):
        kind, reason = "none", f"log1p would not reduce the skewness {before:.2f} (to {after:.2f})"
    else:
        kind, reason = "log1p", f"the target is >= 0 and skewed ({before:.2f}; {after:.2f} after log1p)"
    scaled = np.log1p(values) if kind == "log1p" else values
    spec = {
        "kind": kind,
        "reason": reason,
        "skewness": round(before, 4),
        "mean": float(scaled.mean()),
        "std": float(scaled.std()) or 1.0,
    }
    if kind == "log1p":  # predictions beyond twice the training range are clipped: expm1 would overflow
        spec["high"] = float(scaled.max() + (scaled.max() - scaled.min()))
        spec["smearing"] = 1.0 if requested == "log1p-median" else None  # None: training measures it
    return spec


def with_smearing(schema: dict, residuals: np.ndarray) -> dict:
    """The schema with the log1p scale's smearing factor (Duan's): the mean of exp(residual) over training rows,
    residuals on the log1p scale. expm1 of the predicted log is about the conditional median; times this factor it
    estimates the conditional mean, what squared error and R2 on the original scale reward."""
    spec = of(schema)
    if spec["kind"] != "log1p" or spec.get("smearing") is not None:
        return schema
    errors = np.asarray(residuals, dtype=np.float64) * spec["std"]
    factor = float(np.mean(np.exp(np.clip(errors, -50.0, 50.0))))
    return {**schema, "target_scale": {**spec, "smearing": factor}}


def of(schema: dict) -> dict:
    """The schema's target scale; a schema written before it (or a time series') standardizes the raw target."""
    return schema.get("target_scale") or {"kind": "none", "mean": schema["target_mean"], "std": schema["target_std"]}


def to_model(schema: dict, values: np.ndarray) -> np.ndarray:
    """Original-scale targets -> what the network is trained to predict (float32)."""
    spec = of(schema)
    values = np.asarray(values, dtype=np.float64)
    scaled = np.log1p(values) if spec["kind"] == "log1p" else values
    return ((scaled - spec["mean"]) / spec["std"]).astype(np.float32)


def from_model(schema: dict, outputs: np.ndarray) -> np.ndarray:
    """The network's outputs -> predictions on the original scale (float64)."""
    spec = of(schema)
    scaled = np.asarray(outputs, dtype=np.float64) * spec["std"] + spec["mean"]
    if spec["kind"] == "log1p":
        return np.exp(np.clip(scaled, 0.0, spec["high"])) * (spec.get("smearing") or 1.0) - 1.0
    return scaled


def transformed(schema: dict) -> bool:
    """Whether the network predicts a transformed target (a classification schema has no target scale)."""
    return (schema.get("target_scale") or {}).get("kind", "none") != "none"
