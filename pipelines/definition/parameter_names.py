"""The pipeline parameters' names, defaults and meanings, without the SageMaker SDK: for `--help` and for checking
`--param` names before rendering (seconds) starts.

pipelines/definition/pipeline.py declares the parameters for the definition; tests/test_cli_conventions.py holds this
table to what it renders (names, types and defaults), so the two cannot drift apart. The values come from
steps/defaults.py, declared once there."""

from __future__ import annotations

import difflib

from pipelines.errors import UsageValueError
from pipelines.settings import Settings
from steps import defaults as d

# name: (type, default for Settings, what it means)
PARAMETERS: dict[str, tuple[str, object, str]] = {
    "InputDataUri": ("String", lambda s: s.demo_data_uri, "S3 URI of the table (run --local: use --data)"),
    "TargetColumn": ("String", d.TARGET_COLUMN, "the label column (run --local: use --target)"),
    "ProblemType": ("String", "auto", "auto, classification or regression"),
    "ExcludeColumns": ("String", "", "comma-separated columns not to use as features (ids, dates, leaks)"),
    "CategoricalColumns": ("String", "", "comma-separated number columns that are categories"),
    "TextColumns": ("String", "", "comma-separated columns that are free text (else detected)"),
    "MaxTrainRows": ("Integer", 0, "keep at most this many training rows (0: all)"),
    "TimeColumn": ("String", "", "time series: the time column (dates or a whole-number index); empty: a table"),
    "SeriesColumn": ("String", "", "time series: comma-separated columns that name a series"),
    "Horizon": ("Integer", d.HORIZON, "time series: steps ahead to forecast"),
    "Season": ("Integer", d.SEASON, "time series: steps per season (0: inferred)"),
    "KnownColumns": ("String", "", "time series: columns known at the forecast time"),
    "ImageColumn": ("String", d.IMAGE_COLUMN, "a manifest's image-path column (empty: class folders)"),
    "ImageSize": ("Integer", d.IMAGE_SIZE, "images resized to this square side (0: from the data)"),
    "ImageAugmentation": ("String", d.IMAGE_AUGMENTATION, ", ".join(d.IMAGE_AUGMENTATIONS) + " (training only)"),
    "ProcessingInstanceType": ("String", "ml.m5.large", "SageMaker processing instance"),
    "TrainingInstanceType": ("String", lambda s: s.training_instance_type, "SageMaker training instance"),
    "TrainingInstanceCount": ("Integer", 1, "training instances (torch distributed)"),
    "Dropout": ("Float", d.DROPOUT, "round 1 dropout"),
    "L1": ("Float", d.L1, "round 1 L1 penalty"),
    "L2": ("Float", d.L2, "round 1 L2 (AdamW weight decay)"),
    "RegularizationGrowth": ("Float", d.GROWTH, "the largest step of the regularization level per round"),
    "HiddenLayers": ("String", d.HIDDEN, "hidden layer widths, comma-separated"),
    "LearningRate": ("Float", d.LEARNING_RATE, "0: automatic"),
    "BatchSize": ("Integer", d.BATCH_SIZE, "0: automatic"),
    "ClassWeight": ("String", d.CLASS_WEIGHT, "auto, none or balanced (in the decision rule, not the loss)"),
    "MaxEpochs": ("Integer", d.MAX_EPOCHS, "epochs at most per round"),
    "Patience": ("Integer", d.PATIENCE, "epochs without improvement before stopping"),
    "StopOnOverfitting": ("String", d.STOP_ON_OVERFITTING, "yes: end a job whose overfitting held Patience epochs"),
    "MaxGap": ("Float", d.MAX_GAP, "largest accepted generalization gap (relative, minus 1 standard error)"),
    "QualityMetric": ("String", d.QUALITY_METRIC, ", ".join(d.QUALITY_METRICS)),
    "MinLift": ("Float", d.MIN_LIFT, "validation quality must beat the baseline by this"),
    "MinQuality": ("Float", d.MIN_QUALITY, "and reach this"),
    "RegisterBestCandidate": ("String", d.REGISTER_CANDIDATE, "yes: register the best round for review on give-up"),
    "ModelPackageGroupName": ("String", d.MODEL_PACKAGE_GROUP, "the registry group packages go to"),
    "ModelApprovalStatus": ("String", d.APPROVAL_STATUS, "Approved only if rendered with --allow-auto-approval"),
    "MaxRuntimeSeconds": ("Integer", d.MAX_RUNTIME_SECONDS, "each job's time limit"),
    "MaxWaitSeconds": ("Integer", d.MAX_WAIT_SECONDS, "spot training only: runtime plus waiting"),
    "MetricsNamespace": ("String", d.METRICS_NAMESPACE, "CloudWatch namespace"),
    "CodeVersion": ("String", "unknown", "recorded with the package (run --local: the git commit)"),
}
SPOT_ONLY = ("MaxWaitSeconds",)


def declared(settings: Settings) -> dict[str, tuple[str, object]]:
    """(type, default) of every parameter the definition rendered for `settings` declares."""
    names = [n for n in PARAMETERS if settings.spot or n not in SPOT_ONLY]
    return {n: (PARAMETERS[n][0], _default(n, settings)) for n in names}


def light_definition(settings: Settings) -> dict:
    """The parameters as a rendered definition declares them, for checking values before rendering
    (pipelines/definition/parameters.parameter_values); the rendered definition is checked again after."""
    return {"Parameters": [{"Name": n, "Type": t, "DefaultValue": v} for n, (t, v) in declared(settings).items()]}


def _default(name: str, settings: Settings):
    default = PARAMETERS[name][1]
    return default(settings) if callable(default) else default


def help_text(settings: Settings | None = None) -> str:
    """The `--param` names with their defaults, for an epilog."""
    settings = settings or Settings()
    lines = ["pipeline parameters (--param NAME=VALUE; names are case-insensitive):"]
    for name, (_, _, meaning) in PARAMETERS.items():
        default = _default(name, settings)
        shown = "(spot only)" if name in SPOT_ONLY and not settings.spot else repr(default)
        lines.append(f"  {name:<23} {shown:<22} {meaning}")
    return "\n".join(lines)


def did_you_mean(name: str, known: list[str], quote: str = "") -> str:
    """' (did you mean X?)' for the closest known name, compared without case; '' when none is close."""
    lowered = {k.lower(): k for k in known}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean {quote}{lowered[close[0]]}{quote}?)" if close else ""


def canonical_names(params: dict[str, str], known: list[str]) -> dict[str, str]:
    """`params` with each name spelled as declared (maxgap -> MaxGap). Unknown names: ValueError naming each, with
    the closest known name, before anything is rendered or started."""
    lowered = {k.lower(): k for k in known}
    named, unknown = {}, []
    for name, value in params.items():
        if name in known or name.lower() in lowered:
            canonical = name if name in known else lowered[name.lower()]
            if canonical in named:
                raise UsageValueError(f"pipeline parameter {canonical} given twice (as {name} too)")
            named[canonical] = value
        else:
            unknown.append(f"{name}{did_you_mean(name, known)}")
    if unknown:
        raise UsageValueError(f"unknown pipeline parameter(s): {', '.join(unknown)}; known: {', '.join(known)}")
    return named
