"""The pipeline parameters, declared once: name, type, default, what is allowed, what it means, and which step
scripts get it under which option. Adding a parameter is one entry in TABLE; everything else reads it:

- the definition's parameters and each step's arguments, hyperparameters and environment (pipelines/definition/),
- each step script's argparse options for them (`add_options`) and the values it checks (`values`),
- the limits every run start and the first step check (steps/parameters.py `problems`),
- `regula run --help`'s parameter list and the `--param` name check (pipelines/definition/parameter_names.py),
- the table in docs/parameters.md (`markdown`; `python -m steps.parameter_table docs/parameters.md` rewrites it).

A default with a reason to be what it is lives in steps/defaults.py beside that reason. This module travels with the
step code into the containers: it imports nothing of `pipelines`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from steps import defaults as d

# How a step gets a parameter (To.via):
ARGUMENT = "argument"  # `--option value`: two container arguments
JOINED = "joined"  # `--option=value` in one argument: a value that begins with '-' (a column named -x) stays a value
# the training job's hyperparameter named like the option (`--max_epochs`: max_epochs). Numbers only: SageMaker's
# driver writes hyperparameters into a file a shell sources, unescaped (docs/parameters.md)
HYPERPARAMETER = "hyperparameter"
ENVIRONMENT = "environment"  # the training job's environment variable `variable`: free text, never through a shell

HIDDEN_LAYERS_VARIABLE = "REGULA_HIDDEN_LAYERS"
METRICS_NAMESPACE_VARIABLE = "REGULA_METRICS_NAMESPACE"
STOP_ON_OVERFITTING_VARIABLE = "REGULA_STOP_ON_OVERFITTING"
REFIT_VARIABLE = "REGULA_REFIT"
CONTAINER_ARGUMENT = 256  # CreateProcessingJob: the most characters of one container argument


@dataclass(frozen=True)
class Limit:
    """What a number may be, beside finite (and whole, for an Integer): `allowed(value)`, said as `text`."""

    allowed: Callable[[float], bool]
    text: str


def at_least(low: float) -> Limit:
    return Limit(lambda v: v >= low, f">= {low}")


def between(low: float, high: float, note: str = "") -> Limit:
    return Limit(lambda v: low <= v <= high, f"between {low} and {high}{note}")


def interval(low: float, high: float, note: str = "", open_high: bool = False) -> Limit:
    if open_high:
        return Limit(lambda v: low <= v < high, f"in [{low}, {high}){note}")
    return Limit(lambda v: low <= v <= high, f"in [{low}, {high}]{note}")


@dataclass(frozen=True)
class To:
    """One step script that gets the parameter, and how."""

    step: str  # "preprocess", "train" or "evaluate": steps/<step>.py
    option: str  # that script's option for it
    via: str = ARGUMENT
    variable: str = ""  # via ENVIRONMENT: the job's variable, which the option defaults to
    # The option comes right after this parameter's in the step's arguments (hyperparameters, environment): the order
    # the definition has always had, kept because a step's cache key holds its arguments. Empty: the table's order.
    after: str = ""
    checked: bool = True  # the script checks the value by this table's rules before it does anything


@dataclass(frozen=True)
class Parameter:
    name: str  # as the pipeline declares it, and `--param NAME=VALUE` names it
    type: str  # "String", "Integer" or "Float"
    default: object  # the definition's default (unless `setting` gives it) and the step options' default
    help: str  # one line: `regula run --help`, the step scripts' --help, the docs
    limit: Limit | None = None  # numbers
    choices: tuple[str, ...] = ()  # the only values a String may take
    rule: str = ""  # free text: what it is checked against (RULES; steps/parameters.py string_problem)
    to: tuple[To, ...] = ()  # the step scripts that get it; others are job settings the definition uses itself
    enum: bool = False  # the definition declares `choices` as its EnumValues (SageMaker refuses others at start)
    setting: str = ""  # the Settings property (pipelines/settings.py) that gives its default where it is rendered
    shown_default: str = ""  # the docs' default where `setting` gives it
    spot_only: bool = False  # declared only in a definition rendered with --spot
    doc: str = ""  # more for docs/parameters.md (Markdown, links relative to docs/)

    def gets(self, step: str) -> To | None:
        return next((to for to in self.to if to.step == step), None)


# What the free text may hold (checked in steps/parameters.py string_problem), and why: a bad value fails at once
# instead of inside a billed job. {longest}: the characters left beside the option in one container argument.
RULES = {
    "s3_uri": "`s3://bucket/key`, at most 1,024 characters, no control characters (a processing input's S3Uri)",
    "target": "a column name: no control characters, at most {longest} characters (one container argument holds "
    "256 with the option)",
    "column": "a column name or empty: no control characters, at most {longest} characters",
    "columns": "comma-separated column names, CSV quoting (below), or empty: no control characters, at most "
    "{longest} characters",
    "namespace": "1-255 of letters, digits, `. - _ / # :` and space; not starting with `:` or `AWS/` (CloudWatch's "
    "namespace rule)",
    "group": "`^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$` (SageMaker's entity name pattern)",
    "metadata": "1-128 letters, digits, spaces, `. : / = + @ - _` (a model package metadata value)",
    "instance_type": "`ml.<family>.<size>` (SageMaker's instance type names)",
    "hidden_layers": f"1 to {d.MAX_HIDDEN_LAYERS} comma-separated sizes, each 1 to {d.MAX_LAYER_SIZE:,}, in ASCII "
    "digits (a model that fits in memory)",
}

TABLE: tuple[Parameter, ...] = (
    Parameter(
        "InputDataUri", "String", "", "S3 URI of the table (run --local: use --data)", rule="s3_uri",
        # the job's input too (SageMaker checks its S3Uri; a local run uploads --data): the option only places a
        # manifest's S3 image URIs
        to=(To("preprocess", "--input-uri", after="ImageAugmentation", checked=False),),
        setting="demo_data_uri", shown_default="`s3://<bucket>/<prefix>/demo/digits.csv`",
        doc="CSV or Parquet table (file or prefix with one file), or a prefix of images (class folders, or a "
        "manifest: [images.md](images.md))",
    ),
    Parameter(
        "TargetColumn", "String", d.TARGET_COLUMN, "the label column (run --local: use --target)", rule="target",
        to=(To("preprocess", "--target", JOINED),),
    ),
    Parameter(
        "ProblemType", "String", "auto", "auto, classification or regression", choices=d.PROBLEM_TYPES, enum=True,
        to=(To("preprocess", "--problem-type"),), doc="auto: decided from the target",
    ),
    Parameter(
        "ExcludeColumns", "String", "", "comma-separated columns not to use as features (ids, dates, leaks)",
        rule="columns", to=(To("preprocess", "--exclude-columns", JOINED),),
    ),
    Parameter(
        "CategoricalColumns", "String", "", "comma-separated number columns that are categories", rule="columns",
        to=(To("preprocess", "--categorical-columns", JOINED),),
    ),
    Parameter(
        "TimeColumn", "String", "", "time series: the time column (dates or a whole-number index); empty: a table",
        rule="column", to=(To("preprocess", "--time-column", JOINED),), doc="[forecasting.md](forecasting.md)",
    ),
    Parameter(
        "SeriesColumn", "String", "", "time series: comma-separated columns that name a series", rule="columns",
        to=(To("preprocess", "--series-columns", JOINED),),
    ),
    Parameter(
        "Horizon", "Integer", d.HORIZON, "time series: steps ahead to forecast", limit=between(1, 1000),
        to=(To("preprocess", "--horizon"),),
    ),
    Parameter(
        "Season", "Integer", d.SEASON, "time series: steps per season (0: inferred)",
        limit=between(0, d.MAX_SEASON, " (0: inferred)"), to=(To("preprocess", "--season"),),
    ),
    Parameter(
        "KnownColumns", "String", "", "time series: columns known at the forecast time", rule="columns",
        to=(To("preprocess", "--known-columns", JOINED),),
    ),
    Parameter(
        "TextColumns", "String", "", "comma-separated columns that are free text (else detected)", rule="columns",
        to=(To("preprocess", "--text-columns", JOINED),), doc="[text.md](text.md)",
    ),
    Parameter(
        "MaxTrainRows", "Integer", 0, "keep at most this many training rows (0: all)", limit=at_least(0),
        to=(To("preprocess", "--max-train-rows"),), doc="the local demo uses 300",
    ),
    Parameter(
        "ImageColumn", "String", d.IMAGE_COLUMN, "a manifest's image-path column (empty: class folders)",
        rule="column", to=(To("preprocess", "--image-column", JOINED),), doc="[images.md](images.md)",
    ),
    Parameter(
        "ImageSize", "Integer", d.IMAGE_SIZE, "images resized to this square side (0: from the data)",
        limit=Limit(
            lambda v: v == 0 or d.MIN_IMAGE_SIZE <= v <= d.MAX_IMAGE_SIZE,
            f"0 (from the images) or between {d.MIN_IMAGE_SIZE} and {d.MAX_IMAGE_SIZE}",
        ),
        to=(To("preprocess", "--image-size"),),
    ),
    Parameter(
        "ImageAugmentation", "String", d.IMAGE_AUGMENTATION, ", ".join(d.IMAGE_AUGMENTATIONS) + " (training only)",
        choices=d.IMAGE_AUGMENTATIONS, to=(To("preprocess", "--image-augmentation"),),
        doc="random flips and shifts",
    ),
    Parameter(
        "ProcessingInstanceType", "String", "ml.m5.large", "SageMaker processing instance", rule="instance_type"
    ),
    Parameter(
        "TrainingInstanceType", "String", "", "SageMaker training instance", rule="instance_type",
        setting="training_instance_type", shown_default="`ml.m5.xlarge` (`ml.g5.xlarge` with --training-device gpu)",
        doc="one the training image can use: `regula start` and the training job refuse others",
    ),
    Parameter(
        "TrainingInstanceCount", "Integer", 1, "training instances (torch distributed)", limit=between(1, 100),
        doc="`regula run --local` starts at most one training process per CPU of the machine (at least 2)",
    ),
    Parameter(
        "Dropout", "Float", d.DROPOUT, "round 1 dropout", limit=interval(0, d.MAX_DROPOUT, open_high=True),
        to=(To("train", "--dropout", HYPERPARAMETER),),
    ),
    Parameter("L1", "Float", d.L1, "round 1 L1 penalty", limit=at_least(0), to=(To("train", "--l1", HYPERPARAMETER),)),
    Parameter(
        "L2", "Float", d.L2, "round 1 L2 (AdamW weight decay)", limit=at_least(0),
        to=(To("train", "--l2", HYPERPARAMETER),),
        doc="training bounds it to 0.5 / learning rate, where AdamW's decay would make the weights diverge",
    ),
    Parameter(
        "RegularizationGrowth", "Float", d.GROWTH, "the largest step of the regularization level per round",
        limit=interval(d.MIN_GROWTH, 1000, " (the largest step)"), to=(To("train", "--growth", HYPERPARAMETER),),
    ),
    Parameter(
        "HiddenLayers", "String", d.HIDDEN, "hidden layer widths, comma-separated", rule="hidden_layers",
        to=(To("train", "--hidden", ENVIRONMENT, HIDDEN_LAYERS_VARIABLE),),
    ),
    Parameter(
        "LearningRate", "Float", d.LEARNING_RATE, "0: automatic", limit=interval(0, 1, " (0: automatic)"),
        to=(To("train", "--learning_rate", HYPERPARAMETER),), doc="automatic: 1e-3 x sqrt(batch / 64)",
    ),
    Parameter(
        "BatchSize", "Integer", d.BATCH_SIZE, "0: automatic", limit=interval(0, 1_000_000, " (0: automatic)"),
        to=(To("train", "--batch_size", HYPERPARAMETER),),
        doc="automatic: 64 for small tables, growing with the rows to about 250 steps per epoch (at most 4096)",
    ),
    Parameter(
        "ClassWeight", "String", d.CLASS_WEIGHT, "auto, none or balanced (in the decision rule, not the loss)",
        choices=d.CLASS_WEIGHTS, to=(To("preprocess", "--class-weight", after="QualityMetric"),),
        doc="`balanced`: predict the class with the highest probability relative to its training share; `none`: the "
        "most probable class; `auto`: balanced for balanced accuracy and macro F1",
    ),
    Parameter(
        "MaxEpochs", "Integer", d.MAX_EPOCHS, "epochs at most per round", limit=between(1, 100_000),
        to=(To("train", "--max_epochs", HYPERPARAMETER),),
        doc="an epoch is one pass over the training rows, or 262,144 of them drawn at random on larger tables",
    ),
    Parameter(
        "Patience", "Integer", d.PATIENCE, "epochs without improvement before stopping", limit=between(1, 100_000),
        to=(To("train", "--patience", HYPERPARAMETER),),
        doc=f"early stopping on validation loss, best weights restored; it also waits {d.PATIENCE_STEPS:,} optimizer "
        f"steps without improvement and {d.MIN_STEPS:,} in all, which bind on small tables ([ladder.md](ladder.md))",
    ),
    Parameter(
        "StopOnOverfitting", "String", d.STOP_ON_OVERFITTING, "yes: end a job whose overfitting held Patience epochs",
        choices=d.STOP_ON_OVERFITTING_CHOICES, enum=True,
        to=(To("train", "--stop_on_overfitting", ENVIRONMENT, STOP_ON_OVERFITTING_VARIABLE),),
        doc="keeping its best weights ([alerts.md](alerts.md))",
    ),
    Parameter(
        "Refit", "String", d.REFIT, "yes: retrain the registered round on training + validation rows",
        choices=d.REFIT_CHOICES, enum=True, to=(To("train", "--refit", ENVIRONMENT, REFIT_VARIABLE),),
        doc="for its best epoch count, after the ladder decided; tables over 200,000 training rows are not refit "
        "([ladder.md](ladder.md#refit))",
    ),
    Parameter(
        "MaxGap", "Float", d.MAX_GAP, "largest accepted generalization gap (relative, minus 1 standard error)",
        limit=interval(0, 10),
        to=(To("train", "--max_gap", HYPERPARAMETER, after="MaxEpochs"), To("evaluate", "--max-gap")),
    ),
    Parameter(
        "GapReference", "String", d.GAP_REFERENCE, "linear: a gap above MaxGap passes within a linear model's",
        choices=d.GAP_REFERENCE_CHOICES, enum=True, to=(To("evaluate", "--gap-reference"),),
        doc="on the same features and split, when the round validates as well ([ladder.md](ladder.md)); none: MaxGap "
        "alone",
    ),
    Parameter(
        "QualityMetric", "String", d.QUALITY_METRIC, ", ".join(d.QUALITY_METRICS), choices=d.QUALITY_METRICS,
        to=(To("preprocess", "--quality-metric", after="TextColumns"), To("evaluate", "--quality-metric")),
        doc="auto: balanced_accuracy for classification, r2 for regression; roc_auc: binary only",
    ),
    Parameter(
        "MinLift", "Float", d.MIN_LIFT, "validation quality must beat the baseline by this", limit=interval(0, 1),
        to=(To("evaluate", "--min-lift"),),
    ),
    Parameter(
        "MinQuality", "Float", d.MIN_QUALITY, "and reach this", limit=interval(-1, 1),
        to=(To("evaluate", "--min-quality"),), doc="an absolute floor on the validation quality, beside the lift",
    ),
    Parameter(
        "RegisterBestCandidate", "String", d.REGISTER_CANDIDATE, "yes: register the best round for review on give-up",
        choices=d.REGISTER_CANDIDATE_CHOICES, enum=True, to=(To("evaluate", "--register-candidate"),),
        doc="marked not accepted (regula:accepted=false)",
    ),
    Parameter(
        "ModelPackageGroupName", "String", d.MODEL_PACKAGE_GROUP, "the registry group packages go to", rule="group"
    ),
    Parameter(
        "ModelApprovalStatus", "String", d.APPROVAL_STATUS, "Approved only if rendered with --allow-auto-approval",
        choices=(d.APPROVAL_STATUS, "Approved"), enum=True,
    ),
    Parameter(
        "MaxRuntimeSeconds", "Integer", d.MAX_RUNTIME_SECONDS, "each job's time limit",
        # SageMaker's limits: processing jobs run at most 7 days, training (with spot waiting) 28
        limit=between(1, 604_800, " (7 days)"), doc="SageMaker stops a job that runs longer (so does the local runner)",
    ),
    Parameter(
        "MaxWaitSeconds", "Integer", d.MAX_WAIT_SECONDS, "spot training only: runtime plus waiting",
        limit=between(1, 2_419_200, " (28 days)"), spot_only=True, doc="at least MaxRuntimeSeconds",
    ),
    Parameter(
        "MetricsNamespace", "String", d.METRICS_NAMESPACE, "CloudWatch namespace", rule="namespace",
        to=(
            To("preprocess", "--metrics-namespace", JOINED),
            To("train", "--metrics_namespace", ENVIRONMENT, METRICS_NAMESPACE_VARIABLE, after="HiddenLayers"),
            To("evaluate", "--metrics-namespace", JOINED),
        ),
    ),
    Parameter(
        "CodeVersion", "String", "unknown", "recorded with the package (run --local: the git commit)", rule="metadata"
    ),
)  # fmt: skip


def parameter(name: str) -> Parameter:
    return next(p for p in TABLE if p.name == name)


def received(step: str) -> list[tuple[Parameter, To]]:
    """The parameters `step` gets, with how, in the order of its arguments."""
    pairs = [(p, to) for p in TABLE for to in p.to if to.step == step]
    ordered = [pair for pair in pairs if not pair[1].after]
    pending = [pair for pair in pairs if pair[1].after]
    while pending:
        placed = [pair for pair in pending if pair[1].after in [p.name for p, _ in ordered]]
        if not placed:
            raise ValueError(f"{step}: 'after' names a parameter the step does not get: {pending[0][1].after}")
        for pair in placed:
            names = [p.name for p, _ in ordered]
            ordered.insert(names.index(pair[1].after) + 1, pair)
            pending.remove(pair)
    return ordered


def dest(to: To) -> str:
    """The argparse attribute of `to`'s option."""
    return to.option.lstrip("-").replace("-", "_")


