"""The benchmarks' figures: written only by the runs (benchmarks/results_file.py), shown only as rendered from them
(benchmarks/report.py -> docs/performance.md)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest
from helpers import REPO

BENCHMARKS = REPO / "benchmarks"


def load(name: str):
    """A benchmarks/ module by file, as the scripts import their siblings (benchmarks/ is not a package)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_docs_performance_is_what_the_results_files_render():
    report = load("report")
    assert (REPO / "docs" / "performance.md").read_text() == report.render(), "run python benchmarks/report.py"


def test_every_results_file_is_rendered_with_its_run_or_marked_legacy():
    report = load("report")
    text = (REPO / "docs" / "performance.md").read_text()
    sections = {s.split("`benchmarks/results/")[1].split("`")[0]: s for s in text.split("\n## ")[1:]}
    files = sorted(p.name for p in (BENCHMARKS / "results").glob("*.json"))
    assert sorted(sections) == files
    for name in files:
        results = json.loads((BENCHMARKS / "results" / name).read_text())
        recorded = report.results_file.is_recorded(results)
        assert ("**Legacy, unverified**" in sections[name]) != recorded, name
        if recorded:
            assert f"at commit `{results['run']['commit'][:12]}`" in sections[name]
            assert results["run"]["command"].startswith("python benchmarks/")


