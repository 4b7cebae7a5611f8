"""Pipeline parameter values as an execution gets them: defaults from the definition, overrides typed and checked.

One check for every way a run starts (`regula run --local`, `regula start`): unknown names, types, declared enum
values, the ranges of steps/parameters.py, and a TrainingInstanceType the rendered training image cannot use, all
reported at once, before anything is started or uploaded.
"""

from __future__ import annotations

from typing import Any

from steps import parameter_table, parameters

CASTS = {"String": str, "Integer": int, "Float": float, "Boolean": lambda v: str(v).lower() == "true"}


def parameter_values(definition: dict, overrides: dict[str, str]) -> dict[str, Any]:
    """Every declared parameter's value for an execution with `overrides`; ValueError naming every problem."""
    declared = {p["Name"]: p for p in definition.get("Parameters", [])}
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise ValueError(f"unknown pipeline parameter(s): {', '.join(unknown)}; known: {', '.join(declared)}")
    values, problems = {}, []
    for name, spec in declared.items():
        raw = overrides.get(name, spec.get("DefaultValue"))
        if raw is None:
            problems.append(f"pipeline parameter {name} has no default and was not given")
            continue
        try:
            values[name] = CASTS[spec["Type"]](raw)
        except (TypeError, ValueError):
            problems.append(f"pipeline parameter {name} must be {spec['Type']}, got {raw!r}")
            continue
        enum = spec.get("EnumValues")
        # the definition's enum, unless the table's choices say the same (one message); it may be narrower than
        # them: ModelApprovalStatus is PendingManualApproval only unless rendered with --allow-auto-approval
        choices = next((p.choices for p in parameter_table.TABLE if p.name == name), ())
        said = set(enum or ()) == set(choices)
        if enum and values[name] not in enum and not said:
            problems.append(f"pipeline parameter {name} must be one of {', '.join(spec['EnumValues'])}, got {raw!r}")
    problems += parameters.problems(values)
    device, image = training_device(definition)
    if device and "TrainingInstanceType" in values:
        problem = parameters.training_instance_problem(values["TrainingInstanceType"], device, image)
        problems += [problem] if problem else []
    if problems:
        raise ValueError("; ".join(problems))
    return values


def training_device(definition: dict) -> tuple[str | None, str]:
    """The device the definition's training image was built for, and that image: the training steps' environment
    records it (rendered --training-device). (None, "") for a definition without training steps or that record."""
    pending = list(definition.get("Steps", []))
    while pending:
        step = pending.pop(0)
        arguments = step.get("Arguments", {})
        if step.get("Type") == "Condition":
            pending += arguments.get("IfSteps", []) + arguments.get("ElseSteps", [])
        elif step.get("Type") == "Training":
            device = arguments.get("Environment", {}).get(parameters.TRAINING_DEVICE_VARIABLE)
            if device:
                return device, arguments.get("AlgorithmSpecification", {}).get("TrainingImage", "")
    return None, ""
