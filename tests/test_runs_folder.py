"""The local runs folder as a user meets it: an interrupted run leaves a report saying so (and predict reads it),
`regula runs list` says what each folder holds, `regula runs clean` removes old ones and nothing else."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from helpers import REPO, regula_here


def test_ctrl_c_leaves_a_report_saying_interrupted_that_predict_and_runs_understand(tmp_path, aws):
    runs = tmp_path / "runs"
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "run", "--local", "--runs-dir", str(runs)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # without PYTHONUNBUFFERED (CI has none): the CLI itself must write its progress a line at a time into a pipe
        env={**{k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}, "PYTHONPATH": str(REPO)},
        # as a terminal's foreground process: a shell that started pytest in the background (`pytest &`, nohup in a
        # script) passes SIGINT on as ignored, and Python then leaves it ignored, so the Ctrl-C would do nothing
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    output = []
    training = False
    for line in process.stdout:
        output.append(line)
        training = training or line.startswith("-> TrainRound1")
        if training and line.startswith("   | train:"):  # the job's own first line: the training job runs
            process.send_signal(signal.SIGINT)  # Ctrl-C, while the first training job runs
            break
    output += process.stdout.readlines()
    assert process.wait(timeout=120) == 130, "".join(output)
    [run_dir] = [p for p in runs.iterdir() if not p.name.startswith(".")]
    report = json.loads((run_dir / "report.json").read_text())
    assert (report["status"], report["decision"], report["failed_step"]) == (
        "Interrupted",
        "interrupted",
        "TrainRound1",
    )
    assert report["failure_reason"] == "interrupted (Ctrl-C or SIGTERM) during TrainRound1: the run did not finish"
    assert [(s["name"], s["status"]) for s in report["steps"]] == [
        ("Preprocess", "Succeeded"),
        ("TrainRound1", "Interrupted"),
    ]
    assert f"interrupted during TrainRound1: {run_dir}/report.json says so\n" in output

    (tmp_path / "rows.csv").write_text("a\n1\n")
    predicted = regula_here("predict", "--model", str(run_dir), "--data", str(tmp_path / "rows.csv"))
    assert (predicted.returncode, predicted.stderr.strip()) == (
        4,  # no model there: NOT_FOUND
        f"regula: error: run {run_dir.name} was interrupted (Ctrl-C or SIGTERM) during TrainRound1: the run did not "
        "finish; it registered no model",
    )

    # a run killed outright leaves no report: listed as unfinished (or as possibly running, when recent)
    killed = runs / "20260101-000000"
    (killed / "logs").mkdir(parents=True)
    (killed / "logs" / "Preprocess.log").write_text("preprocess: read ...\n")
    day_ago = time.time() - 86400
    for path in (killed / "logs" / "Preprocess.log", killed / "logs", killed):
        os.utime(path, (day_ago, day_ago))
    (runs / "notes").mkdir()  # not a run folder: never listed nor removed
    listed = regula_here("runs", "list", "--runs-dir", str(runs))
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[1].split()[:3] == ["20260101-000000", "unfinished", "-"]
    assert lines[2].split()[:6] == [run_dir.name, "Interrupted", "interrupted", "at", "TrainRound1", "0"]
    assert lines[2].endswith("demo (digits) (target)")
    assert lines[3].startswith("2 runs, ")

    dry = regula_here("runs", "clean", "--runs-dir", str(runs), "--keep", "1", "--dry-run")
    assert dry.stdout.splitlines()[0].startswith(f"would remove {killed} (unfinished, ")
    assert killed.exists()
    cleaned = regula_here("runs", "clean", "--runs-dir", str(runs), "--keep", "0")
    assert cleaned.returncode == 0
    assert cleaned.stdout.splitlines()[-1].startswith("2 of 2 runs, freed ")
    assert sorted(p.name for p in runs.iterdir() if not p.name.startswith(".")) == ["notes"]
