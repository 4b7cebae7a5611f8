"""One parameter table (steps/parameter_table.py): the definition, the step scripts' options, the limit checks, the
`--param` help and docs/parameters.md all follow it, so adding a parameter is one entry."""

from __future__ import annotations

import json

import pytest
from helpers import REPO, run_step

from steps import parameter_table
from steps.parameter_table import HYPERPARAMETER, JOINED, Parameter, To, between

DOC = REPO / "docs" / "parameters.md"


def test_the_docs_table_is_the_parameter_table():
    text = DOC.read_text()
    assert parameter_table.with_table(text) == text, "run: python -m steps.parameter_table docs/parameters.md"
    # what a reader checks by eye, in the rendered rows
    maxgap = "| MaxGap | Float | `0.1` | a number in [0, 10] | train `--max_gap` (hyperparameter)<br>evaluate "
    assert maxgap in text
    assert "| TargetColumn | String | `target` | a column name: no control characters, at most 247 characters" in text
    assert "| MaxWaitSeconds | Integer | `7200` | a whole number between 1 and 2419200 (28 days) |" in text


def test_free_text_never_travels_as_a_hyperparameter_and_every_string_is_checked():
    """SageMaker's driver writes hyperparameters into a file a shell sources (docs/parameters.md): only numbers go
    there; free text goes in the environment or as a processing argument, and each String has choices or a rule."""
    for param in parameter_table.TABLE:
        for to in param.to:
            assert to.via != HYPERPARAMETER or param.type in ("Integer", "Float"), param.name
            assert to.via != JOINED or param.type == "String", param.name
        assert param.type != "String" or param.choices or param.rule in parameter_table.RULES, param.name
        assert param.type == "String" or param.limit, param.name
        assert param.default == "" or param.choices == () or param.default in param.choices, param.name
    for step in ("preprocess", "train", "evaluate"):  # each option once per script, each `after` resolvable
        options = [to.option for _, to in parameter_table.received(step)]
        assert len(options) == len(set(options)), step


WARMUP = Parameter(
    "WarmupEpochs", "Integer", 3, "epochs before early stopping may stop", limit=between(0, 50),
    to=(To("train", "--warmup_epochs", HYPERPARAMETER), To("evaluate", "--warmup-epochs")),
)  # fmt: skip
WEIGHTS = Parameter(
    "WeightColumn", "String", "", "a column of row weights", rule="column",
    to=(To("preprocess", "--weight-column", JOINED),),
)  # fmt: skip


@pytest.fixture
def two_more(monkeypatch):
    """The table with two entries added, as a team adding parameters would write them."""
    monkeypatch.setattr(parameter_table, "TABLE", (*parameter_table.TABLE, WARMUP, WEIGHTS))


def test_a_new_entry_is_declared_and_passed_by_the_definition(two_more):
    from pipelines.definition.render import render
    from pipelines.settings import Settings

    definition = json.loads(render(Settings(rounds=1))[0])
    declared = {p["Name"]: p for p in definition["Parameters"]}
    assert declared["WarmupEpochs"] == {"Name": "WarmupEpochs", "Type": "Integer", "DefaultValue": 3}
    assert declared["WeightColumn"] == {"Name": "WeightColumn", "Type": "String", "DefaultValue": ""}
    assert list(declared)[-2:] == ["WarmupEpochs", "WeightColumn"]

    steps = {s["Name"]: s["Arguments"] for s in definition["Steps"]}
    warmup = {"Std:Join": {"On": "", "Values": [{"Get": "Parameters.WarmupEpochs"}]}}
    assert steps["TrainRound1"]["HyperParameters"]["warmup_epochs"] == warmup
    evaluate = steps["EvaluateRound1"]["AppSpecification"]["ContainerArguments"]
    at = evaluate.index("--warmup-epochs")
    assert evaluate[at + 1] == warmup and evaluate[at + 2] == "--model-uri", "after the other parameters"
    preprocess = steps["Preprocess"]["AppSpecification"]["ContainerArguments"]
    weights = {"Std:Join": {"On": "=", "Values": ["--weight-column", {"Get": "Parameters.WeightColumn"}]}}
    assert weights in preprocess
    # the first step checks the new number (--check) and the free text as its own option
    checked = [a["Std:Join"]["Values"][0] for i, a in enumerate(preprocess) if preprocess[i - 1] == "--check"]
    assert checked[-2:] == ["CodeVersion", "WarmupEpochs"] and "WeightColumn" not in checked


