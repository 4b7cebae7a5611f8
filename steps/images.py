"""The image input kind's preprocessing: labelled images in, uint8 split arrays and the image schema out.

The input is a folder of class folders (`<input>/<class>/<file>.png|jpg|jpeg|webp|bmp`, torchvision ImageFolder's
layout; a class folder may hold sub-folders), or a CSV/Parquet manifest with an image-path column (ImageColumn) and
a label column (TargetColumn). A manifest's paths are relative to the manifest's folder, or S3 URIs: under
InputDataUri they are the images SageMaker downloaded beside the manifest, elsewhere in the same bucket they are
fetched by the job (steps/image_fetch.py); a path that leaves the input folder, or another bucket, is refused.

Every file is checked before anything is written, and every problem is reported at once (one line per bad file):
unreadable, empty, not an image (or not PNG/JPEG/WebP/BMP), over the pixel limit, a mode that is neither grayscale
nor colour, undecodable pixel data, grayscale and colour images mixed, a class with too few images to split.

The images are resized to one square size: ImageSize, or the median shorter side of the images, clipped to
[MIN_IMAGE_SIZE, AUTO_IMAGE_SIZE_CAP]. Each split is one uint8 array file `<split>/images.npy` (N, C, size, size)
beside `<split>/labels.npy`, written a block of images at a time into a memory map: the peak memory is a block,
whatever the number of images. The per-channel mean and standard deviation (of pixel / 255) come from the training
split only; the model normalizes with them (steps/inputs.py Images). A few raw test images are copied to
`test/raw_images/`: evaluation sends them through the serving code.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from steps import image_decode, image_fetch
from steps.contract import SCHEMA, SPLITS, StepError
from steps.defaults import AUTO_IMAGE_SIZE_CAP, MIN_IMAGE_SIZE
from steps.labels import class_weight, sort_classes
from steps.table import TableError

IMAGES_FILE, LABELS_FILE = "images.npy", "labels.npy"
RAW_IMAGES = "raw_images"  # test/raw_images/: raw test images, scored through the serving code by evaluation
RAW_SAMPLE_IMAGES = 32
BLOCK_IMAGES = 4096  # images decoded and written per block: the peak memory of a split's file
LISTED = 50  # bad files named one by one in the report; the rest are counted
TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


def is_class_folders(path: Path) -> bool:
    """A folder whose sub-folders hold image files and which holds no table: the class-folder layout."""
    if not path.is_dir():
        return False
    files = [p for p in path.rglob("*") if p.is_file()]
    if any(p.suffix.lower() in TABLE_SUFFIXES for p in files):
        return False
    return any(p.suffix.lower() in image_decode.SUFFIXES and p.parent != path for p in files)


def hidden(path: Path, root: Path) -> bool:
    """.DS_Store, ._x.png (macOS), .ipynb_checkpoints/...: not part of the data."""
    return any(part.startswith(".") for part in path.relative_to(root).parts)


# -- listing the images and their labels -------------------------------------------------------------------------


def list_class_folders(root: Path, problems: list[str]) -> tuple[list[Path], list[str]]:
    files, labels = [], []
    for child in sorted(root.iterdir()):
        if hidden(child, root):
            continue
        if not child.is_dir():
            problems.append(f"{child.name}: a file outside any class folder (expected <class>/<image>)")
            continue
        # every entry but folders: a link that leads nowhere is reported as unreadable, not skipped
        for path in sorted(p for p in child.rglob("*") if not p.is_dir() and not hidden(p, root)):
            files.append(path)
            labels.append(child.name)
    return files, labels


def find_manifest(root: Path) -> Path:
    if root.is_file():
        return root
    found = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in TABLE_SUFFIXES)
    if len(found) != 1:
        shown = ", ".join(p.name for p in found[:5])
        raise StepError(f"ImageColumn is set: expected one CSV or Parquet manifest under the input, found {len(found)}"
                        + (f": {shown}" if found else ""))  # fmt: skip
    return found[0]


def manifest_path(value: str, base: Path, root: Path, input_uri: str) -> tuple[Path | None, str]:
    """Where a manifest row's image is here, or (None, why not). S3 URIs under InputDataUri are the files under
    `root` (those outside it are fetched: `list_manifest`); other paths are relative to the manifest's folder `base`;
    none may leave `root`."""
    if value.startswith("s3://"):
        prefix = input_uri.rstrip("/") + "/"
        candidate = root / value[len(prefix) :]
        if ".." in value[len(prefix) :].split("/"):  # an S3 key is literal: "a/../b" is not "b"
            return None, f"{value!r}: the key has a '..' segment"
    elif value.startswith("/") or "://" in value or "\\" in value:
        return None, f"{value!r} is neither a relative path nor an S3 URI"
    else:
        candidate = base / value
    resolved = candidate.resolve()
    if not resolved.is_relative_to(root.resolve()):
        return None, f"{value!r} leaves the input folder"
    if not resolved.is_file():
        return None, f"{value!r} does not exist"
    return resolved, ""


def under_input(value: str, input_uri: str) -> bool:
    """An S3 URI under InputDataUri's prefix: SageMaker copied it into the job with the manifest."""
    return input_uri.startswith("s3://") and value.startswith(input_uri.rstrip("/") + "/")


