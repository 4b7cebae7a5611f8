"""Evaluation step: how well does the trained model generalize, and is it good enough? It decides.

SageMaker Processing entry point. Unpacks model.tar.gz, loads it through its own inference code (the code that will
serve it), and measures it on the train, validation and test splits beside the trivial baseline (training class
shares or mean): loss, accuracy, balanced accuracy, macro F1 and ROC AUC (binary), or RMSE, MAE and R2. It also sends
raw test rows, as the team gave them, through the serving path and checks they score exactly as the evaluated
features do. The round's verdict (register, overfit, underfit) comes from steps/quality.py, what the pipeline does
next (the decision: those, collapsed or candidate) and its reason from `select` here; the conditions branch on
it. Writes evaluation.json (a pipeline PropertyFile, also the model-quality report attached to the registered model,
in SageMaker's layout) and sends the results to CloudWatch.

With `--refit-of` (the deciding evaluation's folder) it scores the refit of the selected round instead and writes the
evaluation the register step reads: the deciding one, with the refit model selected where it is kept
(steps/refit.py). It decides nothing and sends nothing: the deciding evaluation did.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path

import numpy as np

from steps import archive as archive_files
from steps import inputs, reference, refit, serving_code
from steps.cloudwatch import MetricEmitter
from steps.contract import (
    NAIVE,
    SPLITS,
    StepError,
    file_sha256,
    read_round_evaluation,
    run,
    torch_threads,
)
from steps.parameter_table import add_options
from steps.parameter_table import values as parameter_values
from steps.parameters import problems as parameter_problems
from steps.quality import (
    QUALITY_Z,
    UNDERFIT_ADVICE,
    WENT_TOO_FAR,
    baseline_outputs,
    best_candidate,
    decide,
    describe,
    gap_exceeds,
    gap_limit,
    quality_metric,
    quality_standard_error,
    reference_limit,
    reference_verdict,
    relative_gap,
    relative_gap_se,
    round_summary,
    split_metrics,
    worse_than,
)

RAW_TOLERANCE = 1e-4  # served and evaluated outputs of the same rows may differ by float rounding only


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--data-dir", required=True, help="holds train/, validation/ and test/")
    parser.add_argument("--output-dir", required=True)
    add_options(parser, "evaluate")  # the pipeline parameters it gets (steps/parameter_table.py)
    parser.add_argument("--final-round", action="store_true", help="the ladder's last round: overfit ends the run")
    parser.add_argument("--earlier", default="", help="a folder with round1/, round2/, ...: earlier evaluations")
    parser.add_argument("--model-uri", default="", help="where this round's model.tar.gz is (for the registry)")
    parser.add_argument("--evaluation-uri", default="", help="where this report is uploaded (for the registry)")
    parser.add_argument("--pipeline-name", default="")
    parser.add_argument("--execution-id", default="")
    parser.add_argument("--refit-of", default="", help="the deciding evaluation's folder: score its selected refit")
    args = parser.parse_args()
    problems = parameter_problems(parameter_values(args, "evaluate"))
    if problems:
        raise StepError("; ".join(problems))
    return args


def unpack(model_dir: Path, into: Path) -> tuple[Path, str]:
    """The model folder, and the sha256 of the artifact it came from (the registry records it)."""
    archive = model_dir / "model.tar.gz"
    if not archive.exists():
        raise StepError(f"no model.tar.gz in {model_dir}")
    archive_files.extract(archive, into)
    return into, file_sha256(archive)


def check_served_rows(inference, predictor, data_dir: Path, test_features) -> int:
    """Score the raw test inputs (the kind's: steps/inputs.py raw_requests) through the serving code, as requests;
    refuse the model if they differ from what was evaluated."""
    for how, requests in inputs.raw_requests(data_dir / "test", predictor.schema, inference):
        served = np.concatenate(
            [predictor.outputs(predictor.features(inference.read_rows(body, kind))) for body, kind in requests]
        )
        expected = predictor.outputs(test_features.subset(slice(0, len(served))))
        same = served.shape == expected.shape and np.allclose(served, expected, atol=RAW_TOLERANCE, rtol=RAW_TOLERANCE)
        if not same or not np.isfinite(served).all():
            worst = float(np.max(np.abs(served - expected))) if served.shape == expected.shape else float("inf")
            raise StepError(
                f"the serving code scores raw {how} rows differently from the evaluated features (max diff {worst})"
            )
    return len(served)


def linear_reference(data_dir: Path, schema: dict, metric: str, predictor, baseline_loss: float):
    """The linear model's gap and validation quality on these splits (steps/reference.py), read afresh: the scoring
    loop keeps no split in memory. Announced: on a wide text table it takes seconds."""
    print("evaluate: the gap is above MaxGap: fitting the linear reference on the same features", flush=True)
    splits = [inputs.read(data_dir / name, name, schema) for name in ("train", "validation")]
    labels_of = predictor.labels if predictor.classification else None
    try:
        fitted = reference.fit(schema, metric, splits[0], splits[1], baseline_loss, labels_of)
    except (ValueError, MemoryError, ArithmeticError) as error:  # scikit-learn's refusals, a full memory
        print(f"evaluate: no linear reference ({type(error).__name__}: {error}); the gate is MaxGap alone", flush=True)
        return None
    if fitted is None:
        print(
            "evaluate: no linear reference (a training split over its bound of rows or values, one class in it, a "
            "validation class it lacks, or no finite fit); the gate is MaxGap alone",
            flush=True,
        )
    return fitted


def naive_forecasts(directory: Path):
    """A time series split's seasonal naive forecast per row (preprocessing writes it), or None."""
    path = directory / NAIVE
    return np.load(path) if path.exists() else None


def earlier_rounds(folder: str, round_: int) -> list[dict]:
    """Rounds 1 .. round_-1, from `folder`/round<i>/evaluation.json."""
    return [
        read_round_evaluation(Path(folder) / f"round{i}" / "evaluation.json", i, round_summary)
        for i in range(1, round_)
    ]


def select(verdict: str, reason: str, current: dict, earlier: list[dict], final_round: bool, candidate: str):
    """What the pipeline does after this round (decision, reason) and the round it registers, if any.

    The first round that passes the gate is registered, also when its gap is above MaxGap within its noise (trying a
    stronger round as well gained nothing on the tuning tables' test rows: benchmarks/README.md, the borderline
    rule). A round that passes the gate but validates worse than an earlier round beyond the noise
    (steps/quality.worse_than) is never accepted: while a round is left it is `collapsed` and the next round goes
    between the last overfitting level and its level; otherwise it ends the ladder as underfit. A round that fails
    the gate on its quality (finite numbers below the floor, the gap within MaxGap) while an earlier round that
    overfit validated better beyond the noise lost that quality to the regularization, not for lack of capacity: it
    is `collapsed` the same way, and its reason says so. A round whose losses are not finite (training diverged) is
    never `collapsed`: it measured no quality to bisect on. When no round was accepted, the run gives up and the
    reason names the best round so far by validation quality; with RegisterBestCandidate=yes the decision becomes
    `candidate`: that round is registered for review, not accepted."""
    everyone = [*earlier, current]
    better = worse_than(current, everyone) if verdict == "register" else None
    lost = lost_to_regularization(verdict, current, earlier) if better is None else None
    if better is not None:
        q, b = current["quality"], better["quality"]
        reason = (
            f"{reason}, but it validates worse than round {better['round']} ({q['metric']} {q['validation']:.4f} "
            f"against {b['validation']:.4f}, more than {QUALITY_Z:g} standard error of the difference): the "
            "regularization that closes the gap costs more than the measurement's noise"
        )
        verdict = "underfit"
    elif lost is not None:
        reason = lost_reason(reason, current, lost)
    if (better or lost) is not None:
        if not final_round:
            return "collapsed", f"{reason}; the next round tries a level between the last overfitting one and it", None
        if lost is not None:
            reason += (
                "; no round is left to try a level between them: render the pipeline with more rounds (--rounds) or "
                "a smaller RegularizationGrowth"
            )
    if verdict == "register":
        return "register", reason, current
    if verdict == "overfit" and not final_round:
        return verdict, reason, None
    best = best_candidate(everyone)
    if best is None:
        return verdict, f"{reason}; no round has finite metrics to keep", None
    if candidate == "yes":
        return "candidate", f"{reason}; registering the best round for review, not accepted: {describe(best)}", best
    hint = "RegisterBestCandidate=yes registers it for review"
    return verdict, f"{reason}; the best round was {describe(best)} ({hint})", None


def lost_to_regularization(verdict: str, current: dict, earlier: list[dict]) -> dict | None:
    """The earlier overfitting round that validates better, beyond the noise, than `current`, a round below the
    quality floor with finite numbers (not one that diverged), or None: then the stronger regularization, not the
    model's capacity, cost the quality."""
    finite = math.isfinite(current["quality"]["validation"]) and math.isfinite(current["gap"])
    if verdict != "underfit" or not finite:
        return None
    return worse_than(current, [r for r in earlier if r["verdict"] == "overfit"])


def level_of(summary: dict) -> str:
    level = (summary.get("regularization") or {}).get("level")
    return f" (level {level:.3g})" if isinstance(level, int | float) else ""


def lost_reason(reason: str, current: dict, better: dict) -> str:
    """decide's underfit reason, its advice (more capacity, less regularization) replaced by what happened: an
    earlier, weaker round validated better and overfit, so this round's regularization went too far."""
    q, b = current["quality"], better["quality"]
    return (
        f"{reason.removesuffix(': ' + UNDERFIT_ADVICE)}, but round {better['round']}{level_of(better)} validated "
        f"{b['validation']:.4f} (it overfit): the regularization of this round{level_of(current)} {WENT_TOO_FAR} "
        f"({q['validation']:.4f}, more than {QUALITY_Z:g} standard error of the difference below "
        f"round {better['round']}), not a lack of capacity"
    )


def model_quality_layout(schema: dict, metrics: dict, gap: float) -> dict:
    """The test metrics in the layout SageMaker's Model Registry shows."""
    test = metrics["test"]

    def value(v):
        return {"value": v, "standard_deviation": "NaN"}

    if schema["problem_type"] == "regression":
        names = {"mse": test["rmse"] ** 2, "rmse": test["rmse"], "mae": test["mae"], "r2": test["r2"]}
        if "r2_levels" in test:  # time series: R2 of the forecast values, as users read it; the gate's is the change's
            names.update(r2=test["r2_levels"], r2_change_over_naive=test["r2"])
        names.update({"mase": test["mase"]} if "mase" in test else {})  # time series: against the seasonal naive
        return {"regression_metrics": {k: value(v) for k, v in names.items()}}
    names = {k: test[k] for k in ("accuracy", "balanced_accuracy", "macro_f1", "roc_auc") if k in test}
    names["generalization_gap"] = gap
    key = "binary_classification_metrics" if len(schema["classes"]) == 2 else "multiclass_classification_metrics"
    return {key: {("auc" if k == "roc_auc" else k): value(v) for k, v in names.items()}}


def measure(args) -> dict:
    """The model's metrics on every split beside the baseline's, its config and history, its artifact's sha256, and
    how many raw test inputs scored through its serving code as evaluated."""
    import torch

    torch.set_num_threads(torch_threads(0))  # scoring a small MLP: one thread
    with tempfile.TemporaryDirectory() as tmp:
        model_dir, artifact_sha256 = unpack(Path(args.model_dir), Path(tmp))
        try:
            inference = serving_code.import_inference(model_dir / "code")  # the serving code inside the artifact
        except (FileNotFoundError, ImportError) as error:
            raise StepError(str(error)) from None
        predictor = inference.Predictor(model_dir)
        schema = predictor.schema
        history = json.loads((model_dir / "history.json").read_text())
        data_dir = Path(args.data_dir)
        metric = quality_metric(args.quality_metric, schema["problem_type"], len(schema.get("classes") or []))
        metrics, baseline = {}, {}
        for name in SPLITS:
            features, labels = inputs.read(data_dir / name, name, schema)
            outputs = predictor.outputs(features)
            predicted = predictor.labels(outputs) if predictor.classification else None
            naive = naive_forecasts(data_dir / name)
            metrics[name] = split_metrics(schema, outputs, labels, predicted, naive)
            if name != "train":
                baseline[name] = split_metrics(schema, baseline_outputs(schema, len(labels)), labels, None, naive)
            if name == "validation":  # the noise of the quality the ladder compares rounds on
                validation_se = quality_standard_error(metric, schema, outputs, labels, predicted)
            if name == "test":
                served_rows = check_served_rows(inference, predictor, data_dir, features)
            del features
    return {
        "schema": schema, "config": predictor.config, "history": history, "metric": metric, "metrics": metrics,
        "baseline": baseline, "validation_se": validation_se, "served_rows": served_rows,
        "artifact_sha256": artifact_sha256, "predictor": predictor,
    }  # fmt: skip


def write_report(report: dict, output_dir: str) -> None:
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    (output / "evaluation.json").write_text(json.dumps(report, indent=2))


def refit_evaluation(args, measured: dict) -> None:
    """The evaluation the register step reads after a refit (steps/refit.py)."""
    decided = json.loads((Path(args.refit_of) / "evaluation.json").read_text())
    metric, metrics = measured["metric"], measured["metrics"]
    scored = {
        "config": measured["config"],
        "metrics": metrics,
        "quality": {"validation": metrics["validation"][metric], "test": metrics["test"][metric]},
        "artifact_sha256": measured["artifact_sha256"],
        **model_quality_layout(measured["schema"], metrics, decided["selected"]["gap"]),  # the registered round's
    }
    report = refit.report(decided, scored, args.model_uri, args.evaluation_uri)
    write_report(report, args.output_dir)
    block = report["refit"]
    kept = "registered" if block["kept"] else "not registered"
    print(
        f"evaluate: refit of round {decided['selected']['round']}: {block['why']}; {metric} test "
        f"{block['round_test']:.4f} as trained, {block['test']:.4f} refit ({kept}"
        f"{': ' + block['decision'] if 'decision' in block else ''})"
    )


def main() -> None:
    args = parse_args()
    measured = measure(args)
    if args.refit_of:
        refit_evaluation(args, measured)
        return
    schema, config, history, metric = (measured[k] for k in ("schema", "config", "history", "metric"))
    metrics, baseline, validation_se = measured["metrics"], measured["baseline"], measured["validation_se"]
    predictor, data_dir = measured["predictor"], Path(args.data_dir)
    artifact_sha256, served_rows = measured["artifact_sha256"], measured["served_rows"]
    loss_gap = metrics["validation"]["loss"] - metrics["train"]["loss"]
    gap = relative_gap(metrics["validation"]["loss"], metrics["train"]["loss"], baseline["validation"]["loss"])
    gap_se = relative_gap_se(
        metrics["validation"]["loss_se"], metrics["train"]["loss_se"], baseline["validation"]["loss"]
    )
    quality = metrics["validation"][metric]
    baseline_quality = baseline["validation"][metric]
    later = [h["gap"] for h in history if h["epoch"] > config["best_epoch"] and math.isfinite(h["gap"])]
    later_gap = max(later) if later else None  # the curve past the restored weights: did it go on to memorize?
    linear = None
    if args.gap_reference == "linear" and reference.applies(schema) and gap_exceeds(gap, gap_se, args.max_gap):
        linear = linear_reference(data_dir, schema, metric, predictor, baseline["validation"]["loss"])
    verdict, reason = decide(
        gap, gap_se, quality, baseline_quality, metric, args.max_gap, args.min_lift, args.min_quality, later_gap,
        linear,
    )  # fmt: skip
    floor = max(baseline_quality + args.min_lift, args.min_quality)
    limit = gap_limit(gap, gap_se, quality, linear, args.max_gap, floor)
    report = {
        "round": config["round"],
        "model_uri": args.model_uri,
        "evaluation_uri": args.evaluation_uri,
        "problem_type": schema["problem_type"],
        # the table's file name, recorded with the package (SageMaker keeps at most 256 characters a value)
        "data": str(schema.get("source") or "")[-256:],
        "regularization": config["regularization"],
        "model": {
            "name": config.get("model", "Regula's MLP"),
            "code_sha256": (config.get("model_code") or {}).get("sha256", "builtin:mlp"),
            "dropout_modules": config.get("dropout_modules"),
        },
        "training": config.get("training", {}),
        "feature_usage": config.get("feature_usage"),  # e.g. the text n-grams the model still uses (L1)
        "epochs": config["epochs"],
        "best_epoch": config["best_epoch"],
        "metrics": metrics,
        "baseline": baseline,
        "quality": {
            "metric": metric,
            "validation": quality,
            "validation_se": validation_se,
            "baseline": baseline_quality,
            "test": metrics["test"][metric],
        },
        "generalization_gap": {
            "relative": gap,
            "standard_error": gap_se,
            "loss": loss_gap,
            "after_best_epoch": later_gap,
        },
        # the linear model a gap above MaxGap was compared with, the gap it holds this round to, and whether it
        # excused the round's gap (or the first of its conditions that failed: steps/quality.reference_verdict)
        "reference": {
            **linear.as_dict(),
            "limit": reference_limit(linear, gap_se),
            "verdict": reference_verdict(gap, gap_se, quality, linear, args.max_gap, floor),
        }
        if linear
        else None,
        **({"split": schema["split"]} if "split" in schema else {}),  # how the rows were split, where the kind says
        "thresholds": {
            "max_gap": args.max_gap,
            "gap_limit": limit,
            "min_lift": args.min_lift,
            "min_quality": args.min_quality,
        },
        "round_decision": verdict,
        "artifact_sha256": artifact_sha256,
        "served_rows_checked": served_rows,
        "history": history,
        **model_quality_layout(schema, metrics, gap),
    }
    earlier = earlier_rounds(args.earlier, report["round"])
    decision, reason, selected = select(
        verdict, reason, round_summary(report), earlier, args.final_round, args.register_candidate
    )
    report["decision"], report["reason"] = decision, reason
    # what the registry records: the registered round, or this one where nothing is registered
    accepted = "true" if decision == "register" else "false"
    report["selected"] = {**(selected or round_summary(report)), "accepted": accepted}
    write_report(report, args.output_dir)
    print(
        f"evaluate: round {report['round']}: {metric} train={metrics['train'][metric]:.4f} "
        f"validation={quality:.4f} test={metrics['test'][metric]:.4f} (baseline {baseline_quality:.4f}), "
        f"gap={gap:.4f} (max {args.max_gap:g}{f', linear reference {linear.gap:.4f}' if linear else ''}) -> "
        f"{decision}: {reason}"
    )

    emitter = MetricEmitter(args.metrics_namespace, {"Pipeline": args.pipeline_name}, {"Execution": args.execution_id})
    kept = report["selected"]  # the registered round's numbers where one is registered, else this round's
    emitter.put_many(
        {
            "FinalGeneralizationGap": kept["gap"],
            "FinalValidationQuality": kept["quality"]["validation"],
            "TestQuality": kept["quality"]["test"],
            "Overfitting": float(verdict == "overfit"),
            "GapOverMaxGap": gap - args.max_gap,
            # the run ends here without a model: what the team is emailed about (pipelines/alerts/resources.py)
            "RunGaveUp": float(decision in ("underfit", "candidate") or (decision == "overfit" and args.final_round)),
        }
    )
    emitter.close()


if __name__ == "__main__":
    run(main, "evaluate")