def test_a_new_entry_is_an_option_of_the_steps_named_and_only_those(two_more):
    helps = {script: run_step(script, "--help") for script in ("preprocess.py", "train.py", "evaluate.py")}
    assert all(result.returncode == 0 for result in helps.values())
    assert "--warmup_epochs" in helps["train.py"].stdout and "--warmup-epochs" in helps["evaluate.py"].stdout
    assert "--weight-column" in helps["preprocess.py"].stdout
    assert "warmup" not in helps["preprocess.py"].stdout and "weight-column" not in helps["train.py"].stdout
    said = " ".join(helps["train.py"].stdout.split())  # argparse wraps the help
    assert "--warmup_epochs WARMUP_EPOCHS epochs before early stopping may stop (pipeline parameter WarmupEpochs)" in (
        said
    )


def test_a_new_entry_is_checked_by_the_client_and_the_steps_that_get_it(two_more, tmp_path):
    from pipelines.definition.parameter_names import canonical_names, help_text, light_definition, names
    from pipelines.definition.parameters import parameter_values
    from pipelines.settings import Settings

    assert canonical_names({"warmupepochs": "7"}, names()) == {"WarmupEpochs": "7"}
    assert "  WarmupEpochs            3                      epochs before early stopping may stop" in help_text()
    values = parameter_values(light_definition(Settings()), {"WarmupEpochs": "7"})
    assert (values["WarmupEpochs"], values["WeightColumn"]) == (7, "")
    with pytest.raises(ValueError) as refused:
        parameter_values(light_definition(Settings()), {"WarmupEpochs": "51", "WeightColumn": "a\tb"})
    assert str(refused.value) == (
        "WarmupEpochs must be a whole number between 0 and 50, got 51; "
        "WeightColumn must not hold control characters (newline, tab, ...), got 'a\\tb'"
    )

    result = run_step(
        "preprocess.py", "--input", str(tmp_path / "never-read.csv"), "--output-dir", str(tmp_path / "out"),
        "--check", "WarmupEpochs=99", "--weight-column=a\nb", env={"REGULA_METRICS": "off"},
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "ERROR preprocess: 2 problems: (1) WarmupEpochs must be a whole number between 0 and 50, got '99'; "
        "(2) WeightColumn must not hold control characters (newline, tab, ...), got 'a\\nb'"
    )
    assert not (tmp_path / "out").exists()

    result = run_step("train.py", "--warmup_epochs", "51", "--model_dir", str(tmp_path / "model"))
    assert result.returncode == 2
    assert "WarmupEpochs must be a whole number between 0 and 50, got 51" in result.stderr
    assert not (tmp_path / "model").exists()


def test_a_new_entry_is_a_row_of_the_docs_table(two_more):
    rows = parameter_table.markdown().splitlines()
    assert rows[-2:] == [
        "| WarmupEpochs | Integer | `3` | a whole number between 0 and 50 | train `--warmup_epochs` (hyperparameter)"
        "<br>evaluate `--warmup-epochs` | epochs before early stopping may stop |",
        "| WeightColumn | String | empty | a column name or empty: no control characters, at most 240 characters | "
        "preprocess `--weight-column=` | a column of row weights |",
    ]
    assert parameter_table.with_table(DOC.read_text()) != DOC.read_text(), "the committed doc is now stale"