def list_manifest(args: argparse.Namespace, problems: list[str], fetched: Path) -> tuple[list[Path], list, str, dict]:
    """The manifest's images (files here: S3 URIs outside InputDataUri fetched under `fetched`), their labels, the
    manifest's name, and the names the report shows for fetched files (their URIs)."""
    from steps.tablefile import TableFileError, read_table

    root = Path(args.input)
    path = find_manifest(root)
    base, root = path.parent, root if root.is_dir() else path.parent
    try:
        frame, _ = read_table(path, duplicates_allowed=True)
    except TableFileError as error:
        raise StepError(str(error)) from None
    missing = [n for n, c in (("ImageColumn", args.image_column), ("TargetColumn", args.target)) if c not in frame]
    if missing:
        shown = ", ".join(map(str, frame.columns[:10]))
        names = {"ImageColumn": args.image_column, "TargetColumn": args.target}
        problems += [f"{m} '{names[m]}' is not a column of {path.name}; columns are: {shown}" for m in missing]
        raise TableError(problems)
    files, labels, remote = [], [], {}  # remote: the row's index in files -> (row, uri, key)
    for row, (value, label) in enumerate(zip(frame[args.image_column], frame[args.target], strict=True), 1):
        if label is None or (isinstance(label, float) and np.isnan(label)):
            problems.append(f"{path.name} row {row}: no label in '{args.target}'")
            continue
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{path.name} row {row}: no image path in '{args.image_column}'")
            continue
        value = value.strip()
        if value.startswith("s3://") and not under_input(value, args.input_uri):
            key, why = image_fetch.checked_key(value, args.input_uri)
            found = None
            if key:
                remote[len(files)] = (row, value, key)
        else:
            found, why = manifest_path(value, base, root, args.input_uri)
        if why:
            problems.append(f"{path.name} row {row}: {why}")
            continue
        files.append(found)
        labels.append(label.item() if hasattr(label, "item") else label)
    names = {}
    if remote:
        bucket = image_fetch.split_uri(args.input_uri)[0]
        print(f"preprocess: fetching {len({k for _, _, k in remote.values()})} images outside InputDataUri from "
              f"s3://{bucket}", flush=True)  # fmt: skip
        got, failed = image_fetch.fetch(bucket, [key for _, _, key in remote.values()], fetched)
        for index, (row, uri, key) in remote.items():
            if key in failed:
                problems.append(f"{path.name} row {row}: {uri} {failed[key]}")
            else:
                files[index] = got[key]
                names[got[key]] = uri
        kept = [i for i, f in enumerate(files) if f is not None]
        files, labels = [files[i] for i in kept], [labels[i] for i in kept]
    return files, labels, path.name, names


# -- checking, sizing, decoding ----------------------------------------------------------------------------------


def read_headers(files: list[Path], shown: Callable[[Path], str]) -> tuple[list[dict | None], list[str]]:
    """Each file's format, size and mode from its header (no pixels decoded), or None and a problem naming it."""
    headers, problems = [], []
    for path in files:
        name = shown(path)
        if path.suffix.lower() not in image_decode.SUFFIXES:
            problems.append(f"{name}: not an image file (expected {', '.join(image_decode.SUFFIXES)})")
            headers.append(None)
            continue
        try:
            data = path.read_bytes()
        except OSError as error:
            problems.append(f"{name}: cannot be read ({error.strerror or error})")
            headers.append(None)
            continue
        try:
            image = image_decode.open_image(data)
        except image_decode.ImageError as error:
            problems.append(f"{name}: {error}")
            headers.append(None)
            continue
        width, height = image.size
        headers.append({"format": image.format, "mode": image.mode, "width": width, "height": height,
                        "channels": image_decode.channels_of(image)})  # fmt: skip
    return headers, problems


