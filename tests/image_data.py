"""Labelled images for the image tests, drawn with PIL into temporary folders: no download, seeded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle")


def shape_image(shape: str, rng: np.random.Generator, size: int = 16, mode: str = "L") -> Image.Image:
    """One shape at a random place and scale on a noisy background."""
    background = rng.integers(0, 60, (size, size), dtype=np.uint8)
    image = Image.fromarray(background, "L")
    draw = ImageDraw.Draw(image)
    half = rng.uniform(0.22, 0.38) * size
    cx, cy = rng.uniform(half, size - half, 2)
    box = [cx - half, cy - half, cx + half, cy + half]
    fill = int(rng.integers(170, 256))
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    else:
        draw.polygon([(cx, cy - half), (cx - half, cy + half), (cx + half, cy + half)], fill=fill)
    return image.convert(mode)


def class_folders(root: Path, per_class: int = 30, size: int = 16, seed: int = 0, suffix: str = ".png") -> Path:
    """`root`/<shape>/<i><suffix>: `per_class` images of each shape."""
    rng = np.random.default_rng(seed)
    for shape in SHAPES:
        (root / shape).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            shape_image(shape, rng, size).save(root / shape / f"{i:03d}{suffix}")
    return root


def manifest(root: Path, per_class: int = 30, size: int = 16, seed: int = 0, image_column: str = "path") -> Path:
    """`root`/labels.csv (columns `image_column`, label) naming `root`/pictures/<n>.png, relative to the manifest."""
    rng = np.random.default_rng(seed)
    (root / "pictures").mkdir(parents=True, exist_ok=True)
    lines = [f"{image_column},label"]
    for n, shape in enumerate(s for s in SHAPES for _ in range(per_class)):
        shape_image(shape, rng, size).save(root / "pictures" / f"{n:04d}.png")
        lines.append(f"pictures/{n:04d}.png,{shape}")
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return root / "labels.csv"
