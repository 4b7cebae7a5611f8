"""The committed pipeline.json is what the code renders, rendering is deterministic and offline."""

import json

import pytest
from helpers import rendered as shared_render

from pipelines.definition.render import render
from pipelines.settings import PIPELINE_JSON, Settings


@pytest.fixture(scope="module")
def rendered():
    return shared_render()


def test_committed_pipeline_json_matches_the_code(rendered):
    text, _ = rendered
    assert PIPELINE_JSON.read_text() == text, "pipeline.json drifted from the code: run `regula render`"


def test_rendering_is_offline_and_repeatable(rendered, monkeypatch):
    import botocore.endpoint

    sent = []
    monkeypatch.setattr(botocore.endpoint.Endpoint, "_send", lambda self, request: sent.append(request.url))
    text, session = render()
    assert text == rendered[0]
    assert sent == []
    # step code is content-addressed: every upload sits under <prefix>/code/<hash>/
    assert session.uploads and all(key.startswith("regula/code/") for key in session.uploads)


def walk(steps):
    for step in steps:
        yield step
        if step["Type"] == "Condition":
            yield from walk(step["Arguments"]["IfSteps"])
            yield from walk(step["Arguments"]["ElseSteps"])


@pytest.mark.parametrize("rounds", [1, 2, 4])
def test_the_ladder_is_unrolled_to_the_configured_rounds(rounds):
    definition = json.loads(shared_render(Settings(rounds=rounds))[0])
    steps = {s["Name"]: s for s in walk(definition["Steps"])}
    trains = [n for n in steps if n.startswith("TrainRound")]
    assert trains == [f"TrainRound{r}" for r in range(1, rounds + 1)]
    assert [n for n in steps if n.startswith("RegisterRound")] == [f"RegisterRound{r}" for r in range(1, rounds + 1)]
    assert steps["StillOverfitting"]["Type"] == "Fail"
    for r in range(1, rounds + 1):
        assert steps[f"TrainRound{r}"]["Arguments"]["HyperParameters"]["round"] == str(r)
        assert steps[f"RegisterRound{r}"]["Type"] == "RegisterModel"
        assert steps[f"UnderfitRound{r}"]["Type"] == "Fail"


def test_no_training_jobs_checkpoint_prefix_holds_anothers():
    """S3 prefixes match by characters: without the trailing slash round1's checkpoint sync would also take
    round1-refit's and round10's."""
    definition = json.loads(shared_render(Settings(rounds=10))[0])
    uris = [s["Arguments"]["CheckpointConfig"]["S3Uri"] for s in walk(definition["Steps"]) if s["Type"] == "Training"]
    assert len(uris) == 20 and len(set(uris)) == 20  # a round and its refit each, 10 rounds
    assert not [(a, b) for a in uris for b in uris if a != b and b.startswith(a)]


def test_register_step_carries_metrics_metadata_and_inference_code(rendered):
    definition = json.loads(rendered[0])
    register = next(s for s in walk(definition["Steps"]) if s["Name"] == "RegisterRound1")["Arguments"]
    assert register["ModelApprovalStatus"] == {"Get": "Parameters.ModelApprovalStatus"}
    # what is registered comes from the evaluation's `selected` round: this one, or the best candidate
    assert "selected.evaluation_uri" in json.dumps(register["ModelMetrics"])
    assert "selected.model_uri" in json.dumps(register["InferenceSpecification"])
    assert {"regula:gap", "regula:round", "regula:code_version"} <= set(register["CustomerMetadataProperties"])
    container = register["InferenceSpecification"]["Containers"][0]
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "steps/inference.py"
    assert container["Image"] == "000000000000.dkr.ecr.us-east-1.amazonaws.com/regula-steps:2.13-cpu"
    params = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
    assert params["ModelApprovalStatus"] == "PendingManualApproval"


def test_invalid_rounds_are_refused():
    with pytest.raises(ValueError, match="rounds"):
        Settings(rounds=0)


