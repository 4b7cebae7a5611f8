"""Free-text columns of a table: how a column is recognized as text, and the text transform (a vocabulary of word
n-grams with their TF-IDF weights) fitted on the training split and applied to any rows.

Packed into model.tar.gz with the table transform (steps/table.py), so the served model reads raw text exactly as
training did. docs/text.md describes the choices and the measurements behind them.

- Recognized from the column's structure (`looks_like_text`): many distinct values that are word sequences, several
  words per value on average, mostly letters. An identifier (`ORD-2021-000123`, a URL, a hash) is one "word": it
  stays dropped as an identifier. `TextColumns` forces the role, `ExcludeColumns` keeps a column out.
- Tokens: the text lower-cased, its Unicode words (letters and digits of any script; punctuation and `_` split
  them), and each pair of adjacent words (bigrams). Word 1-2 grams were within 0.4 point of character 2-5 grams on
  Rotten Tomatoes with a third of the vocabulary and a fifth of the entries per row (docs/text.md).
- Vocabulary: per column, the MAX_VOCABULARY n-grams in the most training rows (at least MIN_ROWS rows); ties by the
  n-gram. A word seen only outside the training split, or at serving time, is unknown: it is ignored.
- Weights: sublinear TF-IDF ((1 + log count) x smooth idf from the training rows), L2-normalized per row and column,
  so a long text and a short one weigh alike. An empty or missing text is an empty bag (no n-gram).
- A cell is read up to MAX_TEXT_CHARS characters; the rest is cut off and the cut is reported (the preprocessing
  log, the prediction response's `warnings`). Bytes that are not UTF-8, lists and objects are refused by name.

The text block of a split is CSR arrays (`offsets`, `ids`, `weights`) beside the split's Parquet file: the ids of
every column share one space (a column's ids start at its `offset`), so the model takes them as one bag per row.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from steps.table_values import MISSING_TEXTS

MAX_TEXT_CHARS = 10_000  # characters of a cell the transform reads; the rest is cut off, and the cut reported
MAX_VOCABULARY = 20_000  # n-grams kept per text column (most frequent by training rows)
MIN_ROWS = 2  # an n-gram in fewer training rows than this is not kept: it cannot generalize
NGRAMS = 2  # word n-grams of 1 .. NGRAMS words
WORD = re.compile(r"[^\W_]+")  # Unicode letters and digits: any script; punctuation, spaces and _ separate words
# recognizing a text column (the whole table's structure)
TEXT_MIN_WORDS = 3.0  # words per value on average, counted by spaces: an identifier or a URL is one
TEXT_MIN_DISTINCT = 0.3  # distinct values per value present: a category repeats, free text rarely does
TEXT_MIN_ROWS = 20  # below this, uniqueness says nothing
TEXT_MIN_LETTERS = 0.5  # share of the words with a letter: "12 4 7" is numbers, not text
SNIFF_ROWS = 2_000  # values looked at (a seeded sample) to recognize a text column


# -- recognizing a text column ------------------------------------------------------------------------------------


def text_stats(present: pd.Series) -> dict:
    """What a column's structure says about it being free text: distinct share, words per value (split on
    whitespace), and the share of those words that hold a letter."""
    sample = present if len(present) <= SNIFF_ROWS else present.sample(SNIFF_ROWS, random_state=0)
    texts = sample.astype(str).str.slice(0, MAX_TEXT_CHARS)
    words = texts.str.split()
    counts = words.str.len()
    flat = [w for ws in words for w in ws]
    lettered = sum(any(ch.isalpha() for ch in w) for w in flat) / max(len(flat), 1)
    return {
        "distinct": float(present.nunique() / max(len(present), 1)),
        "words": float(counts.mean()) if len(counts) else 0.0,
        "letters": float(lettered),
    }


def looks_like_text(present: pd.Series, rows: int) -> tuple[bool, str]:
    """Whether the (string) values of a column are free text, and why, in words for the log."""
    if rows < TEXT_MIN_ROWS:
        return False, ""
    stats = text_stats(present)
    why = (
        f"{stats['distinct']:.0%} distinct values, {stats['words']:.1f} words per value on average, "
        f"{stats['letters']:.0%} of the words with letters"
    )
    text = (
        stats["distinct"] >= TEXT_MIN_DISTINCT
        and stats["words"] >= TEXT_MIN_WORDS
        and stats["letters"] >= TEXT_MIN_LETTERS
    )
    return text, why


# -- reading values -----------------------------------------------------------------------------------------------


def text_value(value) -> str | None:
    """A cell as text, the same whichever way it came (CSV, JSON, Parquet): None when missing; ValueError for bytes
    that are not UTF-8 text and for lists or objects."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)) or value is pd.NA:
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("bytes that are not UTF-8 text") from None
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return str(int(number)) if number.is_integer() and abs(number) < 2**53 else repr(number)
    if not isinstance(value, str):
        raise ValueError(f"a {type(value).__name__}, not text")
    if "\x00" in value:
        raise ValueError("a NUL character (binary data, not text)")
    text = value.strip()
    return None if text in MISSING_TEXTS else text


def ngrams(text: str) -> list[str]:
    """The n-grams of a text (already cut to MAX_TEXT_CHARS): lower-cased words, then adjacent word pairs."""
    words = WORD.findall(text.lower())
    grams = list(words)
    for n in range(2, NGRAMS + 1):
        grams += [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)]
    return grams


