"""The model server under load: requests/s and latency at 1, 8 and 64 clients, on loopback only.

    python benchmarks/serve_load.py [--requests-per-client 40] [--baseline COMMIT] [--out FILE.json]

Trains a small digits model (preprocess.py, train.py), serves it with the artifact's code/serve.py (as the image's
`serve` does), and runs bounded loops of clients, each POSTing the same 5-row CSV body: on keep-alive connections
at 1, 8 and 64 clients, then at 64 clients on a new connection per request (where the standard library's server,
with its backlog of 5, reset connections). `--baseline COMMIT` runs the same loads on that commit's steps/serve.py
too (the server before uvicorn). Every request goes to 127.0.0.1; nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import results_file  # noqa: E402  (benchmarks/, the script's own folder: importing it starts the run record)

REPO = Path(__file__).resolve().parent.parent
STEPS = REPO / "steps"
LEVELS = (1, 8, 64)


def build_model(root: Path) -> Path:
    """A digits classifier trained for a few epochs: the model folder, with code/serve.py in it."""
    from sklearn.datasets import load_digits

    frame = load_digits(as_frame=True).frame
    frame.to_csv(root / "digits.csv", index=False)
    env = {**os.environ, "PYTHONPATH": str(REPO), "REGULA_METRICS": "off"}
    run = [sys.executable, str(STEPS / "preprocess.py"), "--input", str(root / "digits.csv")]
    subprocess.run([*run, "--output-dir", str(root / "splits"), "--target", "target"], check=True, env=env)
    splits = root / "splits"
    train = [sys.executable, str(STEPS / "train.py"), "--train", str(splits / "train")]
    train += ["--validation", str(splits / "validation"), "--model_dir", str(root / "model"), "--max_epochs", "5"]
    subprocess.run(train, check=True, env=env, capture_output=True)
    return root / "model"


def start(model_dir: Path, server_file: Path, workers: int | None) -> tuple[subprocess.Popen, int]:
    """code/serve.py (or the baseline's) on a free loopback port; returns once the model is loaded everywhere."""
    shutil.copy(server_file, model_dir / "code" / "serve.py")
    command = [sys.executable, str(model_dir / "code" / "serve.py"), "--model-dir", str(model_dir), "--port", "0"]
    if workers is not None:  # the uvicorn server; the baseline takes neither option
        command += ["--host", "127.0.0.1", "--workers", str(workers)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAGEMAKER_")}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env={**env, "PYTHONPATH": ""})
    port, ready = None, 0
    for line in process.stdout:
        if line.startswith("serving on port "):
            port = int(line.split()[-1])
        ready += line.startswith("worker ") and line.rstrip().endswith(" ready")
        if port is not None and (workers is None or ready >= workers + (workers > 1)):
            break
    threading.Thread(target=process.stdout.read, daemon=True).start()
    return process, port


def cpu_seconds(root: int) -> float:
    """CPU time (user + system) of process `root` and its descendants (the server's workers), from /proc: what a
    request costs the server however busy the rest of the machine is."""
    stats = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(stat.parent.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))  # ppid, utime + stime
    tree, ticks = {root}, 0
    for _ in range(4):  # parent, workers, their helpers
        tree |= {pid for pid, (ppid, _) in stats.items() if ppid in tree}
    ticks = sum(stats[pid][1] for pid in tree if pid in stats)
    return ticks / os.sysconf("SC_CLK_TCK")


def load(port: int, body: bytes, clients: int, per_client: int, keep_alive: bool, server: int = 0) -> dict:
    """`clients` threads, each sending `per_client` requests; latencies of the answered ones, failures counted."""
    barrier = threading.Barrier(clients)

    def client(_) -> tuple[list[float], list[str]]:
        latencies, failures = [], []
        connection = None
        barrier.wait()
        for _ in range(per_client):
            started = time.perf_counter()
            try:
                if connection is None:
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                    connection.connect()
                    # the headers and a body over 2,000 bytes go in two writes: without this, Nagle's algorithm
                    # holds the body for the server's delayed ACK (40 ms), on every request, whatever the server
                    connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                connection.request("POST", "/invocations", body=body, headers={"Content-Type": "text/csv"})
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    failures.append(f"HTTP {response.status}")
                else:
                    latencies.append(time.perf_counter() - started)
            except OSError as failure:  # reset, refused, timed out
                failures.append(type(failure).__name__)
                connection = None
                continue
            if not keep_alive:
                connection.close()
                connection = None
        return latencies, failures

    started, cpu = time.perf_counter(), cpu_seconds(server)
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(client, range(clients)))
    seconds, cpu = time.perf_counter() - started, cpu_seconds(server) - cpu
    latencies = sorted(x for lat, _ in results for x in lat)
    failures = [f for _, fail in results for f in fail]
    quantile = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return {
        "clients": clients,
        "keep_alive": keep_alive,
        "requests": clients * per_client,
        "answered": len(latencies),
        "failures": len(failures),
        "failure_kinds": sorted(set(failures)),
        "requests_per_second": round(len(latencies) / seconds, 1),
        "p50_ms": round(quantile[49] * 1000, 2) if latencies else None,
        "p99_ms": round(quantile[98] * 1000, 2) if latencies else None,
        "server_cpu_ms_per_request": round(cpu * 1000 / max(1, len(latencies)), 2),
    }


def run_server(model_dir: Path, server_file: Path, workers: int | None, per_client: int, body: bytes) -> list[dict]:
    process, port = start(model_dir, server_file, workers)
    try:
        load(port, body, 8, 5, keep_alive=True)  # warm-up: first requests pay for imports and allocations
        rows = [load(port, body, clients, per_client, True, process.pid) for clients in LEVELS]
        rows.append(load(port, body, 64, per_client, False, process.pid))
        return rows
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests-per-client", type=int, default=40)
    parser.add_argument("--workers", type=int, default=0, help="0: one per CPU, as in the container")
    parser.add_argument("--baseline", help="a commit whose steps/serve.py to measure the same way")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "serve_load.json")
    args = parser.parse_args()
    from sklearn.datasets import load_digits

    body = load_digits(as_frame=True).frame.drop(columns=["target"]).head(5).to_csv(index=False).encode()
    servers = {"uvicorn": (STEPS / "serve.py", args.workers or os.cpu_count())}
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_model(Path(tmp))
        if args.baseline:
            old = subprocess.run(
                ["git", "show", f"{args.baseline}:steps/serve.py"], cwd=REPO, capture_output=True, check=True
            )
            (Path(tmp) / "baseline_serve.py").write_bytes(old.stdout)
            servers = {"stdlib-threading": (Path(tmp) / "baseline_serve.py", None), **servers}
        results = {}
        for name, (server_file, workers) in servers.items():
            results[name] = {
                "workers": workers,
                "loads": run_server(model_dir, server_file, workers, args.requests_per_client, body),
            }
            for row in results[name]["loads"]:
                print(name, json.dumps(row), flush=True)
    # the run record (results_file) holds the commit, the command, the machine and its load at the start and the end:
    # the machine may be shared, and the figures are only as quiet as it was
    record = {
        "body": "5 digits rows as CSV (64 columns)",
        "requests_per_client": args.requests_per_client,
        "baseline": args.baseline,
        "servers": results,
    }
    results_file.write(args.out, record)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
