"""Free-text pipeline parameters as an attacker passes them: they never reach a shell, and every one is checked
against what AWS accepts before anything runs (on the client, and again in the first step)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO, regula_here, run_step
from helpers import run_training as train

from pipelines.local.engine.expressions import Context, resolve
from steps import parameter_table

PIPELINE_JSON = REPO / "pipeline.json"


def hostile(name: str) -> str:
    """A value that runs `touch <name>.pwned` wherever a shell reads it unquoted or inside single quotes."""
    return f"x'; touch {name}.pwned; echo '$(touch {name}.dollar.pwned)`touch {name}.tick.pwned`"


def walk(steps):
    for step in steps:
        yield step
        if step["Type"] == "Condition":
            yield from walk(step["Arguments"]["IfSteps"] + step["Arguments"]["ElseSteps"])


def driver_env_file(folder: Path, hyperparameters: dict, environment: dict) -> Path:
    """Run the container driver that ModelTrainer uploads with every training job (the installed SDK's own
    scripts/environment.py) on `hyperparameters`, as the job's container does, with `environment` in its process
    environment: the sm_training.env it writes, which the job's sm_train.sh sources."""
    from sagemaker.train.constants import SM_DRIVERS_LOCAL_PATH

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    out = folder / "sm_training.env"
    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(Path(SM_DRIVERS_LOCAL_PATH) / 'scripts')!r})\n"
        "import environment\n"
        "environment.set_env(\n"
        "    resource_config={'current_host': 'algo-1', 'current_instance_type': 'ml.m5.xlarge',\n"
        "                     'hosts': ['algo-1'], 'network_interface_name': 'eth0'},\n"
        "    input_data_config={'train': {'TrainingInputMode': 'File'}, 'validation': {'TrainingInputMode': 'File'}},\n"
        f"    hyperparameters_config=json.load(open({str(folder / 'hyperparameters.json')!r})),\n"
        f"    output_file={str(out)!r},\n"
        ")\n"
    )
    env = {"PATH": "/usr/bin:/bin", "TRAINING_JOB_NAME": "regula-train-round1-abc", **environment}
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=folder, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return out


