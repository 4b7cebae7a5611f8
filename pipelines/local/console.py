"""What a local run prints, in plain words: one line per round (its regularization, its gap against MaxGap with the
gap's standard error, its validation quality against the baseline, the decision and why, short), the conditions'
outcomes as what the pipeline does next, long lines of the jobs folded (`-v` shows every line as printed), and a
closing block with the next steps.

A local run (pipelines/local/run.py) gives the runner `condition_line`, `step_line` and `job_output` (the runner
knows no step names); the names and the evaluation file are pipelines/local/layout.py's, the decisions
steps/quality.py's."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from pipelines.local import layout as run_layout
from steps.quality import WENT_TOO_FAR

FOLD_WIDTH = 160  # a job's list longer than this is folded unless --verbose
FOLD_ITEMS = 8  # a comma-separated list keeps this many items
ROUND_STEP = re.compile(r"(?P<kind>EvaluateRound|CheckRound|OverfitsRound|AcceptedRound)(?P<round>\d+)")
# lines said otherwise unless --verbose: the evaluation's summary (the round line says it shorter), a job's ERROR
# line (the step's failure reason, which the run's summary prints) and training's overfitting notice (said after the
# round line, with the round's decision: `notice_line`); all stay in the job's log
SAID_ELSEWHERE = re.compile(r"^   \| (evaluate: round \d+: |ERROR |train: Training overfits .*\(notice sent\)$)")
# the line steps/overfitting.py's announce prints when the notice went out
NOTICE = re.compile(r"^train: Training overfits in pipeline .*, epoch (?P<epoch>\d+): (?P<why>.*)\. \(notice sent\)$")


def fold(line: str, width: int = FOLD_WIDTH) -> str:
    """A long line made short: a long list of names (comma-separated, no spaces in them) keeps its first names and
    says how many are left out; any other line longer than twice `width` is cut."""
    if len(line) <= width:
        return line
    head, sep, items = line.rpartition(": ")
    parts = items.split(", ")
    if sep and len(parts) > FOLD_ITEMS and not any(" " in p for p in parts):
        return f"{head}{sep}{', '.join(parts[:FOLD_ITEMS])}, ... ({len(parts) - FOLD_ITEMS} more; -v shows all)"
    if len(line) > 2 * width:
        return line[: 2 * width].rstrip() + " ... (-v shows all)"
    return line


def job_output(echo: Callable[[str], None], verbose: bool) -> Callable[[str], None]:
    """The echo for the jobs' lines: every line as printed with --verbose, else long ones folded and the
    evaluation's summary left to the round line."""
    if verbose:
        return echo

    def shown(line: str) -> None:
        if not SAID_ELSEWHERE.match(line):
            echo(fold(line))

    return shown


def read_evaluation(run_dir: Path, round_: int) -> dict | None:
    path = run_layout.round_evaluation(run_dir, round_)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def short_reason(e: dict) -> str:
    """The decision's reason, in a few words (the evaluation's `reason` says it in full)."""
    decision = e["decision"]
    gap, se = e["generalization_gap"]["relative"], e["generalization_gap"].get("standard_error") or 0.0
    max_gap = e["thresholds"]["max_gap"]
    linear = e.get("reference") or {}  # the linear reference, fitted when the gap was above MaxGap
    if decision == "register" and e["thresholds"].get("gap_limit", max_gap) > max_gap:
        return f"above MaxGap, within the noise of the linear reference's gap {linear.get('gap', float('nan')):.3f}"
    if decision == "register":
        return "within MaxGap" if gap <= max_gap else "within MaxGap + 1 standard error"
    if decision == "overfit" and linear:
        return overfit_beside_reference(e, linear)
    if decision == "overfit":
        return f"{(gap - max_gap) / se:.1f} standard errors above MaxGap" if se else "above MaxGap"
    if decision == "collapsed":
        return "validates worse than an earlier round: the next level goes between the last overfitting one and it"
    if decision == "underfit" and WENT_TOO_FAR in e.get("reason", ""):
        return "lost the quality of an earlier overfitting round to the regularization, with no round left between"
    if decision == "underfit":
        return "too close to the baseline: more regularization cannot help"
    if decision == "candidate":
        return f"no round accepted; round {(e.get('selected') or {}).get('round')} is registered for review only"
    return decision


# why the linear reference did not excuse an overfitting round (evaluation.json's reference.verdict, decided by
# steps/quality.reference_verdict), in a few words
BESIDE_REFERENCE = {
    "no_signal": "above MaxGap; the linear reference finds no signal either, so its gap excuses nothing",
    "no_evidence": "above MaxGap; the linear reference's gap {gap:.3f} is within it, give or take its noise",
    "overfits_more": "above MaxGap and the linear reference's {gap:.3f}",
    "under_floor": "within the linear reference's gap {gap:.3f} but under the quality floor",
    "no_better": "within the linear reference's gap {gap:.3f} but validates worse than it",
}


def overfit_beside_reference(e: dict, linear: dict) -> str:
    """Why the linear reference (steps/reference.py) did not excuse an overfitting round's gap, in a few words."""
    said = BESIDE_REFERENCE.get(
        linear.get("verdict"), "above MaxGap; the linear reference's gap {gap:.3f} excuses it not"
    )
    return said.format(gap=linear["gap"])


