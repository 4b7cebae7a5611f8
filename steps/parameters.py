"""What each pipeline parameter may be: checked before the first job, everywhere a run can start.

`regula run --local` and `regula start` check the values on the client; on SageMaker the Preprocess step checks
them again before it reads any data (a console start or an API call skips the client), so a bad value never costs
a training job. Every problem is reported at once.
"""

from __future__ import annotations

import csv
import math
import re

from steps.defaults import (
    APPROVAL_STATUS,
    CLASS_WEIGHTS,
    IMAGE_AUGMENTATIONS,
    MAX_DROPOUT,
    MAX_HIDDEN_LAYERS,
    MAX_IMAGE_SIZE,
    MAX_LAYER_SIZE,
    MAX_SEASON,
    MIN_GROWTH,
    MIN_IMAGE_SIZE,
    PROBLEM_TYPES,
    QUALITY_METRICS,
    REGISTER_CANDIDATE_CHOICES,
    STOP_ON_OVERFITTING_CHOICES,
)

# name: (whole number?, allowed, what is allowed); every number must also be finite
NUMBERS = {
    "MaxTrainRows": (True, lambda v: v >= 0, ">= 0"),
    "ImageSize": (
        True,
        lambda v: v == 0 or MIN_IMAGE_SIZE <= v <= MAX_IMAGE_SIZE,
        f"0 (from the images) or between {MIN_IMAGE_SIZE} and {MAX_IMAGE_SIZE}",
    ),  # fmt: skip
    "Horizon": (True, lambda v: 1 <= v <= 1000, "between 1 and 1000"),
    "Season": (True, lambda v: 0 <= v <= MAX_SEASON, f"between 0 and {MAX_SEASON} (0: inferred)"),
    "TrainingInstanceCount": (True, lambda v: 1 <= v <= 100, "between 1 and 100"),
    "Dropout": (False, lambda v: 0 <= v < MAX_DROPOUT, f"in [0, {MAX_DROPOUT})"),
    "L1": (False, lambda v: v >= 0, ">= 0"),
    "L2": (False, lambda v: v >= 0, ">= 0"),
    "RegularizationGrowth": (False, lambda v: MIN_GROWTH <= v <= 1000, f"in [{MIN_GROWTH}, 1000] (the largest step)"),
    "LearningRate": (False, lambda v: 0 <= v <= 1, "in [0, 1] (0: automatic)"),
    "BatchSize": (True, lambda v: 0 <= v <= 1_000_000, "in [0, 1000000] (0: automatic)"),
    "MaxEpochs": (True, lambda v: 1 <= v <= 100_000, "between 1 and 100000"),
    "Patience": (True, lambda v: 1 <= v <= 100_000, "between 1 and 100000"),
    "MaxGap": (False, lambda v: 0 <= v <= 10, "in [0, 10]"),
    "MinLift": (False, lambda v: 0 <= v <= 1, "in [0, 1]"),
    "MinQuality": (False, lambda v: -1 <= v <= 1, "in [-1, 1]"),
    # SageMaker's limits: processing jobs run at most 7 days, training (with spot waiting) 28
    "MaxRuntimeSeconds": (True, lambda v: 1 <= v <= 604_800, "between 1 and 604800 (7 days)"),
    "MaxWaitSeconds": (True, lambda v: 1 <= v <= 2_419_200, "between 1 and 2419200 (28 days)"),
}
CHOICES = {
    "ProblemType": PROBLEM_TYPES,
    "QualityMetric": QUALITY_METRICS,
    "ClassWeight": CLASS_WEIGHTS,
    "ImageAugmentation": IMAGE_AUGMENTATIONS,
    "RegisterBestCandidate": REGISTER_CANDIDATE_CHOICES,
    "StopOnOverfitting": STOP_ON_OVERFITTING_CHOICES,
    "ModelApprovalStatus": (APPROVAL_STATUS, "Approved"),  # Approved only where rendered with --allow-auto-approval
}


# The training step's environment names the device its image was built for (the rendered --training-device).
TRAINING_DEVICE_VARIABLE = "REGULA_TRAINING_DEVICE"
# HiddenLayers and MetricsNamespace reach the training job in its environment, not as hyperparameters (definition.py)
HIDDEN_LAYERS_VARIABLE = "REGULA_HIDDEN_LAYERS"
METRICS_NAMESPACE_VARIABLE = "REGULA_METRICS_NAMESPACE"
STOP_ON_OVERFITTING_VARIABLE = "REGULA_STOP_ON_OVERFITTING"  # a String parameter too: never a hyperparameter
INSTANCE_TYPE = re.compile(r"ml\.(?P<family>[a-z]+)(?P<generation>\d+)(?P<attributes>[a-z-]*)\.\w+")


