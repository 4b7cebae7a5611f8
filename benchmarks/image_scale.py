"""Preprocessing's time and peak memory against the number of images: is it linear in time and flat in memory?

For each count: that many synthetic 16x16 grayscale PNGs (tests/image_data.py's circles, squares and triangles, a
third each; POOL distinct ones, the rest copies) written as class folders into a temporary folder, then
steps/preprocess.py run on them as its own process, as the pipeline runs it. Recorded per count: the seconds
preprocessing took, the images per second, its CPU seconds (user + system: less sensitive to other jobs on the
cores than the seconds), its peak resident memory (ru_maxrss), the bytes of the input files and of the split files
it wrote. The machine's load is in the run record: on shared cores the seconds vary with it, the memory does not.

    python benchmarks/image_scale.py [--counts 10000,30000,100000] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "tests"))
import results_file  # noqa: E402
from image_data import SHAPES, shape_image  # noqa: E402

POOL = 3000  # distinct images drawn; the rest are copies of them (drawing 100,000 takes longer than preprocessing)
ENV = {**os.environ, "REGULA_METRICS": "off", "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def draw(root: Path, count: int) -> int:
    """`count` images in class folders under `root`, written from a pool of POOL drawn ones; their total bytes."""
    rng = np.random.default_rng(0)
    pool = []
    for i in range(min(count, POOL)):
        out = io.BytesIO()
        shape_image(SHAPES[i % len(SHAPES)], rng).save(out, format="PNG")
        pool.append(out.getvalue())
    total = 0
    for i in range(count):
        folder = root / SHAPES[i % len(SHAPES)] / f"{i // 10_000:03d}"  # sub-folders of 10,000 (a class folder may)
        if i % 10_000 < len(SHAPES):
            folder.mkdir(parents=True, exist_ok=True)
        data = pool[i % len(pool)]  # the pool is drawn in class order too: the copy is of its own class
        (folder / f"{i:06d}.png").write_bytes(data)
        total += len(data)
    return total


def preprocess(data: Path, out: Path) -> tuple[float, float, int, str]:
    """(seconds, CPU seconds, peak resident MB, stdout) of steps/preprocess.py on `data`."""
    command = [sys.executable, str(REPO / "steps" / "preprocess.py"), "--input", str(data), "--output-dir", str(out)]
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, env=ENV, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        stdout.seek(0), stderr.seek(0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"preprocess failed:\n{stderr.read()[-2000:]}")
        return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss // 1024, stdout.read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", default="10000,30000,100000")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "image_scale.json"))
    args = parser.parse_args()
    rows = []
    for count in (int(c) for c in args.counts.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            input_bytes = draw(Path(tmp) / "images", count)
            drawn = time.perf_counter() - started
            seconds, cpu, peak, log = preprocess(Path(tmp) / "images", Path(tmp) / "out")
            written = sum(p.stat().st_size for p in (Path(tmp) / "out").rglob("*") if p.is_file())
        row = {
            "images": count,
            "preprocess_seconds": round(seconds, 1),
            "images_per_second": round(count / seconds),
            "cpu_seconds": round(cpu, 1),
            "peak_mb": peak,
            "input_bytes": input_bytes,
            "output_bytes": written,
            "draw_seconds": round(drawn, 1),
            "log": [line for line in log.splitlines() if line.startswith("preprocess:")][-1],
        }
        rows.append(row)
        print(f"{count:>7} images: preprocess {seconds:.1f} s, {cpu:.1f} CPU s, peak {peak} MB, "
              f"load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    path = results_file.write(args.out, {"image_size": 16, "results": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
