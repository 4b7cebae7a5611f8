"""How many rounds the ladder should have: the default (Settings.rounds) against more, on the tuning tables.

The ladder is unrolled when the definition is rendered (`--rounds`, default 3). More rounds change nothing in a run
that ends within the default's rounds (the same rounds, the same decisions): they only continue a run that would
have failed at its last round (StillOverfitting, UnderfitRoundK), with a stronger round or, after a collapse, a
bisecting one. So each table at each split seed runs once with `--more` rounds (ladder_rules.run_one: the whole
local pipeline at the product's defaults, the table's rows shuffled by the split seed so that the pipeline's fixed
split draws another partition), and the run with the default's rounds is the same run cut at that round.

Where the cut run fails and the longer one goes on, the longer run either registers a round (a rescue) or fails
too. A rescue is compared, on the test rows of these tuning tables (both sides were picked by validation, so test
judges), with the round the cut run's failure names as its best (what `RegisterBestCandidate=yes` registers for
review), in points (100x balanced accuracy or R2), and on validation too.

The decision, written before the run: more rounds become the default when they rescue at least one run and the
rescued registrations are on average not behind the named candidates on test by more than real_tables' tolerance
(1 point of balanced accuracy, 2 of R2), with no rescue behind by more than three times it; otherwise the default
stays (a registered model that tests worse than the failure's candidate is a silent mistake, not a rescue). The
extra rounds' seconds are reported beside it.

    python benchmarks/ladder_rounds.py [--more 5] [--tables demo,iris,...] [--split-seeds 1,2,3,4,5] [--jobs 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ladder_rules  # noqa: E402
import real_tables  # noqa: E402
import results_file  # noqa: E402  (benchmarks/, the script's own folder, is on the path)

REPO = real_tables.REPO
DEFAULT_ROUNDS = real_tables.Settings().rounds


def compare(run: dict, rounds: int) -> dict | None:
    """Where the run cut at `rounds` would have failed (it registered no round within them) and the longer one went
    on: what the extra rounds did, against the best of the first `rounds` by validation (the failure's candidate)."""
    registered_within = run["registered_round"] is not None and run["registered_round"] <= rounds
    if registered_within or len(run["rounds"]) <= rounds:
        return None
    by_round = {r["round"]: r for r in run["rounds"]}
    candidate = max((r for r in run["rounds"] if r["round"] <= rounds), key=lambda r: r["validation"])
    later = [r for r in run["rounds"] if r["round"] > rounds]
    registered = by_round.get(run["registered_round"]) if run["registered_round"] else None
    tolerance = real_tables.R2_TOLERANCE if candidate["metric"] == "r2" else real_tables.ACCURACY_TOLERANCE
    return {
        "table": run["table"],
        "split_seed": run["split_seed"],
        "metric": candidate["metric"],
        "failed_at": rounds,
        "candidate_round": candidate["round"],
        "candidate_validation": candidate["validation"],
        "candidate_test": candidate["test"],
        "registered_round": run["registered_round"],
        "registered_validation": registered["validation"] if registered else None,
        "registered_test": registered["test"] if registered else None,
        "test_points": round(100 * (registered["test"] - candidate["test"]), 2) if registered else None,
        "validation_points": round(100 * (registered["validation"] - candidate["validation"]), 2)
        if registered
        else None,
        "tolerance_points": round(100 * tolerance, 2),
        "extra_rounds": len(later),
        "extra_seconds": round(sum(r["seconds"] for r in later), 1),
        "decisions": [r["decision"] for r in run["rounds"]],
    }


def summarize(runs: list[dict], rounds: int) -> dict:
    went_on = [c for c in (compare(r, rounds) for r in runs) if c is not None]
    rescues = [c for c in went_on if c["registered_round"] is not None]
    points = [c["test_points"] for c in rescues]
    return {
        "runs": len(runs),
        "crashed": sum(r["outcome"] == "crashed" for r in runs),
        "failed_at_default": len(went_on),
        "rescued": len(rescues),
        "still_failed": [f"{c['table']}/{c['split_seed']}" for c in went_on if c["registered_round"] is None],
        "mean_test_points": round(float(np.mean(points)), 2) if points else None,
        "spread_test_points": round(float(np.std(points)), 2) if points else None,
        "mean_validation_points": round(float(np.mean([c["validation_points"] for c in rescues])), 2)
        if rescues
        else None,
        "behind_beyond_tolerance": sum(c["test_points"] < -c["tolerance_points"] for c in rescues),
        "extra_seconds": round(sum(c["extra_seconds"] for c in went_on), 1),
        "run_seconds": round(sum(r.get("seconds", 0.0) for r in runs), 1),
        "comparisons": went_on,
    }


def decide(summary: dict, more: int) -> dict:
    """The rule written before the run (the module's docstring)."""
    rescues = [c for c in summary["comparisons"] if c["registered_round"] is not None]
    if not rescues:
        return {"rounds": DEFAULT_ROUNDS, "why": f"{more} rounds rescued no run"}
    tolerance = max(c["tolerance_points"] for c in rescues)
    worst = min(c["test_points"] for c in rescues)
    mean = summary["mean_test_points"]
    if mean >= -tolerance and worst >= -3 * tolerance:
        why = f"{len(rescues)} rescued, {mean:+.2f} points on test against the candidates (worst {worst:+.2f})"
        return {"rounds": more, "why": why}
    return {
        "rounds": DEFAULT_ROUNDS,
        "why": f"{len(rescues)} rescued, but {mean:+.2f} points on test against the failures' candidates on average "
        f"(worst {worst:+.2f}, tolerance {tolerance}): the extra rounds register worse models than the candidates",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--more", type=int, default=5, help="the rounds to compare with the default's")
    parser.add_argument("--tables", default=",".join(ladder_rules.TABLES), help="default: the demo and tuning tables")
    parser.add_argument("--split-seeds", default="1,2,3,4,5", help="one shuffle of each table's rows each")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once, each in its own process")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "ladder_rounds.json")
    args = parser.parse_args()
    if args.more <= DEFAULT_ROUNDS:
        raise SystemExit(f"--more must be above the default's {DEFAULT_ROUNDS} rounds")
    tables, split_seeds = ladder_rules.tables_and_seeds(args.tables, args.split_seeds)
    start = time.perf_counter()
    for runs, complete in ladder_rules.runs_over(tables, split_seeds, args.jobs, args.more):
        summary = summarize(runs, DEFAULT_ROUNDS)
        results_file.write(
            args.out,
            {
                "default_rounds": DEFAULT_ROUNDS,
                "more": args.more,
                "tables": tables,
                "split_seeds": split_seeds,
                "jobs": args.jobs,
                "complete": complete,
                "seconds": round(time.perf_counter() - start, 1),
                "decision": decide(summary, args.more) if complete else None,
                "summary": summary,
                "runs": runs,
            },
        )
    summary = summarize(runs, DEFAULT_ROUNDS)
    for c in summary["comparisons"]:
        print(c)
    print({k: v for k, v in summary.items() if k != "comparisons"})
    print(decide(summary, args.more))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
