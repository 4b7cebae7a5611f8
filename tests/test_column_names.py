"""Column names as a team's tables have them (a leading `-`, a comma), and parameter values that look like container
paths: each reaches the step as it was given."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.local.engine.runner import LocalRunner
from pipelines.local.engine.s3 import split_uri
from pipelines.local.run import run_local
from steps.parameters import column_names

BUCKET = "names-test"


@pytest.mark.parametrize(
    "text, names",
    [
        ("a, b,c", ["a", "b", "c"]),
        ('"id,internal",-x', ["id,internal", "-x"]),
        ('"say ""hi""", b', ['say "hi"', "b"]),
        ("", []),
        (" , a,", ["a"]),
    ],
)
def test_column_lists_quote_a_name_with_a_comma_as_csv_does(text, names):
    assert column_names(text) == names


def test_columns_named_with_a_dash_or_a_comma_can_be_target_excluded_and_categorical(tmp_path, clients):
    rng = np.random.default_rng(0)
    rows = 300
    grade = rng.integers(0, 3, rows)
    x = rng.standard_normal(rows)
    table = pd.DataFrame(
        {"x": x, "-grade": grade, "id,internal": np.arange(rows), "-label": (x + grade > 1).astype(int)}
    )
    table.to_csv(tmp_path / "table.csv", index=False)
    lines = []
    report = run_local(
        data=tmp_path / "table.csv",
        params={
            "TargetColumn": "-label",
            "ExcludeColumns": '"id,internal"',
            "CategoricalColumns": "-grade",
            "MaxEpochs": "2",
            "MaxGap": "5",
            "MinLift": "0",
        },
        runs_dir=tmp_path / "runs",
        echo=lines.append,
    )
    text = "\n".join(lines)
    assert "-> TrainRound1 (Training)" in text, text  # Preprocess succeeded
    [schema] = (tmp_path / "runs").glob("*/jobs/Preprocess/opt/ml/processing/output/train/schema.json")
    schema = json.loads(schema.read_text())
    assert schema["target"] == "-label"
    assert schema["roles"] == {"x": "numeric", "-grade": "categorical"}
    assert "id,internal" in schema["dropped"] and "excluded" in schema["dropped"]["id,internal"]
    assert report["status"] in ("Succeeded", "Failed")


# a processing job that writes its arguments and one environment variable into its output folder
ECHO = (
    "import json, os, pathlib, sys; out = pathlib.Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True); "
    "(out / 'seen.json').write_text(json.dumps({'argv': sys.argv[1:], 'env': os.environ['GIVEN']}))"
)


def test_a_parameter_value_under_opt_ml_reaches_the_job_as_given(tmp_path, clients):
    """The runner maps the definition's own /opt/ml paths into the job folder; a parameter's value that looks like
    one is the parameter's value, and never shows this machine's paths."""
    s3 = clients["s3"]
    s3.create_bucket(Bucket=BUCKET)
    output = "/opt/ml/processing/output"
    given = {"Get": "Parameters.Given"}
    definition = {
        "Parameters": [{"Name": "Given", "Type": "String", "DefaultValue": "x"}],
        "Steps": [
            {
                "Name": "Echo",
                "Type": "Processing",
                "Arguments": {
                    "AppSpecification": {
                        "ContainerEntrypoint": ["python3", "-c", ECHO],
                        "ContainerArguments": [output, given, {"Std:Join": {"On": "=", "Values": ["--opt", given]}}],
                    },
                    "Environment": {"GIVEN": given},
                    "ProcessingInputs": [],
                    "ProcessingOutputConfig": {
                        "Outputs": [
                            {"OutputName": "out", "S3Output": {"S3Uri": f"s3://{BUCKET}/out", "LocalPath": output}}
                        ]
                    },
                },
            }
        ],
    }
    run_dir = tmp_path / "run"
    runner = LocalRunner(definition, run_dir, s3, None, "us-east-1", echo=lambda _: None)
    execution = runner.run("p", {"Given": "/opt/ml/processing/secret"})
    assert execution.status == "Succeeded", execution.failure_reason
    bucket, key = split_uri(f"s3://{BUCKET}/out/seen.json")
    seen = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert seen["argv"][0] == str(run_dir.resolve() / "jobs" / "Echo") + output  # the definition's path: mapped
    assert seen["argv"][1:] == ["/opt/ml/processing/secret", "--opt=/opt/ml/processing/secret"]
    assert seen["env"] == "/opt/ml/processing/secret"
    assert str(Path(tmp_path)) not in json.dumps(seen["argv"][1:]) + seen["env"]
