"""Run a job's processes and watch them: each in its own process group, stopped past their time limit and ended with
the runner, one per rank of a distributed job, rank 0's output logged and shown on the console (throttled), and,
for the local runner's interruption test hook, stopped when a line of output asks for it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipelines.local.engine.layout import rank_log

PROGRESS_SECONDS = 5.0


@dataclass
class ProcessRun:
    """How a job's processes ended: where rank 0's output is, how long they ran, their exit codes."""

    log: Path
    seconds: float
    exit_codes: list[int]
    timed_out: bool  # stopped at the time limit
    interrupted: bool  # stopped because `interrupt` said so
    last_lines: list[str]  # rank 0's last non-empty lines of output


def wait_all(ranks: list[subprocess.Popen]) -> list[int]:
    """Exit codes of every rank; the moment one fails, the others are ended (they would wait in a collective
    operation for the failed one until the job's time limit)."""
    while any(p.poll() is None for p in ranks):
        if any(p.returncode not in (None, 0) for p in ranks):
            for process in ranks:
                end_process_group(process)
            break
        time.sleep(0.1)
    return [p.wait() for p in ranks]


def end_process_group(process: subprocess.Popen) -> None:
    """Stop a job and everything it started (its own process group): TERM, then KILL after a grace period."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_processes(
    command: list[str],
    env: dict[str, str],
    cwd: Path,
    log: Path,
    echo: Callable[[str], None] = print,
    verbose: bool = False,
    processes: int = 1,
    timeout: float | None = None,
    interrupt: Callable[[str], bool] | None = None,
    append: bool = False,
) -> ProcessRun:
    """Run `command` as `processes` ranks with `env` over this process's environment, until all end or `timeout`.
    `interrupt` sees every line rank 0 prints: once it returns True, the ranks are stopped (SIGTERM, then SIGKILL
    after a grace period) as at the time limit. `append`: add to the logs (a restarted job) instead of replacing."""
    log.parent.mkdir(parents=True, exist_ok=True)
    # each process gets its share of the CPUs: more torch/BLAS threads than cores only spin (steps/contract.py)
    share = str(max(1, (os.cpu_count() or 1) // processes))
    base = {**os.environ, **env, "PYTHONUNBUFFERED": "1", "REGULA_CPUS": share}
    ranks: list[subprocess.Popen] = []
    rank_logs = contextlib.ExitStack()
    started = time.perf_counter()
    master_port = str(free_port())
    timed_out, interrupted = threading.Event(), threading.Event()

    def stop_all() -> None:
        for process in ranks:
            end_process_group(process)

    def time_is_up() -> None:
        timed_out.set()
        stop_all()

    watchdog = threading.Timer(timeout, time_is_up) if timeout else None
    stopper = threading.Thread(target=stop_all, daemon=True)  # not in the reading loop: the output keeps flowing
    mode = "a" if append else "w"
    try:
        for rank in range(processes):
            rank_env = dict(base)
            if processes > 1:
                rank_env.update(
                    WORLD_SIZE=str(processes),
                    RANK=str(rank),
                    LOCAL_RANK="0",
                    MASTER_ADDR="127.0.0.1",
                    MASTER_PORT=master_port,
                )
            out = subprocess.PIPE if rank == 0 else rank_logs.enter_context(open(rank_log(log, rank), mode))
            ranks.append(
                subprocess.Popen(
                    command,
                    cwd=cwd,
                    env=rank_env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    text=True,
                    start_new_session=True,  # its own process group: ended with everything it started
                )
            )
        if watchdog:
            watchdog.start()
        last_lines: list[str] = []
        last_shown = time.monotonic()
        with open(log, mode) as sink:
            for line in ranks[0].stdout:
                sink.write(line)
                if interrupt and not interrupted.is_set() and interrupt(line):
                    interrupted.set()
                    stopper.start()
                line = line.rstrip()
                if line:
                    last_lines = (last_lines + [line])[-20:]
                # every line with --verbose; else all but the per-epoch ones, of which one every few seconds
                quiet = line.startswith("epoch ") and time.monotonic() - last_shown < PROGRESS_SECONDS
                if line and (verbose or not quiet):
                    echo(f"   | {line}")
                    last_shown = time.monotonic()
        codes = wait_all(ranks)
    finally:  # an error, Ctrl-C or SIGTERM here: no job outlives the runner
        if watchdog:
            watchdog.cancel()
        if stopper.is_alive():
            stopper.join()
        for process in ranks:
            end_process_group(process)
        rank_logs.close()
    seconds = round(time.perf_counter() - started, 3)
    return ProcessRun(log, seconds, codes, timed_out.is_set(), interrupted.is_set(), last_lines)