def shown_name(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name


def image_size(headers: list[dict], requested: int) -> tuple[int, str]:
    """The square side every image is resized to, and why."""
    if requested:
        return requested, f"ImageSize={requested}"
    median = int(np.median([min(h["width"], h["height"]) for h in headers]))
    size = int(np.clip(median, MIN_IMAGE_SIZE, AUTO_IMAGE_SIZE_CAP))
    return size, (
        f"the median shorter side of the images ({median} px), clipped to [{MIN_IMAGE_SIZE}, {AUTO_IMAGE_SIZE_CAP}]"
    )


def statistics(headers: list[dict]) -> dict:
    def spread(key: str) -> dict:
        values = np.array([h[key] for h in headers])
        return {"min": int(values.min()), "median": float(np.median(values)), "max": int(values.max())}

    return {
        "images": len(headers),
        "width": spread("width"),
        "height": spread("height"),
        "formats": dict(Counter(h["format"] for h in headers)),
        "modes": dict(Counter(h["mode"] for h in headers)),
    }


def listed(problems: list[str]) -> list[str]:
    if len(problems) <= LISTED:
        return problems
    return [*problems[:LISTED], f"... and {len(problems) - LISTED} more bad files"]


def decode_all(files: list[Path], channels: int, size: int, into: Path, shown) -> tuple[np.ndarray, list[str]]:
    """Every image decoded into a uint8 memory map (files order); the files whose pixels cannot be decoded."""
    pixels = np.lib.format.open_memmap(into, mode="w+", dtype=np.uint8, shape=(len(files), channels, size, size))
    problems = []
    for i, path in enumerate(files):
        try:
            pixels[i] = image_decode.decode(path.read_bytes(), channels, size)
        except (image_decode.ImageError, OSError) as error:
            problems.append(f"{shown(path)}: {error}")
    pixels.flush()
    return pixels, problems


def undecodable(path: Path, channels: int, shown: Callable[[Path], str]) -> str:
    """The problem with a file's pixel data, or ''."""
    try:
        image_decode.decode(path.read_bytes(), channels, MIN_IMAGE_SIZE)
    except (image_decode.ImageError, OSError) as error:
        return f"{shown(path)}: {error}"
    return ""


def write_split(directory: Path, pixels: np.ndarray, rows: np.ndarray, labels: np.ndarray) -> None:
    """One split's images (gathered from `pixels` a block at a time) and labels."""
    directory.mkdir(parents=True, exist_ok=True)
    out = np.lib.format.open_memmap(
        directory / IMAGES_FILE, mode="w+", dtype=np.uint8, shape=(len(rows), *pixels.shape[1:])
    )
    for start in range(0, len(rows), BLOCK_IMAGES):
        out[start : start + BLOCK_IMAGES] = pixels[rows[start : start + BLOCK_IMAGES]]
    out.flush()
    del out
    np.save(directory / LABELS_FILE, labels[rows].astype(np.int64))


def channel_moments(path: Path) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of pixel / 255 over a split's file, a block at a time."""
    pixels = np.load(path, mmap_mode="r")
    channels = pixels.shape[1]
    total, squares, count = np.zeros(channels), np.zeros(channels), 0
    for start in range(0, len(pixels), BLOCK_IMAGES):
        block = np.asarray(pixels[start : start + BLOCK_IMAGES], dtype=np.float64) / 255.0
        total += block.sum(axis=(0, 2, 3))
        squares += (block**2).sum(axis=(0, 2, 3))
        count += block.shape[0] * block.shape[2] * block.shape[3]
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
    return mean.tolist(), [float(s) if s > 1e-6 else 1.0 for s in std]


# -- the kind's preparation ------------------------------------------------------------------------------------------


def prepare(args: argparse.Namespace, problems: list[str], split, min_images: int) -> dict[str, int]:
    """Read, check, split, size, decode and write labelled images (preprocess.PREPARE["image"]); `split` is
    preprocessing's seeded stratified split, `min_images` the images a class needs for it."""
    root = Path(args.input)
    if not root.exists():
        raise StepError(f"input {root} does not exist")
    # a manifest's images outside InputDataUri are fetched beside the output (in a job: on its storage volume), not
    # into it: the output folder is uploaded as the splits
    beside = Path(args.output_dir).resolve().parent
    beside.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="regula-fetched-", dir=beside) as fetched:
        return prepare_from(args, problems, split, min_images, Path(fetched))


