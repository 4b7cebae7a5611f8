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