def read_texts(name: str, series: pd.Series) -> tuple[list[str], list[str], list[str]]:
    """(texts, problems, notes) of a column: each cell as text ('' when missing, cut to MAX_TEXT_CHARS), every bad
    cell named in `problems`, the cut cells in `notes`."""
    texts, bad, long = [], {}, []
    for position, value in enumerate(series.tolist()):
        try:
            text = text_value(value)
        except ValueError as error:
            bad.setdefault(str(error), []).append(position)
            text = None
        if text is None:
            text = ""
        elif len(text) > MAX_TEXT_CHARS:
            long.append(position)
            text = text[:MAX_TEXT_CHARS]
        texts.append(text)
    labels = series.index
    problems = [
        f"column '{name}': {len(rows)} values are not text ({why}; rows {_rows(labels, rows)})"
        for why, rows in bad.items()
    ]
    notes = []
    if long:
        notes.append(
            f"column '{name}': {len(long)} texts longer than {MAX_TEXT_CHARS} characters were cut to their first "
            f"{MAX_TEXT_CHARS} (rows {_rows(labels, long)})"
        )
    return texts, problems, notes


def _rows(labels: pd.Index, positions: list[int]) -> str:
    return ", ".join(str(labels[p]) for p in positions[:5]) + (", ..." if len(positions) > 5 else "")


# -- fitting (training split) -------------------------------------------------------------------------------------


def fit_column(name: str, series: pd.Series, gaps: bool) -> tuple[dict, list[str], list[str]]:
    """The column's vocabulary and idf from its training rows: (spec, problems, notes)."""
    texts, problems, notes = read_texts(name, series)
    rows = Counter()
    for text in texts:
        rows.update(set(ngrams(text)))
    kept = sorted((g for g, n in rows.items() if n >= MIN_ROWS), key=lambda g: (-rows[g], g))[:MAX_VOCABULARY]
    total = len(texts)
    idf = [round(math.log((1 + total) / (1 + rows[g])) + 1, 6) for g in kept]
    spec = {"name": name, "kind": "text", "vocabulary": kept, "idf": idf, "indicator": gaps, "ngrams": NGRAMS}
    return spec, problems, notes


def text_columns(spec: dict) -> list[dict]:
    """The transform's text columns, each with the `offset` of its ids in the shared id space."""
    return [c for c in spec["columns"] if c["kind"] == "text"]


def vocabulary_size(spec: dict) -> int:
    return sum(len(c["vocabulary"]) for c in text_columns(spec))


# -- applying -----------------------------------------------------------------------------------------------------


class TextBlock:
    """The text of a block of rows as CSR arrays: row i's n-grams are ids[offsets[i]:offsets[i + 1]] with their
    TF-IDF weights, every text column's ids in one space."""

    def __init__(self, offsets: np.ndarray, ids: np.ndarray, weights: np.ndarray):
        self.offsets, self.ids, self.weights = offsets, ids, weights

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @staticmethod
    def concat(blocks: list[TextBlock]) -> TextBlock:
        if not blocks:
            return TextBlock(np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32))
        starts = np.cumsum([0] + [b.offsets[-1] for b in blocks[:-1]])
        offsets = np.concatenate([[0]] + [b.offsets[1:] + s for b, s in zip(blocks, starts, strict=True)])
        return TextBlock(
            offsets.astype(np.int64),
            np.concatenate([b.ids for b in blocks]).astype(np.int32),
            np.concatenate([b.weights for b in blocks]).astype(np.float32),
        )


def encode(frame: pd.DataFrame, spec: dict) -> tuple[TextBlock, list[str], list[str]]:
    """(block, problems, notes): the text columns of `frame` through the fitted vocabularies. Unknown n-grams are
    ignored; a missing or empty text (or a column left out) is an empty bag."""
    problems, notes = [], []
    lookups, offset = [], 0
    for column in text_columns(spec):
        name = column["name"]
        series = frame[name] if name in frame.columns else pd.Series([None] * len(frame), index=frame.index)
        texts, bad, cut = read_texts(name, series)
        problems += bad
        notes += cut
        index = {g: i for i, g in enumerate(column["vocabulary"])}
        lookups.append((texts, index, np.asarray(column["idf"], dtype=np.float64), offset))
        offset += len(column["vocabulary"])
    offsets, ids, weights, entries = [0], [], [], 0
    for row in range(len(frame)):
        for texts, index, idf, start in lookups:
            counts = Counter(i for i in map(index.get, ngrams(texts[row])) if i is not None)
            if counts:
                found = np.fromiter(counts.keys(), np.int64, len(counts))
                values = (1 + np.log(np.fromiter(counts.values(), np.float64, len(counts)))) * idf[found]
                ids.append(found + start)
                weights.append(values / np.sqrt((values**2).sum()))
                entries += len(found)
        offsets.append(entries)
    block = TextBlock(
        np.asarray(offsets, dtype=np.int64),
        np.concatenate(ids).astype(np.int32) if ids else np.zeros(0, np.int32),
        np.concatenate(weights).astype(np.float32) if weights else np.zeros(0, np.float32),
    )
    return block, problems, notes


# -- the split files ----------------------------------------------------------------------------------------------


def block_path(directory, name: str) -> Path:
    return Path(directory) / f"{name}.text.npz"


def write_block(directory, name: str, block: TextBlock) -> Path:
    path = block_path(directory, name)
    Path(directory).mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        np.savez(handle, offsets=block.offsets, ids=block.ids, weights=block.weights)
    return path


def read_block(directory, name: str) -> TextBlock:
    with np.load(block_path(directory, name)) as arrays:
        return TextBlock(arrays["offsets"], arrays["ids"], arrays["weights"])