def test_check_mode_fails_when_a_results_file_changes(tmp_path):
    """`report.py --check` (what a CI step or a reviewer runs) fails on a figure the docs do not show."""
    report = load("report")
    results = tmp_path / "results"
    results.mkdir()
    for path in (BENCHMARKS / "results").glob("*.json"):
        (results / path.name).write_text(path.read_text())
    before = report.render(results)
    throughput = json.loads((results / "throughput.json").read_text())
    throughput["ratio"] = throughput["ratio"] + 0.5
    (results / "throughput.json").write_text(json.dumps(throughput))
    after = report.render(results)
    assert before != after and f"| {throughput['ratio']:.3f} |" in after
    check = subprocess.run([sys.executable, str(BENCHMARKS / "report.py"), "--check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_a_results_file_records_the_commit_the_command_the_machine_and_the_dates(tmp_path):
    """What results_file.write puts beside the results, from a real benchmark process."""
    out = tmp_path / "out.json"
    code = (
        "import sys; sys.path.insert(0, 'benchmarks'); import results_file; "
        f"results_file.write({str(out)!r}, {{'figure': 1.5}})"
    )
    subprocess.run([sys.executable, "-c", code, "--rows", "10"], check=True, cwd=REPO, env={**os.environ})
    written = json.loads(out.read_text())
    run = written.pop("run")
    assert written == {"figure": 1.5}
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert run["commit"] == head and isinstance(run["worktree_changes"], bool)
    assert run["command"] == "python -c --rows 10"
    assert run["machine"]["cpus"] == os.cpu_count() and len(run["machine"]["load_at_start"]) == 3
    assert run["started"] <= run["finished"] and run["finished"].endswith("+00:00")

    results_file = load("results_file")
    assert results_file.is_recorded({"run": run}) and not results_file.is_recorded({"figure": 1.5})
    with pytest.raises(ValueError, match="must not carry their own 'run'"):
        results_file.write(tmp_path / "x.json", {"run": {"commit": "made up"}})


def test_a_ladder_run_without_an_accepted_model_is_a_miss_in_the_benchmark_and_in_the_docs():
    """benchmarks/ladder_vs_optuna.py at the product defaults: a run that gives up (or ends on a candidate, as the
    legacy file's runs with RegisterBestCandidate=yes forced) is a miss, however well its rounds scored."""
    ladder = load("ladder_vs_optuna")
    report = load("report")
    search = {"epochs": 400, "test": 0.74}
    gave_up = {"accepted": False, "test": None, "epochs": 57}
    accepted = {"accepted": True, "test": 0.7452, "epochs": 40}
    assert ladder.compare("t", gave_up, search)["hit"] is False
    assert ladder.compare("t", gave_up, search)["test_difference_points"] is None
    assert ladder.compare("t", accepted, search)["hit"] is True
    assert ladder.compare("t", {**accepted, "test": 0.7349}, search)["hit"] is False  # 0.51 point below

    def row(decision, test):
        regula = {"metric": "balanced_accuracy", "decision": decision, "rounds": 3, "epochs": 57, "test": test}
        return {"table": decision, "regula": regula, "optuna": search, "epoch_ratio": 0.14}

    lines = report.ladder_vs_optuna({"results": [row("candidate", 0.7523), row("register", 0.7523)]})
    assert "| candidate | 3 | 57 | no accepted model | 400 | 0.7400 | 0.140 | miss |" in lines[2]
    assert lines[3].endswith("| 0.7523 | 400 | 0.7400 | 0.140 | +1.23 |")
    assert lines[-1].startswith("Hits (an accepted model within 0.5 point of Optuna, or better): 1 of 2;")


def test_train_options_decides_on_validation_and_keeps_the_default_unless_a_variant_is_clearly_ahead():
    """train_options.decide reads only the validation differences (the test ones say the opposite here) and their
    spread across splits."""
    options = load("train_options")
    names = ["default", "variant"]

    def table(validation_points, spread, test_points):
        return {
            "validation_points": {"default": 0.0, "variant": validation_points},
            "validation_points_spread": {"default": 0.0, "variant": spread},
            "points": {"default": 0.0, "variant": test_points},
        }

    ahead = {"a": table(1.0, 0.5, -2.0), "b": table(0.8, 0.3, -2.0), "c": table(-0.2, 0.5, 3.0)}
    assert options.decide(ahead, names)["keep"] == "variant"
    assert options.decide(ahead, names)["variants"]["variant"] == {
        "mean_validation_points": 0.53,
        "ahead": 2,
        "behind": 0,
    }
    within_noise = {"a": table(1.0, 1.5, 3.0), "b": table(0.8, 1.0, 3.0), "c": table(0.1, 0.5, 3.0)}
    assert options.decide(within_noise, names)["keep"] == "default"
    behind = {"a": table(1.0, 0.5, 3.0), "b": table(-0.9, 0.5, 3.0), "c": table(-0.6, 0.5, 3.0)}
    assert options.decide(behind, names)["keep"] == "default"

    runs = {
        "default": [{"validation": 0.90, "test": 0.80, "epochs": 10}, {"validation": 0.80, "test": 0.90, "epochs": 20}],
        "variant": [{"validation": 0.91, "test": 0.70, "epochs": 30}, {"validation": 0.83, "test": 0.95, "epochs": 40}],
    }
    summary = options.summarize(runs, names)
    assert summary["validation_points"] == {"default": 0.0, "variant": 2.0}  # +1 and +3 points, split by split
    assert summary["validation_points_spread"]["variant"] == 1.0
    assert summary["spread_validation"]["default"] == pytest.approx(0.05)
    assert summary["points"]["variant"] == -2.5 and summary["mean_epochs"]["variant"] == 35


def test_the_borderline_rule_is_judged_on_the_test_rounds_it_chose_between_and_a_miss_counts_against_it():
    """ladder_rules: the registered round's test quality against the borderline round's, in points, with the seconds
    of the rounds after it; a run that registered nothing after a borderline round is behind."""
    rules = load("ladder_rules")

    def round_(number, decision, test, seconds=10.0, metric="balanced_accuracy"):
        return {"round": number, "metric": metric, "validation": 0.9, "gap": 0.1, "gap_se": 0.01,
                "decision": decision, "test": test, "epochs": 20, "seconds": seconds}  # fmt: skip

    def run(table, rounds, registered, seconds=30.0):
        outcome = "registered" if registered else "failed"
        return {"table": table, "split_seed": 1, "outcome": outcome, "registered_round": registered,
                "seconds": seconds, "rounds": rounds}  # fmt: skip

    gained = run(
        "a", [round_(1, "borderline", 0.90), round_(2, "overfit", 0.92, 7.0), round_(3, "register", 0.93, 8.0)], 3
    )
    tie = run("b", [round_(1, "borderline", 0.80), round_(2, "register", 0.805)], 2)
    quiet = run("c", [round_(1, "register", 0.70)], 1)
    lost = run("d", [round_(1, "overfit", 0.5), round_(2, "borderline", 0.6), round_(3, "register", 0.5)], None)

    counterfactual = rules.counterfactual(gained)
    assert counterfactual["points"] == pytest.approx(3.0) and counterfactual["extra_rounds"] == 2
    assert counterfactual["extra_seconds"] == 15.0 and counterfactual["borderline_round"] == 1
    assert rules.counterfactual(quiet) is None
    assert rules.counterfactual(lost)["points"] is None

    summary = rules.summarize([gained, tie, quiet])
    assert (summary["fired"], summary["ahead"], summary["behind"]) == (2, 1, 0)  # +0.5 is within the 1-point tolerance
    assert summary["mean_points"] == pytest.approx(1.75) and summary["spread_points"] == pytest.approx(1.25)
    assert rules.decide(summary)["keep"] == "borderline rule"
    with_miss = rules.summarize([gained, tie, quiet, lost])
    assert with_miss["behind"] == 1 and with_miss["misses_after_borderline"] == 1
    assert rules.decide(with_miss)["keep"] == "register the borderline round at once"
    assert rules.decide(rules.summarize([tie, quiet]))["keep"] == "register the borderline round at once"  # a tie
    assert rules.decide(rules.summarize([quiet]))["keep"] == "borderline rule"  # never fired: not judged


def test_the_suite_is_twenty_real_tables_read_from_package_files_without_the_network(monkeypatch):
    """benchmarks/real_tables.py's suite: at least 20 tables that packages ship (a loader that reached for a URL
    would fail here: sockets refuse), 100 to 50,000 rows each, both problem kinds, every table in one partition."""
    import socket

    tables = load("real_tables")

    def no_network(*args, **kwargs):
        raise OSError("the suite must not reach the network")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    kinds = set()
    for name, (loader, partition, source) in tables.SUITE.items():
        frame, target = loader()
        assert 100 <= len(frame) <= 50_000 and target in frame.columns, name
        assert partition in ("tuning", "report") and source, name
        kinds.add(tables.preprocess.problem_type(frame[target].dropna(), "auto")[0])
    assert len(tables.SUITE) >= 20 and len(tables.REPORT) >= 15 and kinds == {"classification", "regression"}
    assert set(tables.TUNING) | set(tables.REPORT) == set(tables.SUITE) and not set(tables.TUNING) & set(tables.REPORT)
    assert not set(tables.SUITE) & set(tables.SYNTHETIC)


def test_a_table_over_the_cap_is_subsampled_keeping_its_class_shares():
    tables = load("real_tables")
    import pandas as pd

    frame = pd.DataFrame({"x": range(25_000), "y": ["a"] * 20_000 + ["b"] * 4_000 + ["c"] * 1_000})
    capped, rows = tables.capped(frame, "y")
    assert rows == 25_000 and len(capped) == tables.MAX_ROWS == 20_000
    assert capped["y"].value_counts().to_dict() == {"a": 16_000, "b": 3_200, "c": 800}
    assert capped["x"].is_unique and capped.index.is_monotonic_increasing
    small, rows = tables.capped(frame.head(500), "y")
    assert rows == 500 and small.equals(frame.head(500))


def verdict_of(tables, regula, linear, hgb, kind="classification", classes=2):
    metric = "balanced_accuracy" if kind == "classification" else "r2"
    baselines = {"linear": {metric: linear}, "hgb": {metric: hgb}}
    return tables.verdict(regula, baselines, kind, classes, metric)


def test_a_run_without_a_registered_model_is_a_miss_below_every_figure_of_the_suite():
    """real_tables.verdict and summary: a refusal is a miss unless the tuned baselines cannot beat chance by MinLift
    either; a miss is not within and sorts below every difference in the median and the worst."""
    tables = load("real_tables")
    registered = {"registered": True, "outcome": "registered r1", "test_metrics": {"balanced_accuracy": 0.80}}
    v = verdict_of(tables, registered, 0.805, 0.83)
    assert v["best_baseline"] == "hgb" and v["within"] is False and v["points"] == -3.0 and not v["miss"]
    v = verdict_of(tables, {**registered, "test_metrics": {"r2": 0.61}}, 0.62, 0.60, kind="regression")
    assert v["best_baseline"] == "linear" and v["within"] is True and v["points"] == -0.5  # 0.02 of R2 is a point

    refused = {"registered": False, "outcome": "failed at UnderfitRound1", "rounds": [{"decision": "underfit"}]}
    assert verdict_of(tables, refused, 0.52, 0.53)["within"] is True  # nothing to learn: a correct refusal
    missed = verdict_of(tables, refused, 0.52, 0.70)
    assert missed["miss"] and not missed["within"] and missed["points"] is None
    assert missed["label"] == "miss (refused: underfit)"
    overfit = {**refused, "outcome": "failed at StillOverfitting", "rounds": [{"decision": "overfit"}] * 3}
    assert verdict_of(tables, overfit, 0.52, 0.53)["miss"]  # a gap the ladder never closed is a miss whatever

    def row(name, v, partition="report"):
        return {"table": name, "partition": partition, "settings": {"balanced": {"verdict": v}}}

    hit = verdict_of(tables, {**registered, "test_metrics": {"balanced_accuracy": 0.84}}, 0.80, 0.83)
    rows = [row("a", hit), row("b", hit), row("c", missed), row("t", missed, "tuning")]
    line = tables.summary(rows, "balanced", "report")
    assert line["tables"] == 3 and line["within"] == 2 and line["misses"] == ["c"] and line["losses"] == ["c"]
    assert line["median_points"] == 1.0 and line["worst_points"] is None and line["worst_table"] == "c"
    assert line["target_met"] is False  # 2 of 3, and a miss
    assert tables.summary(rows[:2], "balanced", "report")["target_met"] is True
    assert tables.summary(rows, "balanced", None)["median_points"] is None  # half the tables missed

    report = load("report")
    text = report.suite_line("Report", line)
    assert text.startswith("Report tables: 2 of 3 within 1 point (67%, target 90%), median difference +1.00 points")
    assert "worst a miss (c)" in text and "no registered model (a miss): c;" in text and text.endswith("not met.")
