"""Pipeline parameter values as an execution gets them: defaults from the definition, overrides typed and checked.

One check for every way a run starts (`regula run --local`, `regula start`): unknown names, types, declared enum
values, the ranges of steps/parameters.py, and a TrainingInstanceType the rendered training image cannot use, all
reported at once, before anything is started or uploaded.
"""

from __future__ import annotations

from typing import Any

from pipelines.errors import UsageValueError
from pipelines.local.engine.graph import all_steps
from pipelines.local.engine.parameters import typed_values
from pipelines.local.engine.step_types import StepType
from steps import parameter_table, parameters


def parameter_values(definition: dict, overrides: dict[str, str]) -> dict[str, Any]:
    """Every declared parameter's value for an execution with `overrides`; ValueError naming every problem."""
    # the types and the definition's enums are the engine's check (pipelines/local/engine/parameters.py); an enum is
    # left to steps/parameters.py where the table's choices say the same (one message). It may be narrower than
    # them: ModelApprovalStatus is PendingManualApproval only unless rendered with --allow-auto-approval
    choices = {q.name: set(q.choices) for q in parameter_table.TABLE}
    said = [
        p["Name"]
        for p in definition.get("Parameters", [])
        if p.get("EnumValues") and set(p["EnumValues"]) == choices.get(p["Name"], set())
    ]
    values, problems = typed_values(definition, overrides, enums_checked_elsewhere=said)
    problems += parameters.problems(values)
    device, image = training_device(definition)
    if device and "TrainingInstanceType" in values:
        problem = parameters.training_instance_problem(values["TrainingInstanceType"], device, image)
        problems += [problem] if problem else []
    if problems:
        raise UsageValueError("; ".join(problems))
    return values


def training_device(definition: dict) -> tuple[str | None, str]:
    """The device the definition's training image was built for, and that image: the training steps' environment
    records it (rendered --training-device). (None, "") for a definition without training steps or that record."""
    for step in all_steps(definition.get("Steps", [])):
        arguments = step.get("Arguments", {})
        if step["Type"] == StepType.TRAINING:
            device = arguments.get("Environment", {}).get(parameters.TRAINING_DEVICE_VARIABLE)
            if device:
                return device, arguments.get("AlgorithmSpecification", {}).get("TrainingImage", "")
    return None, ""
