import pytest

from pipelines.local.engine.expressions import Context, ExpressionError, evaluate_condition, parse_path, resolve


def context(**files):
    steps = {
        "Prep": {
            "ProcessingOutputConfig": {"Outputs": [{"OutputName": "train", "S3Output": {"S3Uri": "s3://b/train"}}]}
        }
    }
    return Context(
        parameters={"MaxGap": 0.2, "Name": "x"},
        execution={"PipelineExecutionId": "abc123"},
        steps=steps,
        read_property_file=lambda step, name: files[f"{step}.{name}"],
    )


def test_parse_path_handles_names_and_quoted_keys():
    assert parse_path("ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri") == [
        "ProcessingOutputConfig",
        "Outputs",
        "train",
        "S3Output",
        "S3Uri",
    ]
    assert parse_path("a[0].b") == ["a", 0, "b"]


def test_get_join_and_named_list_lookup():
    ctx = context()
    value = {
        "Std:Join": {
            "On": "/",
            "Values": [
                {"Get": "Steps.Prep.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"},
                {"Get": "Execution.PipelineExecutionId"},
                {"Get": "Parameters.MaxGap"},
            ],
        }
    }
    assert resolve(value, ctx) == "s3://b/train/abc123/0.2"


def test_json_get_reads_the_property_file():
    ctx = context(**{"Eval.Report": {"gap": {"loss": 0.31}, "rounds": [1, 2]}})
    get = {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Eval.PropertyFiles.Report"}, "Path": "gap.loss"}}
    assert resolve(get, ctx) == 0.31
    condition = {"Type": "LessThanOrEqualTo", "LeftValue": get, "RightValue": {"Get": "Parameters.MaxGap"}}
    assert evaluate_condition(condition, ctx) is False
    assert evaluate_condition({"Type": "Not", "Condition": condition}, ctx) is True


def test_unknown_references_raise():
    ctx = context()
    with pytest.raises(ExpressionError, match="unknown parameter"):
        resolve({"Get": "Parameters.Nope"}, ctx)
    with pytest.raises(ExpressionError, match="has not run"):
        resolve({"Get": "Steps.Later.Outcome"}, ctx)
    with pytest.raises(ExpressionError, match="unsupported pipeline function"):
        resolve({"Std:Frobnicate": {}}, ctx)


def test_steps_run_after_what_they_reference_and_cycles_are_refused():
    from pipelines.local.engine.runner import order_steps, parameter_values

    steps = [
        {"Name": "Evaluate", "Type": "Processing", "Arguments": {"In": {"Get": "Steps.Train.ModelArtifacts"}}},
        {"Name": "Train", "Type": "Training", "Arguments": {}, "DependsOn": ["Prep"]},
        {"Name": "Prep", "Type": "Processing", "Arguments": {}},
    ]
    assert [s["Name"] for s in order_steps(steps)] == ["Prep", "Train", "Evaluate"]
    steps[2]["DependsOn"] = ["Evaluate"]
    with pytest.raises(ValueError, match="cycle"):
        order_steps(steps)

    definition = {"Parameters": [{"Name": "N", "Type": "Integer", "DefaultValue": 3}, {"Name": "S", "Type": "String"}]}
    assert parameter_values(definition, {"S": "x"}) == {"N": 3, "S": "x"}
    with pytest.raises(ValueError, match="S has no default"):
        parameter_values(definition, {})