def test_rendered_parameters_are_the_table_and_every_passed_option_exists(rendered):
    """The definition declares steps/parameter_table.py's parameters (names, order, types, defaults), with the values
    the README promises, and passes them as the table says; every option the definition passes to a step script is
    one that script declares."""
    from helpers import run_step

    from steps import parameter_table

    definition = json.loads(rendered[0])
    declared = {p["Name"]: (p["Type"], p.get("DefaultValue")) for p in definition["Parameters"]}
    assert list(declared) == [p.name for p in parameter_table.TABLE if not p.spot_only]
    from_table = {p.name: (p.type, p.default) for p in parameter_table.TABLE if not (p.spot_only or p.setting)}
    assert {name: declared[name] for name in from_table} == from_table
    spelled_out = {
        "InputDataUri": ("String", "s3://regula-artifacts/regula/demo/digits.csv"),
        "TargetColumn": ("String", "target"),
        "TrainingInstanceType": ("String", "ml.m5.xlarge"),
        "Dropout": ("Float", 0.1),
        "L1": ("Float", 1e-5),
        "MaxGap": ("Float", 0.1),
        "Patience": ("Integer", 10),
        "MaxEpochs": ("Integer", 200),
        "HiddenLayers": ("String", "256,256"),
        "ModelApprovalStatus": ("String", "PendingManualApproval"),
        "MetricsNamespace": ("String", "Regula"),
    }
    assert {name: declared[name] for name in spelled_out} == spelled_out
    enums = {p["Name"]: p["EnumValues"] for p in definition["Parameters"] if "EnumValues" in p}
    assert enums == {
        "ProblemType": ["auto", "classification", "regression"],
        "StopOnOverfitting": ["no", "yes"],
        "Refit": ["yes", "no"],
        "GapReference": ["linear", "none"],
        "RegisterBestCandidate": ["no", "yes"],
        "ModelApprovalStatus": ["PendingManualApproval"],
    }

    arguments = {s["Name"]: s["Arguments"] for s in walk(definition["Steps"])}
    value = lambda name: {"Get": f"Parameters.{name}"}  # noqa: E731
    text = lambda name: {"Std:Join": {"On": "", "Values": [value(name)]}}  # noqa: E731 - a number as text
    preprocess = arguments["Preprocess"]["AppSpecification"]["ContainerArguments"]
    assert preprocess[4:9] == [
        {"Std:Join": {"On": "=", "Values": ["--target", value("TargetColumn")]}},
        "--problem-type",
        value("ProblemType"),
        {"Std:Join": {"On": "=", "Values": ["--exclude-columns", value("ExcludeColumns")]}},
        {"Std:Join": {"On": "=", "Values": ["--categorical-columns", value("CategoricalColumns")]}},
    ]
    assert preprocess[preprocess.index("--horizon") + 1] == text("Horizon")
    check = {"Std:Join": {"On": "=", "Values": ["Patience", value("Patience")]}}  # what Preprocess only checks
    assert preprocess[preprocess.index(check) - 1] == "--check"
    training = arguments["TrainRound1"]
    assert training["HyperParameters"]["max_epochs"] == text("MaxEpochs")
    assert training["HyperParameters"]["dropout"] == text("Dropout")
    assert training["Environment"]["REGULA_HIDDEN_LAYERS"] == value("HiddenLayers")
    assert "HiddenLayers" not in json.dumps(training["HyperParameters"]), "free text is never a hyperparameter"
    evaluate = arguments["EvaluateRound1"]["AppSpecification"]["ContainerArguments"]
    assert evaluate[evaluate.index("--min-lift") + 1] == text("MinLift")

    steps = list(walk(definition["Steps"]))
    passed = {
        "preprocess.py": next(s for s in steps if s["Name"] == "Preprocess")["Arguments"]["AppSpecification"],
        "evaluate.py": next(s for s in steps if s["Name"] == "EvaluateRound1")["Arguments"]["AppSpecification"],
    }
    for script, app in passed.items():
        options = {a for a in app["ContainerArguments"] if isinstance(a, str) and a.startswith("--")}
        # and the --name=value ones (a parameter's value beginning with '-' stays a value)
        options |= {
            a["Std:Join"]["Values"][0]
            for a in app["ContainerArguments"]
            if isinstance(a, dict) and a.get("Std:Join", {}).get("On") == "=" and a["Std:Join"]["Values"][0][:2] == "--"
        }
        declared = run_step(script, "--help")
        assert declared.returncode == 0, declared.stderr
        assert options and all(option in declared.stdout for option in options), (script, options)
    hyperparameters = next(s for s in steps if s["Name"] == "TrainRound1")["Arguments"]["HyperParameters"]
    declared = run_step("train.py", "--help")
    assert all(f"--{name}" in declared.stdout for name in hyperparameters), sorted(hyperparameters)


IMAGE_PATHS = {  # where each kind of step names its image
    "Processing": ("AppSpecification", "ImageUri"),
    "Training": ("AlgorithmSpecification", "TrainingImage"),
    "RegisterModel": ("InferenceSpecification", "Containers", 0, "Image"),
}


def images(definition: dict) -> dict[str, set[str]]:
    """The images of each kind of step: Processing, Training, RegisterModel (serving)."""
    found: dict[str, set[str]] = {}
    for step in walk(definition["Steps"]):
        if step["Type"] in IMAGE_PATHS:
            value = step["Arguments"]
            for key in IMAGE_PATHS[step["Type"]]:
                value = value[key]
            found.setdefault(step["Type"], set()).add(value)
    return found