def source(env_file: Path, cwd: Path, show: str) -> subprocess.CompletedProcess:
    """`source` the env file in bash, as sm_train.sh does, then print the variable `show`."""
    return subprocess.run(
        ["bash", "-c", f'set -e; source "$1"; printf %s "${show}"', "bash", str(env_file)],
        cwd=cwd, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip


def test_the_sdk_driver_runs_a_quoted_hyperparameter_as_shell_code(tmp_path):
    """Why no free text may be a hyperparameter: the driver writes `export SM_HP_X='<value>'` unescaped."""
    env_file = driver_env_file(tmp_path, {"probe": hostile("probe")}, {})
    source(env_file, tmp_path, "SM_HP_ROUND")
    assert (tmp_path / "probe.pwned").exists(), "the SDK now escapes: this file's routing may be simplified"


def test_no_parameter_value_can_execute_in_the_training_container(tmp_path):
    """Every training step of the committed definition, every String parameter set to a value that runs `touch` when
    a shell reads it: the driver's env file sourced in bash runs nothing, and holds the job's hyperparameters.
    (Integer and Float parameters are typed: SageMaker substitutes numbers; the first step checks them too.)"""
    definition = json.loads(PIPELINE_JSON.read_text())
    values, strings = {}, []
    for p in definition["Parameters"]:
        if p["Type"] == "String":
            values[p["Name"]] = hostile(p["Name"])
            strings.append(p["Name"])
        else:
            values[p["Name"]] = p["DefaultValue"]
    assert {"MetricsNamespace", "HiddenLayers", "TargetColumn", "ModelPackageGroupName"} <= set(strings)
    # SageMaker's own values: names and ids of its own patterns, no quotes
    execution = {"PipelineName": "regula", "PipelineExecutionId": "abc123", "PipelineExecutionArn": "arn:x"}
    context = Context(parameters=values, execution=execution)
    trainings = [s for s in walk(definition["Steps"]) if s["Type"] == "Training"]
    assert len(trainings) >= 2
    for step in trainings:
        arguments = resolve({k: step["Arguments"][k] for k in ("HyperParameters", "Environment")}, context)
        hyperparameters = {k: str(v) for k, v in arguments["HyperParameters"].items()}
        folder = tmp_path / step["Name"]
        env_file = driver_env_file(folder, hyperparameters, {k: str(v) for k, v in arguments["Environment"].items()})
        result = source(env_file, folder, "SM_HP_ROUND")
        assert result.returncode == 0, result.stderr
        assert result.stdout == hyperparameters["round"], "the env file was sourced"
        assert sorted(p.name for p in folder.glob("*.pwned")) == [], step["Name"]
        assert "'" not in "".join(hyperparameters.values()), step["Name"]
        # the free text travels in the job's environment (not sourced): intact
        assert arguments["Environment"][parameter_table.HIDDEN_LAYERS_VARIABLE] == values["HiddenLayers"]
        assert arguments["Environment"][parameter_table.METRICS_NAMESPACE_VARIABLE] == values["MetricsNamespace"]


def test_training_reads_its_free_text_parameters_from_the_job_environment(splits, tmp_path):
    env = {parameter_table.HIDDEN_LAYERS_VARIABLE: "8,4", parameter_table.METRICS_NAMESPACE_VARIABLE: "Team/Models #1"}
    result = train(splits, tmp_path / "model", "--max_epochs", "1", env=env, in_process=True)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "model" / "config.json").read_text())["hidden"] == [8, 4]

    env[parameter_table.METRICS_NAMESPACE_VARIABLE] = hostile("ns")
    failure = {"SM_OUTPUT_FAILURE": str(tmp_path / "failure"), **env}
    result = train(splits, tmp_path / "model2", "--max_epochs", "1", env=failure, in_process=True)
    assert result.returncode == 2
    assert "MetricsNamespace must be 1-255 of the characters CloudWatch allows" in result.stderr
    assert not (tmp_path / "model2" / "config.json").exists()


BAD_STRINGS = {
    "MetricsNamespace": (hostile("MetricsNamespace"), "MetricsNamespace must be 1-255 of the characters CloudWatch"),
    "ModelPackageGroupName": ("models'; touch x", "ModelPackageGroupName must be 1-63 letters, digits and hyphens"),
    "TargetColumn": ("label\nx", "TargetColumn must not hold control characters"),
    "ExcludeColumns": ("a" * 240, "ExcludeColumns must be at most 238 characters, got 240"),
    "CodeVersion": ("abc'; rm -rf /", "CodeVersion must be 1-128 letters"),
    "TrainingInstanceType": ("ml.m5.xlarge; touch x", "TrainingInstanceType must be a SageMaker instance type"),
    "InputDataUri": ("file:///etc/passwd", "InputDataUri must be an s3://bucket/key URI"),
    "HiddenLayers": ("100000", "HiddenLayers may have at most 16 layers of at most 4096 units, got '100000'"),
}


@pytest.mark.parametrize("name", sorted(BAD_STRINGS))
def test_run_local_refuses_a_bad_string_parameter_before_anything_starts(name, tmp_path, clients):
    value, message = BAD_STRINGS[name]
    result = regula_here("run", "--local", "--runs-dir", str(tmp_path / "runs"), "--param", f"{name}={value}")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("regula: error: ") and message in result.stderr, result.stderr
    assert not (tmp_path / "runs").exists()
    assert clients["s3"].list_buckets()["Buckets"] == [], "nothing was uploaded"
    assert clients["sagemaker"].list_model_package_groups()["ModelPackageGroupSummaryList"] == []