def prepare_from(args, problems: list[str], split, min_images: int, fetched: Path) -> dict[str, int]:
    from steps.quality import quality_metric

    root, names = Path(args.input), {}
    if args.image_column:
        files, raw_labels, source, names = list_manifest(args, problems, fetched)
        base = find_manifest(root).parent
    else:
        files, raw_labels = list_class_folders(root, problems)
        source, base = "class folders", root

    def shown(path: Path) -> str:  # the name the report gives a file: its URI where it was fetched
        return names.get(path) or shown_name(path, base)

    if args.problem_type == "regression":
        problems.append("images are classified: ProblemType regression is not supported for image input")
    headers, bad = read_headers(files, shown)
    good = [i for i, h in enumerate(headers) if h is not None]
    by_channels = Counter(headers[i]["channels"] for i in good)
    if len(by_channels) > 1:  # name the images of the rarer kind: those are the odd ones out
        rare = min(by_channels, key=by_channels.get)
        odd = [shown(files[i]) for i in good if headers[i]["channels"] == rare][:10]
        counts = ", ".join(f"{n} {image_decode.channel_name(c)}" for c, n in sorted(by_channels.items()))
        listing = ", ".join(odd) + (", ..." if by_channels[rare] > len(odd) else "")
        problems.append(
            f"mixed channels: {counts} images; convert them to one mode (the {by_channels[rare]} "
            f"{image_decode.channel_name(rare)}: {listing})"
        )
    if not files:
        problems.append("no images under the input: expected <class>/<image> files, or a manifest with ImageColumn")
        raise TableError(problems + bad)
    classes = sort_classes(list(set(raw_labels)))
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([index[v] for v in raw_labels], dtype=np.int64)
    counts = np.bincount(labels, minlength=len(classes))
    if len(classes) < 2:
        problems.append(f"a single class ({classes[0]}): need at least 2")
    rare = [f"'{c}' ({n} images)" for c, n in zip(classes, counts, strict=True) if n < min_images]
    if rare:
        problems.append(f"too few images to split: {len(rare)} classes have fewer than the {min_images} images a "
                        f"stratified train/validation/test split needs: {', '.join(rare[:10])}")  # fmt: skip
    metric = None
    try:
        metric = quality_metric(args.quality_metric, "classification", len(classes))
    except ValueError as error:
        problems.append(str(error))
    if problems or bad:  # the pixels of the readable files are checked too: the one report names every bad file
        bad += [p for i in good if (p := undecodable(files[i], headers[i]["channels"], shown))]
        raise TableError(problems + listed(bad))

    channels = next(iter(by_channels))
    size, size_reason = image_size([headers[i] for i in good], args.image_size)
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    scratch = output / "all-images.npy"  # every image in file order, split into the split files below
    try:
        pixels, bad = decode_all(files, channels, size, scratch, shown)
        if bad:
            raise TableError(listed(bad))
        positions = split(labels, True, args)
        for name in SPLITS:
            write_split(output / name, pixels, positions[name], labels)
        del pixels
    finally:
        scratch.unlink(missing_ok=True)
    mean, std = channel_moments(output / "train" / IMAGES_FILE)  # the training split only
    raw = output / "test" / RAW_IMAGES
    raw.mkdir(parents=True, exist_ok=True)
    for i, row in enumerate(positions["test"][:RAW_SAMPLE_IMAGES]):
        shutil.copyfile(files[row], raw / f"{i:05d}{files[row].suffix.lower()}")

    train_counts = np.bincount(labels[positions["train"]], minlength=len(classes))
    schema = {
        "kind": "image",
        "source": source,
        "target": args.target if args.image_column else "class folder",
        "problem_type": "classification",
        "problem_type_reason": "images are classified",
        "input_columns": [args.image_column] if args.image_column else [],
        "image": {
            "size": size,
            "size_reason": size_reason,
            "channels": channels,
            "mean": mean,
            "std": std,
            "augmentation": args.image_augmentation,
        },
        "statistics": statistics([headers[i] for i in good]),
        "rows": {name: len(positions[name]) for name in SPLITS},
        "seed": args.seed,
        "classes": classes,
        "class_counts": train_counts.tolist(),
        "class_weight": class_weight(args.class_weight, metric),
    }
    (output / "train" / SCHEMA).write_text(json.dumps(schema, indent=2, default=str))
    print(
        f"preprocess: {len(files)} images ({source}), {len(classes)} classes, {image_decode.channel_name(channels)}, "
        f"resized to {size}x{size} ({size_reason}); mean {[round(m, 4) for m in mean]} std "
        f"{[round(s, 4) for s in std]} (training split) -> " + ", ".join(f"{n} {len(positions[n])}" for n in SPLITS),
        flush=True,
    )
    return {
        "InputRows": len(files),
        "TrainRows": len(positions["train"]),
        "ValidationRows": len(positions["validation"]),
    }