TYPES = {"String": str, "Integer": int, "Float": float}


def add_options(parser: argparse.ArgumentParser, step: str) -> None:
    """`step`'s options for the pipeline parameters it gets: the table's types, defaults and help. An option the job
    gets in its environment defaults to that variable."""
    for param, to in received(step):
        default = os.environ.get(to.variable, param.default) if to.variable else param.default
        meaning = f"{param.help} (pipeline parameter {param.name})".replace("%", "%%")
        parser.add_argument(to.option, type=TYPES[param.type], default=default, help=meaning)


def values(args: argparse.Namespace, step: str) -> dict[str, object]:
    """The parameters' values in `step`'s parsed options, by pipeline name: what it checks (steps/parameters.py)."""
    return {param.name: getattr(args, dest(to)) for param, to in received(step) if to.checked}


# -- docs/parameters.md ---------------------------------------------------------------------------------------------
BEGIN = "<!-- the parameter table: rendered from steps/parameter_table.py (python -m steps.parameter_table "
BEGIN += "docs/parameters.md); edit the table, not this -->"
END = "<!-- end of the parameter table -->"


def allowed(param: Parameter) -> str:
    if param.limit:
        return f"{'a whole number' if param.type == 'Integer' else 'a number'} {param.limit.text}"
    if param.choices:
        return "one of " + ", ".join(f"`{c}`" for c in param.choices)
    preprocess = param.gets("preprocess")
    longest = CONTAINER_ARGUMENT - len(preprocess.option) - 1 if preprocess else CONTAINER_ARGUMENT
    return RULES[param.rule].replace("{longest}", str(longest)) if param.rule else "anything"


