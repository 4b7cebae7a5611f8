"""Wide categories' target encoding (steps/target_encoding.py): scikit-learn's shrunk means, cross-fitted training
rows, the prior for what training did not see, and preprocessing's split files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from helpers import regula, run_folders, run_step
from sklearn.preprocessing import TargetEncoder

from steps import target_encoding
from steps.table import MAX_ONEHOT, cross_fitted, fit, transform
from steps.table_values import category_keys


def wide_frame(rows: int = 600, values: int = 60, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """A column with more values than MAX_ONEHOT whose value moves the target, and the target: (frame, value per
    row, target)."""
    rng = np.random.default_rng(seed)
    which = rng.integers(0, values, rows)
    effect = rng.normal(0, 2, values)
    y = effect[which] + rng.normal(0, 1, rows)
    return pd.DataFrame({"shop": [f"s{v:03d}" for v in which], "x": rng.normal(size=rows)}), which, y


def test_encodings_are_scikit_learns_shrunk_means():
    frame, _, y = wide_frame()
    encoding = target_encoding.fit_column(category_keys(frame["shop"]), target_encoding.targets(y, "regression"))
    reference = TargetEncoder(smooth="auto", target_type="continuous").fit(frame[["shop"]], y)
    theirs = dict(zip(reference.categories_[0], reference.encodings_[0], strict=True))
    assert len(encoding["values"]) == len(theirs) > MAX_ONEHOT
    for value, (mine,) in encoding["values"].items():
        assert mine == pytest.approx(theirs[value], rel=1e-6), value
    assert encoding["prior"][0] == pytest.approx(reference.target_mean_, abs=1e-6)


def test_two_classes_encode_the_second_class_share_and_more_classes_each_share():
    two = target_encoding.targets(np.array([0, 1, 1, 0]), "classification", ["no", "yes"])
    assert two.outputs == ["share yes"] and two.column(0).tolist() == [0, 1, 1, 0]
    three = target_encoding.targets(np.array([0, 2, 1]), "classification", ["a", "b", "c"])
    assert three.outputs == ["share a", "share b", "share c"]
    assert [three.column(j).tolist() for j in range(3)] == [[1, 0, 0], [0, 0, 1], [0, 1, 0]]


def test_class_shares_are_scikit_learns_for_each_class():
    rng = np.random.default_rng(2)
    keys = pd.Series([f"v{v}" for v in rng.integers(0, 40, 900)], dtype=object)
    labels = rng.integers(0, 3, 900)
    encoding = target_encoding.fit_column(keys, target_encoding.targets(labels, "classification", ["a", "b", "c"]))
    reference = TargetEncoder(smooth="auto", target_type="multiclass").fit(keys.to_frame(), labels)
    for k in range(3):  # scikit-learn: one block of encodings per class
        theirs = dict(zip(reference.categories_[0], reference.encodings_[k], strict=True))
        for value, mine in encoding["values"].items():
            assert mine[k] == pytest.approx(theirs[value], rel=1e-6), (value, k)


def test_a_value_in_one_training_row_and_an_unknown_value_get_the_prior():
    keys = pd.Series(["a", "a", "b"] * 20 + ["lone"], dtype=object)
    y = np.arange(len(keys), dtype=float)
    encoding = target_encoding.fit_column(keys, target_encoding.targets(y, "regression"))
    assert "lone" not in encoding["values"] and {"a", "b"} <= set(encoding["values"])
    features = target_encoding.apply(pd.Series(["lone", "never seen", None, "a"], dtype=object), encoding)
    assert features[:3, 0].tolist() == [0.0, 0.0, 0.0]  # the prior, centered
    assert features[3, 0] != 0.0


def test_a_training_rows_own_encoding_does_not_hold_its_label():
    frame, which, y = wide_frame()
    keys = category_keys(frame["shop"])
    encoding = target_encoding.fit_column(keys, target_encoding.targets(y, "regression"))
    row = 7
    changed = y.copy()
    changed[row] += 1_000.0  # its own label, far off: a leak would move its feature
    changed_encoding = target_encoding.fit_column(keys, target_encoding.targets(changed, "regression"))
    own = target_encoding.cross_fitted(keys, target_encoding.targets(y, "regression"), encoding, seed=3)
    # the same centering and scale (constants of the column), only the labels differ
    own_changed = target_encoding.cross_fitted(keys, target_encoding.targets(changed, "regression"), encoding, seed=3)
    assert own_changed[row, 0] == own[row, 0]
    # the full fit (what validation and serving rows get) does move, and so do rows of its value in other folds
    assert changed_encoding["values"][keys[row]] != pytest.approx(encoding["values"][keys[row]], abs=1e-2)
    same_value = np.flatnonzero(which == which[row])
    assert any(abs(own_changed[i, 0] - own[i, 0]) > 1e-2 for i in same_value if i != row)


@pytest.mark.parametrize("unit", [1e-7, 1.0, 1e7])
def test_the_encoding_is_finite_and_keeps_its_values_apart_on_any_scale_of_the_target(unit):
    frame, _, y = wide_frame()
    keys = category_keys(frame["shop"])
    targets = target_encoding.targets(y * unit, "regression")
    encoding = target_encoding.fit_column(keys, targets)
    served = target_encoding.apply(keys, encoding)[:, 0]
    own = target_encoding.cross_fitted(keys, targets, encoding, seed=0)[:, 0]
    assert np.isfinite(served).all() and np.isfinite(own).all()
    assert len(np.unique(served)) == 60, "every shop its own encoding, not rounded together"
    assert 0.5 < served.std() < 2 and np.corrcoef(served, y)[0, 1] > 0.8


def test_a_column_with_no_value_in_two_training_rows_gets_no_encoding_and_trains(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"code": [f"c{i}" for i in rng.permutation(300)] * 1, "x": rng.normal(size=300)})
    frame["y"] = frame["x"] + rng.normal(0, 0.1, 300)
    roles = {"code": "categorical", "x": "numeric"}
    spec = fit(frame, roles, targets=target_encoding.targets(frame["y"].to_numpy(), "regression"))
    assert "target_encoding" not in spec["columns"][0] and spec["columns"][0]["other"]
    assert np.isfinite(transform(frame, spec)).all()


def test_only_wide_categories_are_encoded_and_only_given_the_targets():
    frame, _, y = wide_frame()
    frame["colour"] = np.where(y > 0, "red", "blue")  # two values: one-hot, no encoding
    roles = {"shop": "categorical", "x": "numeric", "colour": "categorical"}
    targets = target_encoding.targets(y, "regression")
    spec = fit(frame, roles, targets=targets)
    by_name = {c["name"]: c for c in spec["columns"]}
    assert "target_encoding" in by_name["shop"] and "target_encoding" not in by_name["colour"]
    assert "shop target mean" in spec["features"]
    assert "target_encoding" not in {k for c in fit(frame, roles)["columns"] for k in c}
    # transform gives the full fit; cross_fitted the training rows' own, at the same position
    dense = transform(frame, spec)
    [(start, own)] = cross_fitted(frame, spec, targets, seed=1)
    assert spec["features"][start] == "shop target mean"
    assert np.corrcoef(dense[:, start], y)[0, 1] > np.corrcoef(own[:, 0], y)[0, 1] > 0.5


def test_preprocessing_writes_cross_fitted_training_rows_and_full_fit_validation_rows(tmp_path):
    frame, _, y = wide_frame(rows=1_000)
    frame["y"] = y
    frame.to_csv(tmp_path / "t.csv", index=False)
    result = run_step(
        "preprocess.py", "--input", str(tmp_path / "t.csv"), "--target", "y", "--output-dir", str(tmp_path / "out"),
        "--wide-categories", "target",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "column 'shop': 60 values, one-hot for the 31 most frequent" in result.stdout
    assert "and its target mean per value (60 values in at least 2 training rows" in result.stdout
    schema = json.loads((tmp_path / "out" / "train" / "schema.json").read_text())
    position = schema["features"].index("shop target mean")
    full_fit = np.unique(transform(frame, schema["transform"])[:, position])  # one value per shop
    assert len(full_fit) == 60
    for split in ("train", "validation"):
        written = pd.read_parquet(tmp_path / "out" / split / f"{split}.parquet")[f"{position}:shop target mean"]
        from_full_fit = np.isclose(written.to_numpy()[:, None], full_fit[None, :], atol=1e-6).any(axis=1)
        if split == "validation":
            assert from_full_fit.all(), "validation rows: the encoding fitted on every training row"
        else:
            assert from_full_fit.mean() < 0.05, "training rows: their own, cross-fitted encodings"


def test_a_table_whose_signal_is_a_wide_column_registers_and_serves_unseen_values_at_the_prior(tmp_path, clients):
    frame, which, y = wide_frame(rows=1_200, seed=4)
    frame["sales"] = y
    frame.to_csv(tmp_path / "shops.csv", index=False)
    result = regula(
        "run", "--local", "--data", str(tmp_path / "shops.csv"), "--target", "sales",
        "--runs-dir", str(tmp_path / "runs"), timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    (run_dir,) = run_folders(tmp_path / "runs")
    report = json.loads((run_dir / "report.json").read_text())
    assert report["decision"] == "registered"
    # the shop holds 80% of the variance, half of it in shops beyond the one-hot's 31: the encoding must carry them
    assert report["rounds"][-1]["test_metrics"]["r2"] > 0.65
    best_shop = int(np.argmax(np.bincount(which, weights=y) / np.maximum(np.bincount(which), 1)))
    raw = pd.DataFrame({"shop": [f"s{best_shop:03d}", "s999", "s999"], "x": [0.0, 0.0, 0.0]})
    raw.to_csv(tmp_path / "rows.csv", index=False)
    scored = regula(
        "predict", "--model", str(run_dir), "--data", str(tmp_path / "rows.csv"), "--out", str(tmp_path / "p.csv")
    )
    assert scored.returncode == 0, scored.stderr
    predicted = pd.read_csv(tmp_path / "p.csv")["prediction"].to_numpy()
    assert predicted[1] == predicted[2]
    assert abs(predicted[1] - y.mean()) < 1.0 < predicted[0] - y.mean(), "an unseen shop: about the average"
