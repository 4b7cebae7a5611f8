"""The table transform (steps/table.py): column roles from the whole table, numbers from the training split."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from steps import target_scale
from steps.table import (
    MAX_BIN_CELLS,
    MAX_ONEHOT,
    MAX_Z,
    TableError,
    bins_for,
    feature_names,
    fit,
    required_columns,
    transform,
)
from steps.table_roles import column_roles, missing_marks
from steps.table_values import category_key


def fitted(frame: pd.DataFrame, **options) -> dict:
    """The transform fitted on all of `frame`, with the roles `column_roles` gives it; no piecewise-linear bins (their
    own test below), so a numeric column is its scaled value and its missing indicator."""
    roles, _ = column_roles(frame, **options)
    return fit(frame, roles, bins=0)


def standardized(value: float, training: list[float]) -> float:
    """A numeric feature by its definition: clip to the training [0.1%, 99.9%] quantiles, center on the median,
    divide by the standard deviation of the clipped training values."""
    training = np.asarray(training, dtype=float)
    low, high = np.quantile(training, [0.001, 0.999])
    clipped = np.clip(training, low, high)
    return (np.clip(value, low, high) - np.median(clipped)) / clipped.std()


# -- column roles ---------------------------------------------------------------------------------------------------


def test_numbers_are_numeric_strings_and_booleans_categorical():
    frame = pd.DataFrame(
        {"x": [1.5, 2.5, 3.5, 4.5], "n": [1, 2, 1, 2], "s": ["a", "b", "a", "b"], "b": [True, False] * 2}
    )
    roles, dropped = column_roles(frame)
    assert roles == {"x": "numeric", "n": "numeric", "s": "categorical", "b": "categorical"}
    assert dropped == {}


def test_integer_column_declared_categorical_is_categorical():
    frame = pd.DataFrame({"code": [1, 2, 3, 1, 2, 3], "x": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]})
    roles, _ = column_roles(frame, categorical=["code"])
    assert roles == {"code": "categorical", "x": "numeric"}


def test_true_false_text_with_gaps_is_categorical():
    frame = pd.DataFrame({"flag": ["true", "false", None, "TRUE"] * 5})
    assert column_roles(frame)[0] == {"flag": "categorical"}


def test_text_of_numbers_with_a_few_question_marks_is_numeric():
    frame = pd.DataFrame({"x": [str(i) for i in range(39)] + ["?"]})
    assert column_roles(frame)[0] == {"x": "numeric"}


rng = np.random.default_rng(7)
ROWS = 30
DROPPED = {
    "constant": ("level", [4] * ROWS, "constant"),
    "all missing": ("blank", [np.nan] * ROWS, "all values missing"),
    "unique text per row": ("comment", [f"note {i}" for i in range(ROWS)], "one distinct text per row"),
    "integer sequence": ("row", list(rng.permutation(ROWS) + 1000), "ID-like integer sequence"),
    "named like an identifier": (
        "customer_id",
        [float(v) for v in rng.choice(10**6, ROWS - 1, replace=False)] + [np.nan],
        "named like an identifier",
    ),
}


@pytest.mark.parametrize("case", DROPPED)
def test_dropped_column_says_why(case):
    name, values, reason = DROPPED[case]
    frame = pd.DataFrame({name: values, "keep": np.arange(ROWS) % 4})
    roles, dropped = column_roles(frame)
    assert roles == {"keep": "numeric"}
    assert list(dropped) == [name] and reason in dropped[name]


def test_excluded_column_is_dropped_as_excluded():
    frame = pd.DataFrame({"leak": [1.0, 2.0, 3.0], "keep": [3.0, 1.0, 2.0]})
    roles, dropped = column_roles(frame, exclude=["leak"])
    assert roles == {"keep": "numeric"}
    assert "excluded" in dropped["leak"]


def test_uniqueness_says_nothing_below_20_rows():
    frame = pd.DataFrame({"name": [f"n{i}" for i in range(19)], "seq": np.arange(19)})
    roles, dropped = column_roles(frame)
    assert roles == {"name": "categorical", "seq": "numeric"} and dropped == {}


def test_spread_out_unique_integers_without_an_id_name_are_numeric():
    frame = pd.DataFrame({"income": np.arange(ROWS) * 1000 + 17})
    assert column_roles(frame)[0] == {"income": "numeric"}


# -- numeric columns ------------------------------------------------------------------------------------------------


def test_numeric_column_is_imputed_clipped_centered_and_scaled():
    # training [1, 2, 3, 4, NaN]: clip bounds 1.003 and 3.997, median 2.5, std of [1.003, 2, 3, 3.997]
    spec = fitted(pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, np.nan]}))
    std = np.sqrt((2 * 1.497**2 + 2 * 0.5**2) / 4)
    assert feature_names(spec) == ["x", "x missing"]
    out = transform(pd.DataFrame({"x": [2.5, 3.0, np.nan, 100.0, -100.0]}), spec)
    assert out.dtype == np.float32 and out.shape == (5, 2)
    expected = [0.0, 0.5 / std, 0.0, 1.497 / std, -1.497 / std]
    np.testing.assert_allclose(out[:, 0], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out[:, 1], [0, 0, 1, 0, 0])


def test_missing_indicator_only_where_the_table_had_gaps_and_a_gap_elsewhere_is_refused():
    spec = fitted(pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]}))
    assert feature_names(spec) == ["x"]
    with pytest.raises(TableError, match="column 'x': 1 missing values \\(rows 0\\); the model was trained without"):
        transform(pd.DataFrame({"x": [np.nan]}), spec)  # the model never saw a gap there: refused, not guessed
    # gaps anywhere in the table (even outside the training rows) make the column optional, with an indicator
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, np.nan]})
    roles, _ = column_roles(frame)
    spec = fit(frame, roles, rows=[0, 1, 2, 3], bins=0)
    assert feature_names(spec) == ["x", "x missing"]
    np.testing.assert_array_equal(transform(pd.DataFrame({"x": [np.nan]}), spec), [[0.0, 1.0]])


def test_extreme_value_at_transform_is_clipped_to_training_quantiles():
    training = np.arange(1.0, 1001.0)  # quantiles 1.999 and 999.001
    spec = fitted(pd.DataFrame({"x": training}))
    out = transform(pd.DataFrame({"x": [1e9, -1e9, 999.001, 1.999]}), spec)[:, 0]
    std = np.clip(training, 1.999, 999.001).std()
    expected = [(999.001 - 500.5) / std, (1.999 - 500.5) / std] * 2
    np.testing.assert_allclose(out, expected, rtol=1e-5)
    assert out[0] == out[2] and out[1] == out[3]


def test_the_bound_and_the_divisor_are_fit_options_kept_in_the_spec():
    """A nearly constant column (99 zeros, one 1 among 1,000 rows, so the clip keeps the 1): by default its rare value
    is bounded to MAX_Z; with no bound it is its standard score; with the IQR (0 here) it keeps its standard
    deviation; on a spread column the IQR divides. The spec carries the bound, so serving applies the same one."""
    rare = pd.DataFrame({"x": [1.0] * 2 + [0.0] * 998})  # 2 ones: inside the 99.9% quantile
    roles, _ = column_roles(rare)
    std = np.array([1.0] * 2 + [0.0] * 998).std()
    bounded = transform(pd.DataFrame({"x": [1.0]}), fit(rare, roles))[0, 0]
    free = fit(rare, roles, max_z=None)
    assert bounded == MAX_Z and free["columns"][0]["max_z"] is None
    np.testing.assert_allclose(transform(pd.DataFrame({"x": [1.0]}), free)[0, 0], 1 / std, rtol=1e-5)
    assert fit(rare, roles, scaling="iqr")["columns"][0]["scale"] == pytest.approx(std)

    spread = pd.DataFrame({"x": np.arange(0.0, 1001.0)})  # clipped to [1, 999]: quartiles 250 and 750
    roles, _ = column_roles(spread)
    spec = fit(spread, roles, scaling="iqr")
    assert spec["columns"][0]["scale"] == pytest.approx(500.0) and "max_z" not in spec["columns"][0]
    np.testing.assert_allclose(transform(pd.DataFrame({"x": [750.0]}), spec)[0, 0], 250 / 500, rtol=1e-6)


def test_piecewise_linear_bins_are_quantile_ramps_and_few_values_get_a_bin_each():
    """bins=4 on 0..1000 (clipped to [1, 999]): edges at the quantiles 1, 250, 500, 750, 999; a value's bin i is 0
    below edge i-1, 1 above edge i, linear between; a missing value is the median's. A column of three values gets
    one bin between each two (0-1, 1-2). bins=0 adds nothing."""
    frame = pd.DataFrame(
        {"x": np.arange(0.0, 1001.0), "k": [0.0, 1.0, 2.0] * 333 + [0.0, 1.0], "g": [np.nan] + [1.0] * 1000}
    )
    roles, _ = column_roles(frame.drop(columns="g"))
    spec = fit(frame, roles, bins=4)
    edges = spec["columns"][0]["edges"]
    np.testing.assert_allclose(edges, [1.0, 250.0, 500.0, 750.0, 999.0])
    assert feature_names(spec) == ["x", "x bin 1", "x bin 2", "x bin 3", "x bin 4", "k", "k bin 1", "k bin 2"]
    out = transform(pd.DataFrame({"x": [0.0, 125.5, 500.0, 874.5, 5000.0], "k": [0.0, 0.5, 1.0, 2.0, 9.0]}), spec)
    np.testing.assert_allclose(
        out[:, 1:5], [[0, 0, 0, 0], [0.5, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0.5], [1, 1, 1, 1]], atol=1e-6
    )
    np.testing.assert_allclose(out[:, 6:8], [[0, 0], [0.5, 0], [1, 0], [1, 1], [1, 1]])
    assert feature_names(fit(frame, roles, bins=0)) == ["x", "k"]
    gappy = fit(frame, {"g": "numeric", "x": "numeric"}, bins=4)  # g: one value, no bins; its indicator stays last
    assert feature_names(gappy)[:2] == ["g", "g missing"]
    np.testing.assert_array_equal(transform(pd.DataFrame({"g": [np.nan], "x": [1.0]}), gappy)[0, :2], [0.0, 1.0])


def test_bins_are_left_out_where_they_would_take_more_than_the_cell_budget():
    # 16 bins of one numeric column are 16 cells a row: 3,125,000 rows are 50,000,000 cells, one more row is over
    assert MAX_BIN_CELLS == 50_000_000
    assert bins_for(3_125_000, {"x": "numeric", "c": "categorical"}, 16) == 16
    assert bins_for(3_125_001, {"x": "numeric", "c": "categorical"}, 16) == 0
    # a datetime column counts as its five parts: 625,000 rows x 16 bins x 5 parts is the budget
    assert bins_for(625_000, {"d": "datetime"}, 16) == 16 and bins_for(625_001, {"d": "datetime"}, 16) == 0
    assert bins_for(10**9, {"c": "categorical"}, 16) == 16  # no numeric column: no bins to leave out


def test_numbers_are_learned_from_the_training_split_only():
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 1000.0, 2000.0]})
    roles, _ = column_roles(frame)
    spec = fit(frame.iloc[:4], roles)
    out = transform(frame, spec)[:, 0]
    np.testing.assert_allclose(out, [standardized(v, [1, 2, 3, 4]) for v in frame["x"]], rtol=1e-5)
    assert out[4] == out[5] == out[3]  # clipped to the training range


def test_infinity_is_treated_as_missing():
    spec = fitted(pd.DataFrame({"x": [1.0, 2.0, 3.0, np.inf, 4.0]}))
    assert feature_names(spec) == ["x", "x missing"]
    out = transform(pd.DataFrame({"x": [np.inf, -np.inf, 2.5]}), spec)
    np.testing.assert_array_equal(out, [[0, 1], [0, 1], [0, 0]])


def test_question_mark_is_missing_at_transform_time():
    training = [str(i) for i in range(39)] + ["?"]
    spec = fitted(pd.DataFrame({"x": training}))
    assert feature_names(spec) == ["x", "x missing"]
    out = transform(pd.DataFrame({"x": ["?", "19", "38"]}), spec)
    expected = [[0.0, 1.0], [0.0, 0.0], [standardized(38, range(39)), 0.0]]
    np.testing.assert_allclose(out, expected, rtol=1e-5)


def test_unseen_text_in_numeric_column_is_an_error_naming_the_column():
    spec = fitted(pd.DataFrame({"x": [str(i) for i in range(39)] + ["?"]}))
    with pytest.raises(TableError, match=r"column 'x'.*not numbers.*'abc'") as error:
        transform(pd.DataFrame({"x": ["1", "abc", "?"]}), spec)
    assert isinstance(error.value, ValueError)
    assert "rows 1" in str(error.value)


def test_missing_mark_seen_only_outside_the_training_split_is_still_missing():
    frame = pd.DataFrame({"x": [str(i) for i in range(39)] + ["?"]})
    roles, _ = column_roles(frame)
    assert roles == {"x": "numeric"}
    marks = missing_marks(frame, roles)  # over the whole table, as preprocessing does
    assert marks == {"x": ["?"]}
    spec = fit(frame.iloc[:30], roles, marks)  # the '?' row is in the validation or test split
    out = transform(frame.iloc[30:], spec)
    assert out[-1, 0] == 0.0  # imputed with the median


# -- categorical columns --------------------------------------------------------------------------------------------


def test_categories_are_one_hot_columns_most_frequent_first():
    spec = fitted(pd.DataFrame({"city": ["Oslo", "Rome", "Rome", "Bonn", "Rome", "Oslo"]}))
    assert feature_names(spec) == ["city=Rome", "city=Oslo", "city=Bonn"]
    out = transform(pd.DataFrame({"city": ["Bonn", "Rome", "Oslo"]}), spec)
    np.testing.assert_array_equal(out, [[0, 0, 1], [1, 0, 0], [0, 1, 0]])


def test_unknown_category_is_all_zeros():
    spec = fitted(pd.DataFrame({"city": ["Oslo", "Rome", "Bonn"]}))
    out = transform(pd.DataFrame({"city": ["Atlantis", "Rome"]}), spec)
    np.testing.assert_array_equal(out, [[0, 0, 0], [0, 0, 1]])


def test_missing_category_column_only_when_training_had_missing():
    without = fitted(pd.DataFrame({"city": ["Oslo", "Rome", "Oslo"]}))
    assert feature_names(without) == ["city=Oslo", "city=Rome"]
    with pytest.raises(TableError, match="column 'city': 1 missing values"):
        transform(pd.DataFrame({"city": [None]}), without)
    gappy = fitted(pd.DataFrame({"city": ["Oslo", None, "Rome", "Oslo"]}))
    assert feature_names(gappy) == ["city=Oslo", "city=Rome", "city=<missing>"]
    out = transform(pd.DataFrame({"city": [None, "Rome", np.nan]}), gappy)
    np.testing.assert_array_equal(out, [[0, 0, 1], [0, 1, 0], [0, 0, 1]])


def test_many_categories_keep_the_most_frequent_an_other_column_and_the_frequency():
    # k00..k30 three rows each, k31..k39 one row each: 102 rows, 40 categories
    common = [f"k{i:02d}" for i in range(31)]
    rare = [f"k{i:02d}" for i in range(31, 40)]
    spec = fitted(pd.DataFrame({"c": common * 3 + rare}))
    assert MAX_ONEHOT == 32
    assert feature_names(spec) == [f"c={k}" for k in common] + ["c=<other>", "c frequency"]
    out = transform(pd.DataFrame({"c": ["k00", "k35", "unseen"]}), spec)
    assert out.shape == (3, 33)
    assert out[0, 0] == 1 and out[0, 31] == 0 and out[0, 32] == pytest.approx(3 / 102, abs=1e-6)
    assert out[1, :31].sum() == 0 and out[1, 31] == 1 and out[1, 32] == pytest.approx(1 / 102, abs=1e-6)
    assert out[2, :31].sum() == 0 and out[2, 31] == 1 and out[2, 32] == 0


def test_true_spellings_are_one_category():
    spec = fitted(pd.DataFrame({"member": [True, False, True]}))
    assert feature_names(spec) == ["member=true", "member=false"]
    rows = pd.DataFrame({"member": pd.Series([True, "true", "TRUE", " True ", False, "false"], dtype=object)})
    np.testing.assert_array_equal(transform(rows, spec), [[1, 0]] * 4 + [[0, 1]] * 2)


def test_number_spellings_are_one_category():
    spec = fitted(pd.DataFrame({"code": [1, 2, 3, 2]}), categorical=["code"])
    assert feature_names(spec) == ["code=2", "code=1", "code=3"]
    rows = pd.DataFrame({"code": pd.Series([2, 2.0, "2", "2.0", np.int64(2)], dtype=object)})
    np.testing.assert_array_equal(transform(rows, spec), [[1, 0, 0]] * 5)
    np.testing.assert_array_equal(transform(pd.DataFrame({"code": [3.0, 2.5]}), spec), [[0, 0, 1], [0, 0, 0]])


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ((True, "true", "TRUE", " True", np.bool_(True)), "true"),
        ((False, "false", "FALSE"), "false"),
        ((2, 2.0, "2", "2.0", " 2 ", np.int64(2), np.float32(2.0)), "2"),
        ((2.5, "2.5", np.float64(2.5)), "2.5"),
        (("Oslo", " Oslo "), "Oslo"),
    ],
)
def test_category_key_spells_a_category_one_way(values, key):
    assert {category_key(v) for v in values} == {key}


# -- datetime columns -----------------------------------------------------------------------------------------------

DATES = ["2020-01-01", "2021-06-15", "2022-12-31", "2023-03-10"]  # Wednesday, Tuesday, Saturday, Friday


def test_iso_dates_become_year_month_day_and_day_of_week():
    frame = pd.DataFrame({"joined": DATES})
    assert column_roles(frame)[0] == {"joined": "datetime"}
    spec = fitted(frame)
    assert feature_names(spec) == ["joined.year", "joined.month", "joined.day", "joined.day_of_week"]
    out = transform(pd.DataFrame({"joined": ["2021-06-15"]}), spec)[0]
    expected = [
        standardized(2021, [2020, 2021, 2022, 2023]),
        standardized(6, [1, 6, 12, 3]),
        standardized(15, [1, 15, 31, 10]),
        standardized(1, [2, 1, 5, 4]),  # Monday is 0
    ]
    np.testing.assert_allclose(out, expected, rtol=1e-5)


def test_date_parts_that_never_vary_in_training_are_left_out():
    spec = fitted(pd.DataFrame({"d": ["2021-03-01", "2021-03-02", "2021-03-03", "2021-03-04"]}))
    assert feature_names(spec) == ["d.day", "d.day_of_week"]


def test_hour_only_when_times_vary():
    dates = fitted(pd.DataFrame({"d": ["2021-01-04 00:00", "2021-03-15 00:00", "2021-07-09 00:00"]}))
    assert "d.hour" not in feature_names(dates)
    times = fitted(pd.DataFrame({"d": ["2021-01-04 08:30", "2021-03-15 17:00", "2021-07-09 01:00"]}))
    assert feature_names(times) == ["d.month", "d.day", "d.day_of_week", "d.hour"]


def test_unparseable_date_is_an_error_naming_the_column():
    spec = fitted(pd.DataFrame({"joined": DATES}))
    with pytest.raises(TableError, match=r"column 'joined'.*not dates.*'someday'"):
        transform(pd.DataFrame({"joined": ["2021-06-15", "someday"]}), spec)


# -- applying the transform -----------------------------------------------------------------------------------------


def mixed_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            "gappy": [1.0, np.nan, 3.0, 4.0, np.nan, 6.0],
            "city": ["Oslo", "Rome", "Oslo", "Bonn", "Rome", "Oslo"],
            "when": ["2020-01-01", "2020-05-02", "2021-02-03", "2021-08-04", "2022-03-05", "2022-11-06"],
        }
    )


def test_required_columns_are_those_without_gaps_in_training():
    assert required_columns(fitted(mixed_frame())) == ["x", "city", "when"]


def test_column_order_does_not_matter():
    frame = mixed_frame()
    spec = fitted(frame)
    np.testing.assert_array_equal(transform(frame[["when", "city", "gappy", "x"]], spec), transform(frame, spec))


def test_extra_columns_are_ignored():
    frame = mixed_frame()
    spec = fitted(frame)
    extra = frame.assign(unused=["a", "b", "c", "d", "e", "f"], more=np.arange(6))
    np.testing.assert_array_equal(transform(extra, spec), transform(frame, spec))


def test_missing_optional_column_is_imputed():
    frame = mixed_frame()
    spec = fitted(frame)
    out = transform(frame.drop(columns=["gappy"]), spec)
    at = feature_names(spec).index("gappy")
    np.testing.assert_array_equal(out[:, at], 0.0)  # the median
    np.testing.assert_array_equal(out[:, at + 1], 1.0)  # and marked missing
    full = transform(frame, spec)
    np.testing.assert_array_equal(np.delete(out, [at, at + 1], axis=1), np.delete(full, [at, at + 1], axis=1))


def test_missing_required_column_and_bad_value_are_reported_together():
    frame = mixed_frame()
    spec = fitted(frame)
    rows = frame.drop(columns=["city"]).astype({"x": object})
    rows.loc[2, "x"] = "abc"
    with pytest.raises(TableError) as error:
        transform(rows, spec)
    assert len(error.value.problems) == 2
    message = str(error.value)
    assert "missing required column(s): city" in message
    assert "column 'x'" in message and "'abc'" in message and "rows 2" in message


# -- pandas 4 -------------------------------------------------------------------------------------------------------

PANDAS_4_WARNING = getattr(pd.errors, "Pandas4Warning", None)
needs_pandas_4_warning = pytest.mark.skipif(PANDAS_4_WARNING is None, reason="no Pandas4Warning in this pandas")


@needs_pandas_4_warning
def test_unknown_category_uses_nothing_pandas_4_removes():
    spec = fitted(pd.DataFrame({"city": ["Oslo", "Rome", "Bonn"]}))
    with warnings.catch_warnings():
        warnings.simplefilter("error", PANDAS_4_WARNING)
        transform(pd.DataFrame({"city": ["Atlantis"]}), spec)


@needs_pandas_4_warning
def test_date_parts_use_nothing_pandas_4_removes():
    with warnings.catch_warnings():
        warnings.simplefilter("error", PANDAS_4_WARNING)
        spec = fitted(pd.DataFrame({"joined": DATES}))
        transform(pd.DataFrame({"joined": DATES}), spec)


def test_day_first_dates_are_read_day_first_for_the_whole_column():
    frame = pd.DataFrame({"when": ["13/02/2021", "04/03/2021", "25/12/2020"] * 10})
    roles, _ = column_roles(frame)
    assert roles == {"when": "datetime"}
    spec = fit(frame, roles)
    assert spec["columns"][0]["day_first"] is True
    month = feature_names(spec).index("when.month")
    day = transform(pd.DataFrame({"when": ["04/03/2021"]}), spec)[0]
    expected = transform(pd.DataFrame({"when": ["2021-03-04"]}), spec)[0]  # 4 March, not 3 April
    np.testing.assert_array_equal(day, expected)
    # read day first, the months are February, March and December: their median, March, is the centre (0), where
    # April (month first) would be a step of one month to the right of it
    (part,) = [p for p in spec["columns"][0]["parts"] if p["part"] == "month"]
    assert part["median"] == 3 and part["scale"] > 0
    assert day[month] == 0.0


def test_missing_texts_and_numeric_codes_mean_the_same_from_any_source():
    assert category_key("NA") is None and category_key("null") is None and category_key(float("nan")) is None
    assert category_key("1.10") == category_key(1.1) == "1.1"
    assert category_key("1e20") == category_key(1e20)


def test_true_false_columns_accept_the_usual_spellings():
    spec = fitted(pd.DataFrame({"flag": [True, False, True, False]}))
    out = transform(pd.DataFrame({"flag": [1, "0", "yes", "N", True]}), spec)
    np.testing.assert_array_equal(out, transform(pd.DataFrame({"flag": [True, False, True, False, True]}), spec))


def test_a_tenth_of_question_marks_does_not_make_numbers_categories():
    values = [str(i) for i in range(90)] + ["?"] * 10
    roles, _ = column_roles(pd.DataFrame({"x": values, "y": list(range(50)) * 2}))
    assert roles["x"] == "numeric"


# -- the regression target's scale (steps/target_scale.py) -----------------------------------------------------------


def test_a_skewed_target_of_positive_values_is_modelled_on_log1p_and_others_keep_their_scale():
    rng = np.random.default_rng(0)
    prices = rng.lognormal(11, 0.6, 2000)
    chosen = target_scale.choose(prices, "auto")
    assert chosen["kind"] == "log1p" and chosen["reason"].startswith("the target is >= 0 and skewed")
    assert chosen["mean"] == pytest.approx(np.log1p(prices).mean()) and chosen["std"] == pytest.approx(
        np.log1p(prices).std()
    )
    symmetric = rng.normal(50, 5, 2000)
    assert target_scale.choose(symmetric, "auto")["kind"] == "none"
    assert "at most 1" in target_scale.choose(symmetric, "auto")["reason"]
    shifted = prices - prices.mean()  # as skewed, with negative values: log1p is undefined there
    assert target_scale.choose(shifted, "auto") | {"mean": 0} == {
        "kind": "none", "reason": "the target has negative values", "skewness": pytest.approx(chosen["skewness"]),
        "mean": 0, "std": pytest.approx(shifted.std()),
    }  # fmt: skip
    assert target_scale.choose(prices, "none")["kind"] == target_scale.choose(prices)["kind"] == "none", "default"
    with pytest.raises(ValueError, match="log1p needs a target without negative values"):
        target_scale.choose(shifted, "log1p")


def test_the_skewness_rule_keeps_the_scale_when_log1p_would_not_reduce_it():
    # a left-skewed target of large positive values: log1p makes it more skewed, not less
    values = 1000 - np.random.default_rng(1).lognormal(3, 0.9, 2000)
    assert target_scale.skewness(values) < 0 and target_scale.choose(values, "auto")["kind"] == "none"


def test_the_network_scale_round_trips_to_the_original_and_an_extreme_output_stays_finite():
    prices = np.random.default_rng(3).lognormal(11, 0.6, 500)
    scale = target_scale.choose(prices, "auto")
    schema = {"target_mean": prices.mean(), "target_std": prices.std(), "target_scale": scale}
    encoded = target_scale.to_model(schema, prices)
    assert encoded.dtype == np.float32 and abs(encoded.mean()) < 1e-3 and encoded.std() == pytest.approx(1, abs=1e-3)
    assert target_scale.from_model(schema, encoded) == pytest.approx(prices, rel=1e-5)
    extreme = target_scale.from_model(schema, np.array([-1e6, 1e6]))
    assert extreme[0] == 0 and np.isfinite(extreme[1]) and extreme[1] > prices.max()
    # a schema written before target_scale (and a time series'): the raw target, standardized
    raw = {"target_mean": 10.0, "target_std": 2.0}
    assert list(target_scale.to_model(raw, np.array([12.0, 8.0]))) == [1.0, -1.0]
    assert list(target_scale.from_model(raw, np.array([1.0, -1.0]))) == [12.0, 8.0]


def test_the_smearing_factor_turns_the_predicted_log_into_the_mean_price():
    """A model that predicts the training mean of log1p(price) for every row: expm1 of it is the geometric mean,
    below the mean price; smeared by the training residuals it is the mean price itself (the squared error's best)."""
    prices = np.random.default_rng(4).lognormal(10, 0.8, 1000)
    scale = target_scale.choose(prices, "auto")
    schema = {"target_mean": prices.mean(), "target_std": prices.std(), "target_scale": scale}
    mean_log = np.zeros(len(prices))  # the standardized log1p scale: its training mean is 0
    assert target_scale.from_model(schema, mean_log)[0] == pytest.approx(np.expm1(np.log1p(prices).mean()))
    assert target_scale.from_model(schema, mean_log)[0] < 0.8 * prices.mean()
    smeared = target_scale.with_smearing(schema, target_scale.to_model(schema, prices) - mean_log)
    assert target_scale.from_model(smeared, mean_log) == pytest.approx(np.full(len(prices), prices.mean()), rel=1e-6)
    assert target_scale.with_smearing(smeared, np.ones(5)) is smeared, "measured once"
    median = {**schema, "target_scale": target_scale.choose(prices, "log1p-median")}
    assert target_scale.with_smearing(median, np.ones(5)) is median, "log1p-median: expm1 alone"


def test_log_skewed_scaling_takes_log1p_of_a_skewed_non_negative_column_only():
    rng = np.random.default_rng(0)
    price = np.round(np.exp(rng.normal(3, 1.2, 400)), 2)  # lognormal: skewness far above 1
    frame = pd.DataFrame({"price": price, "normal": rng.normal(0, 1, 400), "signed": price - 5.0})
    roles = {c: "numeric" for c in frame}
    spec = fit(frame, roles, scaling="log-skewed")
    by_name = {c["name"]: c for c in spec["columns"]}
    assert by_name["price"].get("log") is True
    assert "log" not in by_name["normal"] and "log" not in by_name["signed"]  # symmetric; a negative value
    assert "log" not in fit(frame, roles)["columns"][0]  # the default scaling takes no log
    # by hand: clip to the training [0.1%, 99.9%], log1p, centre on the median, divide by the standard deviation
    low, high = np.quantile(price, (0.001, 0.999))
    logged = np.log1p(np.clip(price, low, high))
    expected = np.clip((logged - np.median(logged)) / logged.std(), -MAX_Z, MAX_Z)
    assert np.allclose(transform(frame, spec)[:, 0], expected, atol=1e-5)
    # a served row beyond the training range is clipped before the log, as training's were
    served = transform(pd.DataFrame({"price": [-3.0, 1e9], "normal": [0.0, 0.0], "signed": [0.0, 0.0]}), spec)
    assert served[0, 0] == pytest.approx(expected[np.argmin(price)], abs=1e-5)
    assert served[1, 0] == pytest.approx(expected[np.argmax(price)], abs=1e-5)
