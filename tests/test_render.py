"""The committed pipeline.json is what the code renders, rendering is deterministic and offline."""

import json

import pytest
from helpers import rendered as shared_render

from pipelines.render import render
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


def test_register_step_carries_metrics_metadata_and_inference_code(rendered):
    definition = json.loads(rendered[0])
    register = next(s for s in walk(definition["Steps"]) if s["Name"] == "RegisterRound1")["Arguments"]
    assert register["ModelApprovalStatus"] == {"Get": "Parameters.ModelApprovalStatus"}
    # what is registered comes from the evaluation's `selected` round: this one, or the best candidate
    assert "selected.evaluation_uri" in json.dumps(register["ModelMetrics"])
    assert "selected.model_uri" in json.dumps(register["InferenceSpecification"])
    assert {"regula:gap", "regula:round", "regula:code_version"} <= set(register["CustomerMetadataProperties"])
    container = register["InferenceSpecification"]["Containers"][0]
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert "pytorch-inference" in container["Image"]
    params = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
    assert params["ModelApprovalStatus"] == "PendingManualApproval"


def test_invalid_rounds_are_refused():
    with pytest.raises(ValueError, match="rounds"):
        Settings(rounds=0)


def test_rendered_defaults_are_the_shared_defaults_and_every_passed_option_exists(rendered):
    """The definition and the step scripts read one module of defaults (steps/defaults.py): the rendered parameters
    carry its values, and every option the definition passes to a step script is one that script declares."""
    from helpers import run_step

    from steps import defaults as d

    definition = json.loads(rendered[0])
    params = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
    expected = {
        "TargetColumn": d.TARGET_COLUMN,
        "Dropout": d.DROPOUT,
        "L1": d.L1,
        "L2": d.L2,
        "RegularizationGrowth": d.GROWTH,
        "HiddenLayers": d.HIDDEN,
        "BatchSize": d.BATCH_SIZE,
        "LearningRate": d.LEARNING_RATE,
        "ClassWeight": d.CLASS_WEIGHT,
        "MaxEpochs": d.MAX_EPOCHS,
        "Patience": d.PATIENCE,
        "MaxGap": d.MAX_GAP,
        "QualityMetric": d.QUALITY_METRIC,
        "MinLift": d.MIN_LIFT,
        "MinQuality": d.MIN_QUALITY,
        "ModelPackageGroupName": d.MODEL_PACKAGE_GROUP,
        "ModelApprovalStatus": d.APPROVAL_STATUS,
        "MetricsNamespace": d.METRICS_NAMESPACE,
    }
    assert {name: params[name] for name in expected} == expected

    steps = list(walk(definition["Steps"]))
    passed = {
        "preprocess.py": next(s for s in steps if s["Name"] == "Preprocess")["Arguments"]["AppSpecification"],
        "evaluate.py": next(s for s in steps if s["Name"] == "EvaluateRound1")["Arguments"]["AppSpecification"],
    }
    for script, app in passed.items():
        options = {a for a in app["ContainerArguments"] if isinstance(a, str) and a.startswith("--")}
        declared = run_step(script, "--help")
        assert declared.returncode == 0, declared.stderr
        assert options and all(option in declared.stdout for option in options), (script, options)
    hyperparameters = next(s for s in steps if s["Name"] == "TrainRound1")["Arguments"]["HyperParameters"]
    declared = run_step("train.py", "--help")
    assert all(f"--{name}" in declared.stdout for name in hyperparameters), sorted(hyperparameters)