def round_line(e: dict) -> str:
    """One round: what it trained with, what it measured, what was decided and why."""
    reg, gap, quality = e["regularization"], e["generalization_gap"], e["quality"]
    se = gap.get("standard_error") or 0.0
    relation = "<=" if gap["relative"] <= e["thresholds"]["max_gap"] else ">"
    return (
        f"round {e['round']}: dropout {reg['dropout']:.2f} L1 {reg['l1']:.0e} L2 {reg['l2']:.2g} | "
        f"gap {gap['relative']:.3f} ± {se:.3f} {relation} MaxGap {e['thresholds']['max_gap']:g} | "
        f"validation {quality['metric']} {quality['validation']:.3f} vs baseline {quality['baseline']:.3f} | "
        f"{e['decision']}: {short_reason(e)}"
    )


def step_line(run_dir: Path, name: str) -> str | None:
    """After a step that succeeded: the round line of an evaluation step; None after any other."""
    match = ROUND_STEP.fullmatch(name)
    if not match or not name.startswith("Evaluate"):
        return None
    evaluation = read_evaluation(run_dir, int(match["round"]))
    if not evaluation:
        return None
    notice = notice_line(run_dir, evaluation)
    return round_line(evaluation) + (f"\n{notice}" if notice else "")


def notice_line(run_dir: Path, e: dict) -> str | None:
    """The overfitting notice the round's training sent, said with the round's decision; None when it sent none.
    The notice's condition (in any one epoch, the validation loss up 3 epochs in a row, or the gap above MaxGap)
    is looser than the decision, made on the model training kept (docs/alerts.md): an accepted round may have sent
    one, and the line says so rather than leave "Training overfits" standing over an accepted round."""
    try:
        log = run_layout.job_log(run_dir, run_layout.TRAIN_ROUND.format(e["round"])).read_text(errors="replace")
    except OSError:
        return None
    sent = next((m for m in map(NOTICE.match, log.splitlines()) if m), None)
    if sent is None:
        return None
    said = f"   overfitting notice sent during training (epoch {sent['epoch']}: {sent['why']})"
    if e["decision"] == "register":
        return (
            f"{said}; the round is still accepted, {short_reason(e)}: the notice's condition, met in one epoch, is "
            "looser than the decision (docs/alerts.md)"
        )
    return f"{said}; the round is {e['decision']}"


def condition_line(run_dir: Path, name: str, outcome: str, verbose: bool) -> str | None:
    """What a condition's outcome means for the run; None where the next line says it."""
    match = ROUND_STEP.fullmatch(name)
    e = read_evaluation(run_dir, int(match["round"])) if match else None
    raw = f" ({name}: {outcome})" if verbose else ""
    if e is None:
        return f"?  {name}: {outcome}"
    round_, decision, kind, yes = e["round"], e["decision"], match["kind"], outcome == "True"
    selected = (e.get("selected") or {}).get("round") or round_
    if kind == "CheckRound":
        if yes and decision == "candidate":
            return f"=> round {round_} not accepted: registering round {selected} for review{raw}"
        if yes:
            return f"=> round {round_} accepted: registering it{raw}"
        return f"   ({name}: {outcome})" if verbose else None
    if kind == "OverfitsRound":
        if yes:
            between = "a level between the last overfitting one and it"
            stronger = between if decision == "collapsed" else "a stronger round"
            return f"=> round {round_} {decision}: trying {stronger}{raw}"
        return f"=> round {round_} {decision}: stopping here{raw}"
    if kind == "AcceptedRound":
        if yes:
            return f"   ({name}: {outcome})" if verbose else None
        return f"=> round {selected} registered for review, not accepted: the run fails{raw}"
    return f"?  {name}: {outcome}"


def closing_lines(report: dict, run_dir: Path, endpoint: str | None) -> list[str]:
    """Where things are and what to do next. `endpoint`: the AWS endpoint the registry was on, None for the
    embedded moto server (gone with the command)."""
    lines = [f"run folder: {run_dir} ({', '.join(n for n in _files(report))})"]
    group = report["parameters"].get("ModelPackageGroupName", "regula-models")
    if report.get("model_package_arn"):
        if endpoint:
            lines.append(f"registry: {endpoint}, group {group}: `regula models list` shows the package")
        else:
            lines.append(
                "registry: the embedded moto server, gone now that the run has ended (the ARN above is not "
                "reachable); the model stays in the run folder"
            )
    lines.append("next:")
    if report["decision"] == "registered":
        lines.append(f"  regula predict --model {run_dir} --data NEW.csv   # score rows with the registered round")
    if report.get("plot"):
        lines.append(f"  open {report['plot']}   # the loss curves of every round")
    if report["decision"] != "registered" and report.get("failure_reason"):
        lines.append("  fix what the FAILED line says and run again (`regula run --local --help` lists the parameters)")
    if report["parameters"].get("InputDataUri", "").endswith("/demo/digits.csv"):
        lines.append("  regula run --local --data YOUR.csv --target COLUMN   # your own table")
    lines.append("  regula runs list   # the run folders here; `regula runs clean` removes old ones")
    return lines


def _files(report: dict):
    yield run_layout.REPORT_FILE
    if report.get("plot"):
        yield run_layout.LOSS_PLOT
