"""The retraining ladder: how strong regularization gets in each round, chosen from the gaps measured so far.

One number, the *level*, sets all three regularizers: level 1 is the base values (the Dropout, L1, L2 parameters),
and each regularizer ramps up with the level at its own rate (RAMP). The rates come from
benchmarks/regularizer_effect.py, which raised one regularizer at a time on eight tables:

- dropout 0.1 -> 0.35 -> 0.6 closed the gap on wine, breast cancer and 50 classes (where it also raised quality),
  did nothing on digits and widened it on small noisy or wide sparse tables;
- L1 1e-5 -> 3e-4 moved the gap a little everywhere, 1e-2 closed it everywhere, but on digits and 50 classes by
  collapsing to chance: the strongest knob, with the steepest cost;
- L2 (AdamW's decoupled weight decay: each step shrinks weights by learning rate x L2) did nothing at 0.3 and moved
  the gap only at 10.

All three ramp together and their effects compound: on the demo's digits table, dropout 0.68, L1 2e-3 and L2 12
each alone kept validation quality at 0.91-0.92, all three together dropped it to 0.71. So the rates are such that
the three together at level 100 are about as strong as one of them alone where it closed the gap: level 10 is
dropout 0.41, L1 1e-4, L2 0.32; level 100 is dropout 0.58, L1 1e-3, L2 10.

Round 1 trains at level 1. Every later round reads the earlier rounds' evaluations and picks the next level from
the measured gaps, aiming at TARGET_SHARE of MaxGap rather than far below it (over-regularizing loses quality):
- after one round, the step assumes the gap falls as level^-ASSUMED_ELASTICITY;
- after two or more, it uses the elasticity the last two rounds showed (a secant step in log-log space);
- a step that barely moved the gap is followed by the largest step.
Every step is at least MIN_STEP (strictly stronger) and at most RegularizationGrowth (bounded). After a round that
collapsed (it validated worse than an earlier round beyond the noise, passing the gate or falling below its quality
floor after a better overfitting round: steps/evaluate.select), the next level bisects, in log space, between the
highest level that still overfit and the lowest that collapsed: the one case where a round is weaker than the one
before, never weaker than a round that overfit. The chosen level and
the reason go into the model's config and the evaluation report.
"""

from __future__ import annotations

import math

from steps.defaults import MAX_DROPOUT, MIN_GROWTH

RAMP = {"dropout": 0.25, "l1": 1.0, "l2": 1.5}  # level exponents, from benchmarks/regularizer_effect.py
TARGET_SHARE = 0.8  # aim the next round's gap at this share of MaxGap
# gap ~ level^-ASSUMED_ELASTICITY before any step was measured: about the combined ramp's on digits, and within what
# one regularizer alone moved it (benchmarks/results/regularizer_effect.json). Low, so the first step is a real one.
ASSUMED_ELASTICITY = 0.15
MIN_ELASTICITY = 0.1  # a step that moved the gap less than this did not work: take the largest step next
MIN_STEP = MIN_GROWTH


def strengths(base: dict[str, float], level: float) -> dict[str, float]:
    """Dropout, L1 and L2 at `level` (>= 1); level 1 is `base`. Dropout moves towards MAX_DROPOUT, never reaching
    it; L1 and L2 grow as powers of the level."""
    return {
        "dropout": MAX_DROPOUT - (MAX_DROPOUT - base["dropout"]) * level ** -RAMP["dropout"],
        "l1": base["l1"] * level ** RAMP["l1"],
        "l2": base["l2"] * level ** RAMP["l2"],
    }


def next_level(earlier: list[dict], max_gap: float, growth: float) -> tuple[float, str]:
    """The level of the round after `earlier` (each {"level", "gap"}, oldest first), and why.

    `gap` is the gap that made the round overfit (overfit_gap); `decision` is the round's decision: after a
    `collapsed` round (it lost quality to the regularization: passed the gate validating worse than an earlier round,
    or fell below the floor after a better overfitting one) the level is the geometric mean of the highest level
    that did not collapse and the lowest collapsed level above it."""
    if not earlier:
        return 1.0, "the base regularization"
    collapsed = [r for r in earlier if r.get("decision") == "collapsed"]
    if collapsed:  # a level that closed the gap by losing quality: the next one goes between it and the last overfit
        low = max((r["level"] for r in earlier if r.get("decision") != "collapsed"), default=1.0)
        high = min((r["level"] for r in collapsed if r["level"] > low), default=None)
        if high is not None:
            level = math.sqrt(low * high)
            return level, (
                f"level {high:.3g} lost quality to the regularization (collapsed), level {low:.3g} overfit: "
                f"between them in log space -> {level:.3g}"
            )
    last = earlier[-1]
    target = TARGET_SHARE * max_gap
    overshoot = last["gap"] / target if target > 0 else math.inf
    if len(earlier) == 1:
        elasticity, how = ASSUMED_ELASTICITY, f"assuming the gap falls as level^-{ASSUMED_ELASTICITY:g}"
    else:
        before = earlier[-2]
        moved = math.log(before["gap"] / last["gap"]) if before["gap"] > 0 and last["gap"] > 0 else 0.0
        span = math.log(last["level"] / before["level"]) if last["level"] > before["level"] > 0 else 0.0
        elasticity = moved / span if span > 0 else 0.0  # no measured step: the largest one
        how = f"the last step moved the gap as level^-{elasticity:.2f}"
    if elasticity < MIN_ELASTICITY or not math.isfinite(overshoot):
        step = growth
        why = f"{how}, too little to aim with: the largest step"
    else:
        wanted = overshoot ** (1 / elasticity)
        step = min(max(wanted, MIN_STEP), growth)
        bound = ""
        if wanted > growth:
            bound = " (bounded by RegularizationGrowth)"
        elif wanted < MIN_STEP:
            bound = " (the smallest step)"
        why = f"{how}; aiming at gap {target:.4f}{bound}"
    level = last["level"] * step
    return level, (
        f"gap {last['gap']:.4f} at level {last['level']:.3g} > MaxGap {max_gap:g}: level x{step:.2f} -> {level:.3g}, "
        f"{why}"
    )


def overfit_gap(report: dict) -> float:
    """The gap that made an evaluated round overfit: the gap at its best epoch, or, where that was within MaxGap,
    the largest gap after it (the model went on to memorize the training split)."""
    gap, max_gap = report["generalization_gap"], report["thresholds"]["max_gap"]
    later = gap.get("after_best_epoch")
    return gap["relative"] if gap["relative"] > max_gap or later is None else later


def validate(dropout: float, l1: float, l2: float, growth: float) -> None:
    if not 0.0 <= dropout < MAX_DROPOUT:
        raise ValueError(f"dropout must be in [0, {MAX_DROPOUT}), got {dropout}")
    if l1 < 0:
        raise ValueError(f"l1 must be >= 0, got {l1}")
    if l2 < 0:
        raise ValueError(f"l2 must be >= 0, got {l2}")
    if growth < MIN_STEP:
        raise ValueError(f"regularization growth (the largest step per round) must be >= {MIN_STEP}, got {growth}")
