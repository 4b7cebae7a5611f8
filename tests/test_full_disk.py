"""A full disk: `regula run --local` ends with one `regula: error:` line, and never leaves a truncated report.json."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers import REPO, regula


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB file system (tmpfs): room for preprocessing's splits, not for a training job's files."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr.decode().strip()}")
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


def test_a_full_disk_is_one_error_line_and_no_truncated_report(small_disk, aws):
    result = regula("run", "--local", "--runs-dir", str(small_disk / "runs"))
    assert result.returncode == 6, result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("regula: error: cannot write the report of run ") and "No space left on device" in line
    assert line.endswith("(the run Failed)")
    # the job that filled the disk says so (in Python's words, or pyarrow's when a split file filled it)
    assert any(s.startswith("   | ") and "No space left on device" in s for s in result.stdout.splitlines())
    for report in small_disk.rglob("report.json*"):
        json.loads(report.read_text())  # whole, or not there
    assert not list(small_disk.rglob(".report.json-*")), "the temporary file is removed"


def test_a_failed_write_leaves_the_previous_report_whole(tmp_path):
    """Runs anywhere (no mount): a write past the process's file size limit fails as a full disk does (EFBIG); the
    report is the earlier one, whole, and the temporary file is gone."""
    report = tmp_path / "report.json"
    report.write_text('{"status": "Succeeded"}')
    code = (
        "import resource, signal, sys; from pathlib import Path\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        "from pipelines.local.run import write_atomically\n"
        "try:\n"
        f"    write_atomically(Path({str(report)!r}), '{{\"x\": \"' + 'a' * 100_000 + '\"}}')\n"
        "except OSError as error:\n"
        "    print(error.errno); sys.exit(3)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 3, result.stderr
    assert json.loads(report.read_text()) == {"status": "Succeeded"}
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]
