"""Regula's built-in model for images: a small convolutional network (the model contract's build_model for the
image input kind; steps/model.py dispatches to it).

Two or three blocks of 3x3 convolutions (32, 64, then 128 channels on images of 32 px and more), each block
convolution -> batch norm -> ReLU -> 2x2 max pool (while the map is 8 px or more) -> Dropout2d; then the map is
averaged down to at most 4x4, flattened, and a 128-wide hidden layer with Dropout comes before the class logits.
The ladder's dropout is `p` of every Dropout2d and Dropout alike (steps/model_code.py sets it); L1 and L2 act on the
convolution and linear weights.

Augmentation (ImageAugmentation, recorded by preprocessing in the schema) happens inside the model, in training mode
only, like dropout: "flip" mirrors a random half of each batch left to right, "crop" shifts each image by up to
1/8 of its side (zero padding where it moves in: a random crop of the padded image). Evaluation and serving see
the images as they are.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

WIDTHS = (32, 64, 128)
HIDDEN = 128
POOLED = 4  # the convolutions' output is averaged to at most POOLED x POOLED before the linear layers


class Augment(nn.Module):
    """Random flips and shifts of a batch, in training mode only."""

    def __init__(self, augmentation: str, size: int):
        super().__init__()
        parts = set(augmentation.split(",")) - {"none", ""}
        self.flip, self.shift = "flip" in parts, (max(1, size // 8) if "crop" in parts else 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        if self.flip:
            mirrored = torch.rand(len(x), 1, 1, 1, device=x.device) < 0.5
            x = torch.where(mirrored, x.flip(3), x)
        if self.shift:
            n, _, h, w = x.shape
            padded = F.pad(x, (self.shift,) * 4)
            dy = torch.randint(0, 2 * self.shift + 1, (n,), device=x.device)
            dx = torch.randint(0, 2 * self.shift + 1, (n,), device=x.device)
            rows = (dy[:, None] + torch.arange(h, device=x.device)[None, :])[:, None, :, None]
            cols = (dx[:, None] + torch.arange(w, device=x.device)[None, :])[:, None, None, :]
            batch = torch.arange(n, device=x.device)[:, None, None, None]
            channel = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
            x = padded[batch, channel, rows, cols]
        return x


class CNN(nn.Module):
    def __init__(self, input_shape, n_outputs: int, dropout: float, augmentation: str = "none"):
        super().__init__()
        channels, size = int(input_shape[0]), int(input_shape[1])
        self.augment = Augment(augmentation, size)
        layers: list[nn.Module] = []
        widths = WIDTHS if size >= 32 else WIDTHS[:2]
        for width in widths:
            layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
            if size >= 8:
                layers.append(nn.MaxPool2d(2))
                size //= 2
            layers.append(nn.Dropout2d(dropout))
            channels = width
        pooled = min(size, POOLED)
        layers.append(nn.AdaptiveAvgPool2d(pooled))
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * pooled * pooled, HIDDEN),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(HIDDEN, n_outputs),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(self.augment(x)))


def build_model(spec, dropout: float) -> nn.Module:
    """The built-in image model for `spec` (extra: input_shape [channels, size, size], augmentation)."""
    return CNN(spec.extra["input_shape"], spec.n_outputs, dropout, spec.extra.get("augmentation", "none"))
