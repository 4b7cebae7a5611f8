"""What each pipeline parameter may be: checked before the first job, everywhere a run can start.

`regula run --local` and `regula start` check the values on the client; on SageMaker the Preprocess step checks
them again before it reads any data (a console start or an API call skips the client), so a bad value never costs
a training job. Every problem is reported at once.
"""

from __future__ import annotations

import csv
import math
import re

from steps import parameter_table as table
from steps.defaults import MAX_HIDDEN_LAYERS, MAX_LAYER_SIZE

# The training step's environment names the device its image was built for (the rendered --training-device).
TRAINING_DEVICE_VARIABLE = "REGULA_TRAINING_DEVICE"
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


# The free-text parameters, checked against what the AWS API that takes them accepts (the table's `rule`), so that a
# bad value fails here and not in a billed job; none of them ever reaches a shell (docs/parameters.md).
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
COLUMN_RULES = ("target", "column", "columns")  # passed as `--option=value` in one container argument
METRICS_NAMESPACE = re.compile(r"[0-9A-Za-z._/#: -]{1,255}")  # CloudWatch's namespace characters
ENTITY_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")  # a model package group's name
METADATA_VALUE = re.compile(r"[\w .:/=+@-]{1,128}")  # CustomerMetadataProperties values (CodeVersion)
S3_URI = re.compile(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\x00-\x1f\x7f]*)?")
INSTANCE_TYPE_NAME = re.compile(r"ml\.[a-z0-9-]{1,20}\.[a-z0-9]{1,20}")


def string_problem(name: str, value: str) -> str | None:
    """Why the free-text parameter `name` may not be `value`, or None (also None for a name not checked here)."""
    text = str(value)
    rule = next((p.rule for p in table.TABLE if p.name == name), "")
    if rule in COLUMN_RULES:
        preprocess = table.parameter(name).gets("preprocess")
        longest = table.CONTAINER_ARGUMENT - (len(preprocess.option) + 1 if preprocess else 0)
        if rule == "target" and not text:
            return f"{name} must name a column, got ''"
        if CONTROL.search(text):
            return f"{name} must not hold control characters (newline, tab, ...), got {text!r}"
        if len(text) > longest:
            return f"{name} must be at most {longest} characters, got {len(text)}"
    elif rule == "namespace":
        if not METRICS_NAMESPACE.fullmatch(text) or text.startswith((":", "AWS/")):
            return (
                f"{name} must be 1-255 of the characters CloudWatch allows (letters, digits, . - _ / # : "
                f"and space), not start with ':' or 'AWS/', got {text!r}"
            )
    elif rule == "group":
        if not ENTITY_NAME.fullmatch(text):
            return (
                f"{name} must be 1-63 letters, digits and hyphens, starting and ending with a letter or "
                f"digit (SageMaker's pattern), got {text!r}"
            )
    elif rule == "metadata":
        if not METADATA_VALUE.fullmatch(text):
            return f"{name} must be 1-128 letters, digits, spaces or . : / = + @ - _, got {text!r}"
    elif rule == "s3_uri":
        if len(text) > 1024 or not S3_URI.fullmatch(text):
            return f"{name} must be an s3://bucket/key URI of at most 1024 characters, got {text!r}"
    elif rule == "instance_type":
        if not INSTANCE_TYPE_NAME.fullmatch(text):
            return f"{name} must be a SageMaker instance type such as ml.m5.large, got {text!r}"
    return None


def column_names(text: str) -> list[str]:
    """ExcludeColumns/CategoricalColumns: comma-separated names, each stripped; a name holding a comma is quoted as in
    CSV, `"a,b",c`, and a quote inside a quoted name doubled (docs/parameters.md)."""
    rows = list(csv.reader([str(text)], skipinitialspace=True)) if str(text).strip() else []
    return [name.strip() for name in (rows[0] if rows else []) if name.strip()]


def problems(values: dict) -> list[str]:
    """Why each given value is not allowed (steps/parameter_table.py: limits, choices, rules); parameters not in the
    table, or not given, are not checked. Numbers first, then choices, then the free text, each in the table's
    order."""
    given = [p for p in table.TABLE if p.name in values]
    found = []
    for p in (p for p in given if p.limit):
        try:
            number = float(values[p.name])
        except (TypeError, ValueError):
            number = math.nan
        whole = p.type == "Integer"
        if not math.isfinite(number) or (whole and not number.is_integer()) or not p.limit.allowed(number):
            kind = "a whole number" if whole else "a number"
            found.append(f"{p.name} must be {kind} {p.limit.text}, got {values[p.name]!r}")
    for p in (p for p in given if p.choices):
        if values[p.name] not in p.choices:
            found.append(f"{p.name} must be one of {', '.join(p.choices)}, got {values[p.name]!r}")
    if not found and {"MaxRuntimeSeconds", "MaxWaitSeconds"} <= set(values):
        if float(values["MaxWaitSeconds"]) < float(values["MaxRuntimeSeconds"]):
            found.append("MaxWaitSeconds must be at least MaxRuntimeSeconds (spot training waits and runs within it)")
    if values.get("RegisterBestCandidate") == "yes" and values.get("ModelApprovalStatus") == "Approved":
        # one register step serves both: a candidate must never be registered as Approved
        found.append(
            "RegisterBestCandidate=yes registers rounds that were not accepted: it cannot be combined with "
            "ModelApprovalStatus=Approved"
        )
    for p in (p for p in given if p.rule == "hidden_layers"):
        try:
            hidden_layers(values[p.name])
        except ValueError as error:
            found.append(str(error))
    found += [m for m in (string_problem(p.name, values[p.name]) for p in given if p.rule) if m]
    return found
