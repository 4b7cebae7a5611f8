"""Numbers at the edges of float32 and float64: refused with a message, or scaled without losing the column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import run_step

from steps import table


def regression_table(rows: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(rows)
    return pd.DataFrame({"x": x, "noise": rng.standard_normal(rows), "y": 3 * x + rng.standard_normal(rows) * 0.1})


def test_a_target_beyond_float32_is_refused_before_anything_is_written(tmp_path):
    frame = regression_table()
    frame.loc[[4, 9], "y"] = [5e38, -1e39]
    frame.to_csv(tmp_path / "table.csv", index=False)
    result = run_step(
        "preprocess.py", "--input", str(tmp_path / "table.csv"), "--output-dir", str(tmp_path / "out"),
        "--target", "y", "--problem-type", "regression", env={"REGULA_METRICS": "off"},
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "ERROR preprocess: target column 'y' holds 2 values beyond float32's range (+-3.4e38; rows 4, 9): rescale "
        "the column (other units)"
    )
    assert not (tmp_path / "out" / "train").exists()


@pytest.mark.parametrize("magnitude", [1e154, 1e200, 1e-300])
def test_a_feature_of_huge_or_tiny_magnitude_is_scaled_as_the_same_feature_in_plain_units(magnitude):
    """Standardizing is scale-free: x * 1e154 gives the features x gives (its std used to overflow to inf, and the
    column became zeros)."""
    frame = regression_table().drop(columns="y")
    scaled = frame.assign(x=frame["x"] * magnitude)
    roles = {"x": "numeric", "noise": "numeric"}
    plain = table.transform(frame, table.fit(frame, roles))
    huge = table.transform(scaled, table.fit(scaled, roles))
    assert np.std(huge[:, 0]) > 0.5, "the column was kept"
    np.testing.assert_allclose(huge, plain, rtol=1e-5, atol=1e-6)


def test_a_feature_spanning_the_float64_range_is_refused_with_a_message():
    frame = regression_table().drop(columns="y")
    frame["x"] = np.where(frame["x"] > 0, 1e308, -1e308)
    with pytest.raises(table.TableError, match=r"column 'x' holds values too large to scale \(-1e\+308 to 1e\+308\)"):
        table.fit(frame, {"x": "numeric", "noise": "numeric"})