def instance_kind(instance_type: str) -> tuple[str, str] | None:
    """(accelerator, architecture) of a SageMaker instance type: ("gpu", "x86_64") for ml.g5.xlarge, ("cpu",
    "arm64") for ml.m6g.large, ("neuron", ...) for Trainium and Inferentia; None when it does not parse."""
    match = INSTANCE_TYPE.fullmatch(str(instance_type))
    if not match:
        return None
    family, attributes = match["family"], match["attributes"]
    accelerator = "gpu" if family in ("g", "p") else "neuron" if family in ("trn", "inf") else "cpu"
    return accelerator, "arm64" if "g" in attributes else "x86_64"


def training_instance_problem(instance_type: str, device: str, image: str = "") -> str | None:
    """Why a training image built for `device` ("cpu" or "gpu", x86_64) cannot use `instance_type`, or None."""
    kind = instance_kind(instance_type)
    if kind is None or device not in ("cpu", "gpu"):
        return None  # not judged here: SageMaker refuses names it does not know
    accelerator, architecture = kind
    training_image = f"the training image {image}" if image else "the training image"
    if architecture != "x86_64":
        return f"TrainingInstanceType {instance_type} is a Graviton (arm64) instance; {training_image} is x86_64"
    if accelerator == "neuron":
        return (
            f"TrainingInstanceType {instance_type} is a Trainium/Inferentia instance; {training_image} runs PyTorch "
            "on CPUs or CUDA GPUs"
        )
    if accelerator == "gpu" and device == "cpu":
        return (
            f"TrainingInstanceType {instance_type} is a GPU instance, but {training_image} is the CPU build (the "
            "pipeline was rendered for CPU training), which would leave the GPU idle: render with --training-device "
            "gpu, or choose a CPU type such as ml.m5.xlarge"
        )
    if accelerator == "cpu" and device == "gpu":
        return (
            f"TrainingInstanceType {instance_type} has no GPU, but {training_image} is the GPU build (the pipeline "
            "was rendered with --training-device gpu): choose a GPU type such as ml.g5.xlarge, or render for CPU"
        )
    return None


def hidden_layers(text: str) -> list[int]:
    """'256,128' -> [256, 128]; ValueError unless it is 1 to MAX_HIDDEN_LAYERS sizes, each 1 to MAX_LAYER_SIZE, in
    ASCII digits (int() would also take '1_0' and other scripts' digits)."""
    items = [h.strip() for h in str(text).split(",")]
    items = items[:-1] if len(items) > 1 and not items[-1] else items  # a trailing comma, as before
    sizes = [int(h) for h in items if re.fullmatch(r"[0-9]{1,9}", h)]
    if not items or len(sizes) != len(items) or min(sizes) < 1:
        raise ValueError(f"HiddenLayers must be comma-separated positive layer sizes, got {text!r}")
    if len(sizes) > MAX_HIDDEN_LAYERS or max(sizes) > MAX_LAYER_SIZE:
        raise ValueError(
            f"HiddenLayers may have at most {MAX_HIDDEN_LAYERS} layers of at most {MAX_LAYER_SIZE} units, got {text!r}"
        )
    return sizes


# The free-text parameters, checked against what the AWS API that takes them accepts, so that a bad value fails here
# and not in a billed job; none of them ever reaches a shell (docs/parameters.md).
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
CONTAINER_ARGUMENT = 256  # CreateProcessingJob: the most characters of one container argument
# the step option each column parameter is passed as, `--option=value` in one container argument
COLUMN_OPTIONS = {"TargetColumn": "--target", "ExcludeColumns": "--exclude-columns",
                  "CategoricalColumns": "--categorical-columns", "TimeColumn": "--time-column",
                  "SeriesColumn": "--series-columns", "KnownColumns": "--known-columns",
                  "ImageColumn": "--image-column", "TextColumns": "--text-columns"}  # fmt: skip
