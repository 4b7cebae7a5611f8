"""The retraining ladder: how strong regularization gets in each round.

Round 1 uses the base values. Every later round multiplies the L1 and L2
strengths by `growth` and moves dropout a fixed fraction of the way towards
`MAX_DROPOUT`, so each round is strictly stronger than the one before it
(for growth > 1). Pipeline variables cannot do arithmetic, so the pipeline
passes the base values, the growth and the round number, and the training
script calls `schedule` itself.
"""

from __future__ import annotations

from defaults import MAX_DROPOUT


def schedule(dropout: float, l1: float, l2: float, growth: float, round_: int) -> dict[str, float]:
    """Effective regularization for `round_` (1-based)."""
    validate(dropout, l1, l2, growth, round_)
    steps = round_ - 1
    towards_max = 1.0 - growth**-steps  # 0 in round 1, approaches 1 in late rounds
    return {
        "dropout": dropout + (MAX_DROPOUT - dropout) * towards_max,
        "l1": l1 * growth**steps,
        "l2": l2 * growth**steps,
    }


def validate(dropout: float, l1: float, l2: float, growth: float, round_: int) -> None:
    if not 0.0 <= dropout < MAX_DROPOUT:
        raise ValueError(f"dropout must be in [0, {MAX_DROPOUT}), got {dropout}")
    if l1 < 0:
        raise ValueError(f"l1 must be >= 0, got {l1}")
    if l2 < 0:
        raise ValueError(f"l2 must be >= 0, got {l2}")
    if growth <= 1.0:
        raise ValueError(f"regularization growth must be > 1 so each round is stronger, got {growth}")
    if round_ < 1:
        raise ValueError(f"round must be >= 1, got {round_}")
