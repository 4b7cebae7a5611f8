import itertools

import pytest

from steps.regularization import MAX_DROPOUT, schedule


@pytest.mark.parametrize("dropout,l1,l2,growth", [(0.1, 1e-5, 0.01, 10.0), (0.0, 0.0, 0.0, 1.5), (0.5, 1e-3, 1.0, 2.0)])
def test_each_round_is_strictly_stronger(dropout, l1, l2, growth):
    rounds = [schedule(dropout, l1, l2, growth, r) for r in range(1, 8)]
    assert rounds[0] == {"dropout": dropout, "l1": l1, "l2": l2}
    for weaker, stronger in itertools.pairwise(rounds):
        assert stronger["dropout"] > weaker["dropout"]
        assert stronger["dropout"] < MAX_DROPOUT
        assert stronger["l1"] >= weaker["l1"] and stronger["l2"] >= weaker["l2"]
        if l1:
            assert stronger["l1"] == pytest.approx(weaker["l1"] * growth)
        if l2:
            assert stronger["l2"] == pytest.approx(weaker["l2"] * growth)


@pytest.mark.parametrize(
    "args,message",
    [
        ((1.0, 0, 0, 2, 1), "dropout"),
        ((-0.1, 0, 0, 2, 1), "dropout"),
        ((0.1, -1e-5, 0, 2, 1), "l1"),
        ((0.1, 0, -1, 2, 1), "l2"),
        ((0.1, 0, 0, 1.0, 1), "growth"),
        ((0.1, 0, 0, 2, 0), "round"),
    ],
)
def test_invalid_values_are_refused(args, message):
    with pytest.raises(ValueError, match=message):
        schedule(*args)