def training_setup(definition: dict) -> tuple[set[str], str]:
    """(the devices the training steps record, TrainingInstanceType's default)"""
    devices = {
        s["Arguments"]["Environment"]["REGULA_TRAINING_DEVICE"]
        for s in walk(definition["Steps"])
        if s["Type"] == "Training"
    }
    default = next(p["DefaultValue"] for p in definition["Parameters"] if p["Name"] == "TrainingInstanceType")
    return devices, default


def test_one_image_runs_every_step_and_serves_from_the_roles_account(rendered):
    definition = json.loads(rendered[0])
    cpu = "000000000000.dkr.ecr.us-east-1.amazonaws.com/regula-steps:2.13-cpu"  # where containers/build pushes
    assert images(definition) == {"Processing": {cpu}, "Training": {cpu}, "RegisterModel": {cpu}}
    assert training_setup(definition) == ({"cpu"}, "ml.m5.xlarge")
    settings = Settings(region="eu-west-1", role_arn="arn:aws:iam::123456789012:role/service-role/Regula")
    assert settings.steps_image == "123456789012.dkr.ecr.eu-west-1.amazonaws.com/regula-steps:2.13-cpu"
    assert Settings(region="cn-north-1").steps_image.endswith(
        ".dkr.ecr.cn-north-1.amazonaws.com.cn/regula-steps:2.13-cpu"
    )


def test_gpu_training_runs_the_gpu_build_and_defaults_to_a_gpu_instance():
    definition = json.loads(render(Settings(training_device="gpu", rounds=1))[0])
    registry = "000000000000.dkr.ecr.us-east-1.amazonaws.com/regula-steps"
    assert images(definition) == {
        "Processing": {f"{registry}:2.13-cpu"},  # processing and serving run on CPU instances
        "Training": {f"{registry}:2.13-gpu"},
        "RegisterModel": {f"{registry}:2.13-cpu"},
    }
    assert training_setup(definition) == ({"gpu"}, "ml.g5.xlarge")


@pytest.mark.slow
def test_a_custom_image_reaches_processing_training_and_serving(tmp_path):
    from helpers import regula

    mine = "111122223333.dkr.ecr.us-east-1.amazonaws.com/team/regula:7"
    result = regula("render", "--image-uri", mine, "--rounds", "1", "--output", str(tmp_path / "p.json"))
    assert result.returncode == 0, result.stderr
    definition = json.loads((tmp_path / "p.json").read_text())
    assert images(definition) == {"Processing": {mine}, "Training": {mine}, "RegisterModel": {mine}}

    gpu = f"{mine}-gpu"
    definition = json.loads(render(Settings(image_uri=mine, training_device="gpu", training_image_uri=gpu))[0])
    assert images(definition) == {"Processing": {mine}, "Training": {gpu}, "RegisterModel": {mine}}
    assert training_setup(definition) == ({"gpu"}, "ml.g5.xlarge")


def test_image_settings_that_cannot_work_are_refused():
    with pytest.raises(ValueError, match="needs --training-image-uri"):
        Settings(image_uri="111122223333.dkr.ecr.us-east-1.amazonaws.com/regula:7", training_device="gpu")
    with pytest.raises(ValueError, match="training device must be one of cpu, gpu"):
        Settings(training_device="tpu")
    with pytest.raises(ValueError, match="role ARN must look like"):  # refused before anything is rendered
        render(Settings(role_arn="RegulaRole"))


@pytest.mark.slow
def test_an_entry_script_change_changes_only_its_own_steps_code(rendered, tmp_path, monkeypatch):
    """Each job's code is the shared modules and its own entry script: after a change to evaluate.py, Preprocess and
    training keep their arguments, so their cache keys (on SageMaker and locally); a shared module changes them all."""
    import shutil

    from helpers import STEPS

    import pipelines.definition.render

    shutil.copytree(STEPS, tmp_path / "steps", ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(pipelines.definition.render, "REPO_ROOT", tmp_path)  # where steps/ is uploaded from
    original = {s["Name"]: s for s in walk(json.loads(rendered[0])["Steps"])}

    with open(tmp_path / "steps" / "evaluate.py", "a") as script:
        script.write("# a comment\n")
    changed = {s["Name"]: s for s in walk(json.loads(render()[0])["Steps"])}
    assert changed["Preprocess"] == original["Preprocess"]
    assert [changed[f"TrainRound{r}"] == original[f"TrainRound{r}"] for r in (1, 2, 3)] == [True] * 3
    assert changed["EvaluateRound1"] != original["EvaluateRound1"]

    with open(tmp_path / "steps" / "quality.py", "a") as module:
        module.write("# a comment\n")
    changed = {s["Name"]: s for s in walk(json.loads(render()[0])["Steps"])}
    assert changed["Preprocess"] != original["Preprocess"] and changed["TrainRound1"] != original["TrainRound1"]
