"""Evaluation step: how well does the trained model generalize?

SageMaker Processing entry point. Unpacks model.tar.gz, loads it through its
own inference code (the code that will serve it), and measures loss and
accuracy on the train, validation and test splits. The generalization gap
is the validation loss minus the training loss; the accuracy gap (training
minus validation accuracy) is reported beside it. Writes evaluation.json (a
pipeline PropertyFile, also the model-quality report attached to the
registered model) and sends the gap to CloudWatch.
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
from cloudwatch import MetricEmitter
from contract import SPLITS, StepError, read_split, run


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", default="/opt/ml/processing/model")
    parser.add_argument("--data-dir", default="/opt/ml/processing", help="holds train/, validation/ and test/")
    parser.add_argument("--output-dir", default="/opt/ml/processing/evaluation")
    parser.add_argument("--max-gap", type=float, default=0.2)
    parser.add_argument("--min-val-accuracy", type=float, default=0.85)
    parser.add_argument("--metrics-namespace", default="Regula")
    parser.add_argument("--pipeline-name", default="")
    parser.add_argument("--execution-id", default="")
    return parser.parse_args()


def unpack(model_dir: Path, into: Path) -> Path:
    archive = model_dir / "model.tar.gz"
    if not archive.exists():
        if (model_dir / "model.pt").exists():
            return model_dir
        raise StepError(f"no model.tar.gz in {model_dir}")
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into


def split_metrics(predictor, x: np.ndarray, y: np.ndarray) -> dict:
    probs = predictor.probabilities(x)
    picked = np.clip(probs[np.arange(len(y)), y], 1e-12, 1.0)
    return {"loss": float(-np.log(picked).mean()), "accuracy": float((probs.argmax(1) == y).mean()), "rows": len(y)}


def decide(gap: float, val_accuracy: float, max_gap: float, min_val_accuracy: float) -> str:
    if val_accuracy < min_val_accuracy:
        return "underfit"
    return "register" if gap <= max_gap else "overfit"


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = unpack(Path(args.model_dir), Path(tmp))
        sys.path.insert(0, str(model_dir / "code"))
        from inference import Predictor  # the serving code inside the artifact

        predictor = Predictor(model_dir)
        history = json.loads((model_dir / "history.json").read_text())
        metrics = {name: split_metrics(predictor, *read_split(Path(args.data_dir) / name, name)) for name in SPLITS}

    gap = metrics["validation"]["loss"] - metrics["train"]["loss"]
    accuracy_gap = metrics["train"]["accuracy"] - metrics["validation"]["accuracy"]
    decision = decide(gap, metrics["validation"]["accuracy"], args.max_gap, args.min_val_accuracy)
    report = {
        "round": predictor.config["round"],
        "regularization": predictor.config["regularization"],
        "epochs": predictor.config["epochs"],
        "best_epoch": predictor.config["best_epoch"],
        "metrics": metrics,
        "generalization_gap": {"loss": gap, "accuracy": accuracy_gap},
        "thresholds": {"max_gap": args.max_gap, "min_val_accuracy": args.min_val_accuracy},
        "decision": decision,
        "history": history,
        # the SageMaker model-quality layout, shown by the Model Registry
        "multiclass_classification_metrics": {
            "accuracy": {"value": metrics["test"]["accuracy"], "standard_deviation": "NaN"},
            "validation_accuracy": {"value": metrics["validation"]["accuracy"], "standard_deviation": "NaN"},
            "generalization_gap": {"value": gap, "standard_deviation": "NaN"},
        },
    }
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    (output / "evaluation.json").write_text(json.dumps(report, indent=2))
    print(
        f"evaluate: round {report['round']}: train_accuracy={metrics['train']['accuracy']:.4f} "
        f"val_accuracy={metrics['validation']['accuracy']:.4f} test_accuracy={metrics['test']['accuracy']:.4f} "
        f"gap={gap:.4f} (max {args.max_gap}) -> {decision}"
    )

    emitter = MetricEmitter(args.metrics_namespace, {"Pipeline": args.pipeline_name}, {"Execution": args.execution_id})
    emitter.put_many(
        {
            "FinalGeneralizationGap": gap,
            "FinalValidationAccuracy": metrics["validation"]["accuracy"],
            "TestAccuracy": metrics["test"]["accuracy"],
            "Overfitting": float(decision == "overfit"),
        }
    )
    emitter.close()


if __name__ == "__main__":
    run(main, "evaluate")