def shown(param: Parameter) -> str:
    if param.shown_default:
        return param.shown_default
    return "empty" if param.default == "" else f"`{param.default}`"


def getters(param: Parameter) -> str:
    said = {
        ARGUMENT: lambda to: f"{to.step} `{to.option}`",
        JOINED: lambda to: f"{to.step} `{to.option}=`",
        HYPERPARAMETER: lambda to: f"{to.step} `{to.option}` (hyperparameter)",
        ENVIRONMENT: lambda to: f"{to.step} `{to.option}` (`{to.variable}`)",
    }
    return "<br>".join(said[to.via](to) for to in param.to) or "the definition itself (jobs, registry)"


def markdown() -> str:
    """The parameter table of docs/parameters.md."""
    rows = ["| parameter | type | default | allowed | steps get it as | meaning |", "| --- " * 6 + "|"]
    for p in TABLE:
        meaning = f"{p.help}{'; ' + p.doc if p.doc else ''}{' (only rendered with `--spot`)' if p.spot_only else ''}"
        cells = [p.name, p.type, shown(p), allowed(p), getters(p), meaning]
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows) + "\n"


def with_table(text: str) -> str:
    """`text` (docs/parameters.md) with the table between its markers rendered anew."""
    head, begin, rest = text.partition(BEGIN)
    _, end, tail = rest.partition(END)
    if not (begin and end):
        raise ValueError("docs/parameters.md has lost the parameter table's markers")
    return f"{head}{BEGIN}\n{markdown()}{END}{tail}"


if __name__ == "__main__":
    doc = Path(sys.argv[1])
    doc.write_text(with_table(doc.read_text()))
