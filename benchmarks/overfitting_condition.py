"""How often the team's overfitting condition holds, and what StopOnOverfitting does, on the demo pipeline.

    python benchmarks/overfitting_condition.py [--max-gaps 0.1,0.05]
                                               [--out benchmarks/results/overfitting_condition.json]

For each MaxGap, the local pipeline (`regula run --local`: digits, 300 training rows, up to 3 rounds) runs twice:
StopOnOverfitting=no (the default) and =yes. For every training job it reads the job's own history.json and reports
the epochs in which the condition holds (steps/overfitting.py: validation loss up 3 epochs in a row OR gap above
MaxGap), each part alone, the old AND of both, the first epoch (where the job's notice would go out), the epochs
trained, the best epoch, and whether the job stopped for overfitting; for every run the ladder's decisions and the
registered round's validation quality (the test quality is reported, never used to choose).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import results_file  # noqa: E402  (benchmarks/, the script's own folder: importing it starts the run record)

from pipelines.local.layout import job_log, job_root  # noqa: E402
from pipelines.local.run import run_local  # noqa: E402
from pipelines.settings import Settings  # noqa: E402
from steps.overfitting import RISE_EPOCHS, holds  # noqa: E402


def job_figures(run_dir: Path, round_: int, max_gap: float) -> dict:
    model = job_root(run_dir, f"TrainRound{round_}") / "opt/ml/model"
    history = json.loads((model / "history.json").read_text())
    config = json.loads((model / "config.json").read_text())
    held = [r["epoch"] for r in history if holds(r["gap"], max_gap, r["val_loss_rise_streak"])]
    return {
        "round": round_,
        "epochs": len(history),
        "best_epoch": config["best_epoch"],
        "condition_epochs": len(held),
        "first_epoch": held[0] if held else None,
        "gap_part_epochs": sum(r["gap"] > max_gap for r in history),
        "rise_part_epochs": sum(r["val_loss_rise_streak"] >= RISE_EPOCHS for r in history),
        "old_and_epochs": sum(r["gap"] > max_gap and r["val_loss_rise_streak"] >= RISE_EPOCHS for r in history),
        "stopped_for_overfitting": "(StopOnOverfitting)" in job_log(run_dir, f"TrainRound{round_}").read_text(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-gaps", default="0.1,0.05")
    parser.add_argument("--out", default=str(REPO / "benchmarks/results/overfitting_condition.json"))
    args = parser.parse_args()
    os.environ["REGULA_METRICS"] = "off"  # the condition is read from the jobs' histories; nothing needs sending
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        for max_gap in [float(g) for g in args.max_gaps.split(",")]:
            for stop in ("no", "yes"):
                started = time.perf_counter()
                params = {"MaxGap": str(max_gap), "StopOnOverfitting": stop}
                report = run_local(Settings(), runs_dir=Path(folder), params=params, echo=lambda _: None, cache=False)
                run_dir = max(p for p in Path(folder).iterdir() if p.is_dir() and not p.name.startswith("."))
                registered = [r for r in report["rounds"] if r["decision"] == "register"]
                runs.append(
                    {
                        "max_gap": max_gap,
                        "stop_on_overfitting": stop,
                        "decision": report["decision"],
                        "round_decisions": [r["decision"] for r in report["rounds"]],
                        "registered_validation_quality": registered[0]["validation_quality"] if registered else None,
                        "registered_test_quality": registered[0]["test_quality"] if registered else None,
                        "jobs": [job_figures(run_dir, r["round"], max_gap) for r in report["rounds"]],
                        "seconds": round(time.perf_counter() - started, 1),
                    }
                )
                jobs = runs[-1]["jobs"]
                print(
                    f"MaxGap {max_gap:g} StopOnOverfitting={stop}: {runs[-1]['round_decisions']}; condition held in "
                    f"{sum(j['condition_epochs'] > 0 for j in jobs)} of {len(jobs)} jobs, epochs "
                    f"{[j['epochs'] for j in jobs]}, first {[j['first_epoch'] for j in jobs]}, stopped "
                    f"{[j['stopped_for_overfitting'] for j in jobs]}, validation quality "
                    f"{runs[-1]['registered_validation_quality']}",
                    flush=True,
                )
    results_file.write(args.out, {"runs": runs})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
