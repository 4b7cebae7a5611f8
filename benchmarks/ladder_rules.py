"""The ladder's borderline rule against registering the borderline round at once, on test, over split seeds.

The rule (steps/evaluate.py `select` before `85fabd5`, which dropped it on this script's results): the first round
that passes the gate with its gap above MaxGap but within one standard error of it is `borderline`; when a round is
left, a stronger round is trained too and the better accepted round by validation is registered. Its alternative
registers the borderline round at once (one round less). The better of two rounds by validation always wins on that
validation (by construction: benchmarks/README.md, protocol 6), so the rule is judged on the test split of the
tuning tables (choices may look at them), over several split seeds, with its cost (the rounds and seconds after the
borderline round).

Each run is the whole local pipeline at the product's defaults (real_tables.run_regula; no baselines) on one table
of real_tables' tuning partition, and the demo (digits at MaxTrainRows=300, as `regula run --local` runs it). The
pipeline splits with preprocess.py's fixed seed (42; no pipeline parameter sets it), so split seed s shuffles the
table's rows with seed s before its CSV is written: the same split then draws another train/validation/test
partition (its test rows are not the ones earlier choices looked at). Every round is recorded: its validation
quality, gap, decision, test quality (the gate's metric: balanced accuracy or R2) and seconds. The alternative is
the same run cut at its borderline round (the rounds up to it are the same), so for every run where a round was
borderline: the registered round's test quality against the borderline round's, in points (100x the metric), and
the seconds of the rounds after it. A run that ended without a registered model is a miss for the rule (the
alternative would have registered the borderline round).

The decision, written before the run: the rule stays when it is ahead on test on average beyond the spread of
the differences across runs and beyond the tolerance (the mean above their standard deviation and above
real_tables' tolerance: 1 point of balanced accuracy, 2 of R2), or when it is behind on no run by more than the
tolerance and ahead on at least one; otherwise the borderline round is registered at once (the rule costs a round
and gains nothing measurable). A run without a registered model after a borderline round is behind. A rule that
never fired is not judged.

    python benchmarks/ladder_rules.py [--tables demo,iris,...] [--split-seeds 1,2,3] [--jobs 2] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_tables  # noqa: E402
import results_file  # noqa: E402  (benchmarks/, the script's own folder, is on the path)

from steps import quality  # noqa: E402  (real_tables puts the repository on the path)

REPO = real_tables.REPO
DEMO_MAX_TRAIN_ROWS = "300"  # pipelines/local/run.py's DEMO_MAX_TRAIN_ROWS
TABLES = ["demo", *real_tables.TUNING]  # the default: the tuning partition and the demo (as train_options.py)
ROUND_STEP = re.compile(r"^(Train|Evaluate)Round(\d+)$")  # a round's own steps (its Register step runs either way)


def table_of(name: str) -> tuple[pd.DataFrame, str, dict[str, str]]:
    """(frame, target, the run's parameters over the defaults)."""
    if name == "demo":
        frame, target = real_tables.TABLES["digits"]()
        return frame, target, {"MaxTrainRows": DEMO_MAX_TRAIN_ROWS}
    frame, target = real_tables.TABLES[name]()
    return real_tables.capped(frame, target)[0], target, {}


def run_one(name: str, split_seed: int, workdir: Path, rounds: int = real_tables.Settings().rounds) -> dict:
    """One table at one split seed through the whole local pipeline: every round, and the run's outcome."""
    frame, target, params = table_of(name)
    frame = frame.sample(frac=1.0, random_state=split_seed).reset_index(drop=True)  # another split of the same rows
    csv = workdir / f"{name}-{split_seed}" / f"{name}.csv"
    csv.parent.mkdir(parents=True)
    frame.to_csv(csv, index=False)
    report = real_tables.run_regula(csv, target, csv.parent / "runs", params, rounds)
    record = {"table": name, "split_seed": split_seed, "rows": len(frame), "params": params, "rounds_rendered": rounds}
    if "error" in report:
        return {**record, "outcome": "crashed", "registered_round": None, "error": report["error"], "rounds": []}
    seconds: dict[int, float] = {}
    for step in report["steps"]:
        match = ROUND_STEP.match(step["name"])
        if match:
            seconds[int(match[2])] = seconds.get(int(match[2]), 0.0) + step.get("seconds", 0.0)
    rounds = [
        {
            "round": r["round"],
            "metric": r["quality_metric"],
            "validation": r["validation_quality"],
            "gap": r["generalization_gap"],
            "gap_se": r["gap_standard_error"],
            "decision": r["decision"],
            "test": r["test_quality"],
            "epochs": r["epochs"],
            "seconds": round(seconds.get(r["round"], 0.0), 1),
        }
        for r in report["rounds"]
    ]
    registered = report["decision"] == "registered"
    last = report["rounds"][-1] if report["rounds"] else {}
    return {
        **record,
        "outcome": report["decision"],
        "registered_round": (last.get("selected_round") or last.get("round")) if registered else None,
        "failure_reason": report["failure_reason"],
        "seconds": round(report["seconds"], 1),
        "rounds": rounds,
    }


def counterfactual(run: dict) -> dict | None:
    """Where a round was borderline: the registered round's test quality against the borderline round's (points:
    100x the metric; None when the run registered nothing, a miss), and what the rounds after it cost."""
    borderline = next((r for r in run["rounds"] if r["decision"] == "borderline"), None)
    if borderline is None:
        return None
    kept = next((r for r in run["rounds"] if r["round"] == run["registered_round"]), None)
    later = [r for r in run["rounds"] if r["round"] > borderline["round"]]
    tolerance = real_tables.R2_TOLERANCE if borderline["metric"] == "r2" else real_tables.ACCURACY_TOLERANCE
    return {
        "table": run["table"],
        "split_seed": run["split_seed"],
        "metric": borderline["metric"],
        "borderline_round": borderline["round"],
        "registered_round": run["registered_round"],
        "borderline_test": borderline["test"],
        "registered_test": kept["test"] if kept else None,
        "points": round(100 * (kept["test"] - borderline["test"]), 2) if kept else None,
        "tolerance_points": round(100 * tolerance, 2),
        "extra_rounds": len(later),
        "extra_seconds": round(sum(r["seconds"] for r in later), 1),
    }


def summarize(runs: list[dict]) -> dict:
    """How often the rule fired and what it did on test, over the runs where it fired; a miss counts as behind."""
    fired = [c for c in map(counterfactual, runs) if c is not None]
    points = [c["points"] for c in fired if c["points"] is not None]
    ahead = sum(c["points"] is not None and c["points"] > c["tolerance_points"] for c in fired)
    behind = sum(c["points"] is None or c["points"] < -c["tolerance_points"] for c in fired)
    by_table: dict[str, list[float]] = {}
    for c in fired:
        if c["points"] is not None:
            by_table.setdefault(c["table"], []).append(c["points"])
    return {
        "runs": len(runs),
        "crashed": sum(r["outcome"] == "crashed" for r in runs),
        "not_registered": [
            f"{r['table']}/{r['split_seed']}: {r['outcome']}" for r in runs if not r["registered_round"]
        ],
        "fired": len(fired),
        "share_fired": round(len(fired) / len(runs), 3) if runs else None,
        "misses_after_borderline": sum(c["points"] is None for c in fired),
        "mean_points": round(float(np.mean(points)), 2) if points else None,
        "spread_points": round(float(np.std(points)), 2) if points else None,
        "ahead": ahead,
        "behind": behind,
        "same_round": sum(c["registered_round"] == c["borderline_round"] for c in fired),
        "extra_rounds": sum(c["extra_rounds"] for c in fired),
        "extra_seconds": round(sum(c["extra_seconds"] for c in fired), 1),
        "run_seconds": round(sum(r.get("seconds", 0.0) for r in runs), 1),
        "points_by_table": {t: round(float(np.mean(p)), 2) for t, p in by_table.items()},
        "counterfactuals": fired,
    }


def decide(summary: dict) -> dict:
    """The rule written before the run (the module's docstring): keep the borderline rule or register at once."""
    if not summary["fired"]:
        return {"keep": "borderline rule", "why": "it never fired: nothing to judge, and it cost nothing"}
    mean, spread = summary["mean_points"], summary["spread_points"]
    tolerance = max(c["tolerance_points"] for c in summary["counterfactuals"])
    if mean is not None and mean > max(spread, tolerance) and not summary["misses_after_borderline"]:
        why = f"ahead on test by {mean:+.2f} points, beyond the spread {spread} and the tolerance {tolerance}"
        return {"keep": "borderline rule", "why": why}
    if summary["behind"] == 0 and summary["ahead"] >= 1:
        return {"keep": "borderline rule", "why": f"behind on no run, ahead on {summary['ahead']}"}
    return {
        "keep": "register the borderline round at once",
        "why": f"mean {mean} points (spread {spread}), ahead on {summary['ahead']}, behind on {summary['behind']} "
        f"of {summary['fired']} runs where it fired, for {summary['extra_rounds']} extra rounds "
        f"({summary['extra_seconds']} s)",
    }


def lines(summary: dict) -> list[str]:
    out = ["| table | split seed | borderline round: test | registered round: test | points | extra s |",
           "|---|---|---|---|---|---|"]  # fmt: skip
    for c in summary["counterfactuals"]:
        registered = "miss" if c["registered_test"] is None else f"r{c['registered_round']}: {c['registered_test']:.4f}"
        out.append(
            f"| {c['table']} | {c['split_seed']} | r{c['borderline_round']}: {c['borderline_test']:.4f} | {registered} "
            f"| {c['points']} | {c['extra_seconds']} |"
        )
    return out


def tables_and_seeds(tables: str, split_seeds: str) -> tuple[list[str], list[int]]:
    """--tables and --split-seeds, checked."""
    names = tables.split(",")
    unknown = sorted(set(names) - {"demo", *real_tables.TABLES})
    if unknown:
        raise SystemExit(f"--tables: unknown {', '.join(unknown)}")
    return names, [int(s) for s in split_seeds.split(",")]


def runs_over(tables: list[str], split_seeds: list[int], jobs: int, rounds: int = real_tables.Settings().rounds):
    """Each table at each split seed through run_one, `jobs` at once, the largest tables first. After each run ends:
    (the runs so far in table and seed order, whether all have ended), with a line on standard error."""
    todo = sorted(((t, s) for t in tables for s in split_seeds), key=lambda job: -len(table_of(job[0])[0]))
    runs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="regula-ladder-") as tmp, ProcessPoolExecutor(jobs) as pool:
        futures = [pool.submit(run_one, t, s, Path(tmp), rounds) for t, s in todo]
        for future in as_completed(futures):
            r = future.result()
            runs.append(r)
            decisions = " ".join(x["decision"] for x in r["rounds"])
            print(f"{r['table']}/{r['split_seed']}: {r['outcome']} [{decisions}] ({len(runs)} of {len(todo)})",
                  file=sys.stderr, flush=True)  # fmt: skip
            runs.sort(key=lambda x: (tables.index(x["table"]), x["split_seed"]))
            yield runs, len(runs) == len(todo)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", default=",".join(TABLES), help=f"default: {','.join(TABLES)}")
    parser.add_argument("--split-seeds", default="1,2,3", help="one shuffle of each table's rows each")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once, each in its own process")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "borderline_rule.json")
    args = parser.parse_args()
    if "borderline" not in quality.RETRAIN:  # the product no longer has the rule: every run would say "never fired"
        raise SystemExit("the borderline rule was dropped in 85fabd5: check out a commit before it to measure it")
    tables, split_seeds = tables_and_seeds(args.tables, args.split_seeds)
    start = time.perf_counter()
    for runs, complete in runs_over(tables, split_seeds, args.jobs):
        summary = summarize(runs)
        results_file.write(
            args.out,
            {
                "tables": tables,
                "split_seeds": split_seeds,
                "jobs": args.jobs,
                "complete": complete,
                "seconds": round(time.perf_counter() - start, 1),
                "decision": decide(summary) if complete else None,
                "summary": summary,
                "runs": runs,
            },  # fmt: skip
        )
    summary = summarize(runs)
    print("\n".join(lines(summary)))
    print({k: v for k, v in summary.items() if k != "counterfactuals"})
    print(decide(summary))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
