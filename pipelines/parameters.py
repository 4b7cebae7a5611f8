"""Pipeline parameter values as an execution gets them: defaults from the definition, overrides typed and checked.

One check for every way a run starts (`regula run --local`, `regula start`): unknown names, types, declared enum
values, and the ranges of steps/parameters.py, all reported at once, before anything is started or uploaded.
"""

from __future__ import annotations

from typing import Any

from steps import parameters

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
        if spec.get("EnumValues") and values[name] not in spec["EnumValues"] and name not in parameters.CHOICES:
            problems.append(f"pipeline parameter {name} must be one of {', '.join(spec['EnumValues'])}, got {raw!r}")
    problems += parameters.problems(values)
    if problems:
        raise ValueError("; ".join(problems))
    return values
