"""Inference handlers for the SageMaker PyTorch serving container.

Packed as code/inference.py in model.tar.gz. Takes raw (unscaled) feature
rows as CSV or JSON, applies the training split's scaler, returns the
predicted classes and their probabilities as JSON.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import torch
from model import load


class Predictor:
    def __init__(self, model_dir: str | Path):
        self.model, self.config = load(Path(model_dir))
        schema = json.loads((Path(model_dir) / "schema.json").read_text())
        self.features = schema["features"]
        self.mean = np.asarray(schema["scaler"]["mean"], dtype=np.float64)
        self.scale = np.asarray(schema["scaler"]["scale"], dtype=np.float64)
        self.classes = self.config["classes"]

    @torch.no_grad()
    def probabilities(self, scaled: np.ndarray) -> np.ndarray:
        logits = self.model(torch.as_tensor(scaled, dtype=torch.float32))
        return torch.softmax(logits, dim=1).numpy()

    def predict(self, raw: np.ndarray) -> dict:
        raw = np.atleast_2d(np.asarray(raw, dtype=np.float64))
        if raw.shape[1] != len(self.features):
            raise ValueError(f"expected {len(self.features)} features per row, got {raw.shape[1]}")
        probs = self.probabilities((raw - self.mean) / self.scale)
        return {
            "predictions": [self.classes[i] for i in probs.argmax(1)],
            "probabilities": probs.round(6).tolist(),
        }


def model_fn(model_dir: str) -> Predictor:
    return Predictor(model_dir)


def input_fn(body, content_type: str = "text/csv") -> np.ndarray:
    if isinstance(body, bytes):
        body = body.decode()
    if content_type == "text/csv":
        return np.loadtxt(io.StringIO(body), delimiter=",", ndmin=2)
    if content_type == "application/json":
        data = json.loads(body)
        return np.asarray(data.get("instances", data) if isinstance(data, dict) else data, dtype=np.float64)
    raise ValueError(f"unsupported content type {content_type}; use text/csv or application/json")


def predict_fn(data: np.ndarray, predictor: Predictor) -> dict:
    return predictor.predict(data)


def output_fn(prediction: dict, accept: str = "application/json") -> str:
    return json.dumps(prediction)