def test_start_refuses_a_shell_quoted_namespace_before_any_execution(clients):
    from pipelines.local.engine.s3 import ensure_bucket

    ensure_bucket(clients["s3"], "regula-artifacts", "us-east-1")
    assert regula_here("upsert").returncode == 0
    result = regula_here("start", "--param", f"MetricsNamespace={hostile('ns')}", "--param", "HiddenLayers=1_0")
    assert result.returncode == 2
    assert "MetricsNamespace must be 1-255 of the characters CloudWatch allows" in result.stderr
    assert "HiddenLayers must be comma-separated positive layer sizes, got '1_0'" in result.stderr
    executions = clients["sagemaker"].list_pipeline_executions(PipelineName="regula")["PipelineExecutionSummaries"]
    assert executions == []


def test_the_first_step_refuses_bad_strings_the_console_passes(tmp_path):
    """A console or API start skips the client: Preprocess checks the same rules before it reads any data."""
    result = run_step(
        "preprocess.py", "--input", str(tmp_path / "never-read.csv"), "--output-dir", str(tmp_path / "out"),
        f"--metrics-namespace={hostile('ns')}", "--check", "ModelPackageGroupName=-models",
        "--check", "HiddenLayers=64,,64", env={"REGULA_METRICS": "off"},
    )  # fmt: skip
    assert result.returncode == 2
    assert "3 problems" in result.stderr
    assert "HiddenLayers must be comma-separated positive layer sizes, got '64,,64'" in result.stderr
    assert "ModelPackageGroupName must be 1-63 letters" in result.stderr
    assert "MetricsNamespace must be 1-255" in result.stderr
    assert not (tmp_path / "out").exists()


def test_every_free_text_parameter_is_checked_somewhere_in_the_first_step():
    """The parameters the definition declares as String are each either a choice or checked free text (the table's
    rule), and reach Preprocess as its own option or as --check."""
    definition = json.loads(PIPELINE_JSON.read_text())
    strings = {p["Name"] for p in definition["Parameters"] if p["Type"] == "String"}
    checked = {p.name for p in parameter_table.TABLE if p.choices or p.rule}
    assert {"MetricsNamespace", "HiddenLayers", "TargetColumn", "ProblemType", "CodeVersion"} <= strings
    assert strings <= checked, strings - checked
    preprocess = next(s for s in definition["Steps"] if s["Name"] == "Preprocess")
    text = json.dumps(preprocess["Arguments"]["AppSpecification"]["ContainerArguments"])
    assert all(f'"Parameters.{name}"' in text for name in strings - {"InputDataUri"})


# -- limits that used to fail only after the work had started -------------------------------------------------------


def test_run_local_refuses_more_training_instances_than_it_can_start(tmp_path, clients):
    import os

    most = max(2, os.cpu_count() or 1)
    result = regula_here("run", "--local", "--runs-dir", str(tmp_path / "runs"), "--param", "TrainingInstanceCount=100")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "regula: error: TrainingInstanceCount 100 is more than a local run starts: one training process per "
        f"instance, at most {most} here (this machine's CPUs)"
    )
    assert not (tmp_path / "runs").exists()
    assert clients["s3"].list_buckets()["Buckets"] == [], "nothing was uploaded"


@pytest.mark.parametrize(
    "option, value",
    [
        ("--prefix", "*"),
        ("--model-package-group", "*"),
        ("--bucket", "regula-*"),
        ("--pipeline-name", "regul?"),
        ("--metrics-namespace", "Team/*"),
        ("--data-uri", "s3://data/*"),
        ("--ci-role-name", "${aws:username}"),
    ],
)
def test_iam_refuses_a_wildcard_in_any_name(option, value):
    result = regula_here("iam", "--account", "123456789012", "--github-repo", "octo/app", f"{option}={value}")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"regula: error: {option} {value!r} holds an IAM wildcard or policy variable (*, ?, ${{...}}): name the "
        "resources exactly"
    )
    assert result.stdout == "", "no policy printed"


def test_iam_refuses_a_group_sagemaker_would_refuse():
    result = regula_here("iam", "--account", "123456789012", "--github-repo", "octo/app", "--model-package-group=a_b")
    assert result.returncode == 2
    assert result.stderr.startswith("regula: error: --model-package-group must be 1-63 letters, digits and hyphens")
