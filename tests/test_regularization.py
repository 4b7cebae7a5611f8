"""The ladder's escalation (steps/regularization.py): the next round's level from the measured gaps."""

import itertools
import json
import math

import pytest

from steps.regularization import (
    ASSUMED_ELASTICITY,
    MAX_DROPOUT,
    MIN_STEP,
    TARGET_SHARE,
    next_level,
    overfit_gap,
    strengths,
    validate,
)

BASE = {"dropout": 0.1, "l1": 1e-5, "l2": 0.01}


@pytest.mark.parametrize("base", [BASE, {"dropout": 0.0, "l1": 0.0, "l2": 0.0}, {"dropout": 0.5, "l1": 1e-3, "l2": 1}])
def test_a_higher_level_is_stronger_in_every_regularizer_and_dropout_stays_below_its_maximum(base):
    levels = [1, 1.5, 3, 10, 100, 1e4, 1e8]
    rows = [strengths(base, level) for level in levels]
    assert rows[0] == pytest.approx(base)
    for weaker, stronger in itertools.pairwise(rows):
        assert stronger["dropout"] > weaker["dropout"]
        assert stronger["dropout"] < MAX_DROPOUT
        assert stronger["l1"] >= weaker["l1"] and stronger["l2"] >= weaker["l2"]
        if base["l1"]:
            assert stronger["l1"] > weaker["l1"]


def test_round_one_is_the_base():
    assert next_level([], 0.1, 10.0)[0] == 1.0


def test_first_step_aims_at_the_target_with_the_assumed_elasticity():
    gap, max_gap = 0.11, 0.1
    level, why = next_level([{"level": 1.0, "gap": gap}], max_gap, 10.0)
    assert level == pytest.approx((gap / (TARGET_SHARE * max_gap)) ** (1 / ASSUMED_ELASTICITY))
    assert "assuming" in why and f"{level:.3g}" in why


def test_a_step_that_closed_part_of_the_gap_is_followed_by_a_secant_step():
    # the gap fell from 0.2 to 0.14 when the level went 1 -> 4: elasticity log(0.2/0.14)/log(4)
    elasticity = math.log(0.2 / 0.14) / math.log(4)
    earlier = [{"level": 1.0, "gap": 0.2}, {"level": 4.0, "gap": 0.14}]
    level, why = next_level(earlier, 0.1, 100.0)
    assert level == pytest.approx(4.0 * (0.14 / 0.08) ** (1 / elasticity))
    assert f"{elasticity:.2f}" in why


def test_a_step_that_barely_moved_the_gap_is_followed_by_the_largest_step():
    earlier = [{"level": 1.0, "gap": 0.2}, {"level": 3.0, "gap": 0.199}]
    level, why = next_level(earlier, 0.1, 10.0)
    assert level == pytest.approx(30.0)
    assert "largest step" in why


@pytest.mark.parametrize("gap", [0.1000001, 0.5, 50.0])
def test_every_step_is_bounded_and_strictly_stronger(gap):
    for growth in (MIN_STEP, 2.0, 10.0):
        level, _ = next_level([{"level": 2.0, "gap": gap}], 0.1, growth)
        assert 2.0 * MIN_STEP - 1e-9 <= level <= 2.0 * growth + 1e-9


def test_max_gap_zero_takes_the_largest_step():
    assert next_level([{"level": 1.0, "gap": 0.05}], 0.0, 10.0)[0] == pytest.approx(10.0)


def test_overfit_gap_is_the_best_epoch_gap_or_the_memorized_one():
    report = {"thresholds": {"max_gap": 0.1}, "generalization_gap": {"relative": 0.15, "after_best_epoch": 0.4}}
    assert overfit_gap(report) == 0.15
    report["generalization_gap"]["relative"] = 0.05  # overfit because it memorized after the best epoch
    assert overfit_gap(report) == 0.4


@pytest.mark.parametrize(
    "args,message",
    [
        ((1.0, 0, 0, 2), "dropout"),
        ((-0.1, 0, 0, 2), "dropout"),
        ((0.1, -1e-5, 0, 2), "l1"),
        ((0.1, 0, -1, 2), "l2"),
        ((0.1, 0, 0, 1.2), "growth"),
    ],
)
def test_invalid_values_are_refused(args, message):
    with pytest.raises(ValueError, match=message):
        validate(*args)


def test_two_rounds_at_the_same_level_take_the_largest_step_not_a_division_by_zero():
    level, why = next_level([{"level": 2.0, "gap": 0.3}, {"level": 2.0, "gap": 0.2}], 0.1, 10.0)
    assert level == pytest.approx(20.0) and "largest step" in why


def test_an_l2_that_would_make_adamw_diverge_is_bounded_and_training_stays_finite(splits, tmp_path):
    # lr 1e-3 x L2 5000 = 5: AdamW's decay would multiply every weight by -4 each step (NaN within a few epochs)
    from helpers import run_training

    from steps.train import MAX_DECAY_PER_STEP

    result = run_training(splits, tmp_path / "model", "--l2", "5000", "--max_epochs", "6", "--learning_rate", "1e-3")
    assert result.returncode == 0, result.stderr
    assert "train: L2 5e+03 bounded to 500: AdamW's decay (lr 0.001 x L2) at most 0.5 per step" in result.stdout
    assert "no longer a number" not in result.stdout
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["regularization"]["l2"] == pytest.approx(MAX_DECAY_PER_STEP / 1e-3)
    history = json.loads((tmp_path / "model" / "history.json").read_text())
    assert len(history) == 6 and all(math.isfinite(r["train_loss"]) and math.isfinite(r["val_loss"]) for r in history)


def test_an_ordinary_l2_is_not_bounded(splits, tmp_path):
    from helpers import run_training

    result = run_training(splits, tmp_path / "model", "--l2", "10", "--max_epochs", "2")
    assert result.returncode == 0, result.stderr
    assert "bounded" not in result.stdout
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["regularization"]["l2"] == 10