METRICS_NAMESPACE = re.compile(r"[0-9A-Za-z._/#: -]{1,255}")  # CloudWatch's namespace characters
ENTITY_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")  # a model package group's name
METADATA_VALUE = re.compile(r"[\w .:/=+@-]{1,128}")  # CustomerMetadataProperties values (CodeVersion)
S3_URI = re.compile(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\x00-\x1f\x7f]*)?")
INSTANCE_TYPE_NAME = re.compile(r"ml\.[a-z0-9-]{1,20}\.[a-z0-9]{1,20}")


def string_problem(name: str, value: str) -> str | None:
    """Why the free-text parameter `name` may not be `value`, or None (also None for a name not checked here)."""
    text = str(value)
    if name in COLUMN_OPTIONS:
        longest = CONTAINER_ARGUMENT - len(COLUMN_OPTIONS[name]) - 1
        if name == "TargetColumn" and not text:
            return "TargetColumn must name a column, got ''"
        if CONTROL.search(text):
            return f"{name} must not hold control characters (newline, tab, ...), got {text!r}"
        if len(text) > longest:
            return f"{name} must be at most {longest} characters, got {len(text)}"
    elif name == "MetricsNamespace":
        if not METRICS_NAMESPACE.fullmatch(text) or text.startswith((":", "AWS/")):
            return (
                "MetricsNamespace must be 1-255 of the characters CloudWatch allows (letters, digits, . - _ / # : "
                f"and space), not start with ':' or 'AWS/', got {text!r}"
            )
    elif name == "ModelPackageGroupName":
        if not ENTITY_NAME.fullmatch(text):
            return (
                "ModelPackageGroupName must be 1-63 letters, digits and hyphens, starting and ending with a letter or "
                f"digit (SageMaker's pattern), got {text!r}"
            )
    elif name == "CodeVersion":
        if not METADATA_VALUE.fullmatch(text):
            return f"CodeVersion must be 1-128 letters, digits, spaces or . : / = + @ - _, got {text!r}"
    elif name == "InputDataUri":
        if len(text) > 1024 or not S3_URI.fullmatch(text):
            return f"InputDataUri must be an s3://bucket/key URI of at most 1024 characters, got {text!r}"
    elif name in ("TrainingInstanceType", "ProcessingInstanceType"):
        if not INSTANCE_TYPE_NAME.fullmatch(text):
            return f"{name} must be a SageMaker instance type such as ml.m5.large, got {text!r}"
    return None


def column_names(text: str) -> list[str]:
    """ExcludeColumns/CategoricalColumns: comma-separated names, each stripped; a name holding a comma is quoted as in
    CSV, `"a,b",c`, and a quote inside a quoted name doubled (docs/parameters.md)."""
    rows = list(csv.reader([str(text)], skipinitialspace=True)) if str(text).strip() else []
    return [name.strip() for name in (rows[0] if rows else []) if name.strip()]


STRINGS = ("InputDataUri", *COLUMN_OPTIONS, "MetricsNamespace", "ModelPackageGroupName", "CodeVersion",
           "TrainingInstanceType", "ProcessingInstanceType")  # fmt: skip


def problems(values: dict) -> list[str]:
    """Why each given value is not allowed; parameters not listed here, or not given, are not checked."""
    found = []
    for name, (whole, allowed, text) in NUMBERS.items():
        if name not in values:
            continue
        try:
            number = float(values[name])
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number) or (whole and not number.is_integer()) or not allowed(number):
            kind = "a whole number" if whole else "a number"
            found.append(f"{name} must be {kind} {text}, got {values[name]!r}")
    for name, allowed in CHOICES.items():
        if name in values and values[name] not in allowed:
            found.append(f"{name} must be one of {', '.join(allowed)}, got {values[name]!r}")
    if not found and {"MaxRuntimeSeconds", "MaxWaitSeconds"} <= set(values):
        if float(values["MaxWaitSeconds"]) < float(values["MaxRuntimeSeconds"]):
            found.append("MaxWaitSeconds must be at least MaxRuntimeSeconds (spot training waits and runs within it)")
    if values.get("RegisterBestCandidate") == "yes" and values.get("ModelApprovalStatus") == "Approved":
        # one register step serves both: a candidate must never be registered as Approved
        found.append(
            "RegisterBestCandidate=yes registers rounds that were not accepted: it cannot be combined with "
            "ModelApprovalStatus=Approved"
        )
    if "HiddenLayers" in values:
        try:
            hidden_layers(values["HiddenLayers"])
        except ValueError as error:
            found.append(str(error))
    found += [p for p in (string_problem(n, values[n]) for n in STRINGS if n in values) if p]
    return found
