"""Pipeline parameter values as an execution gets them: the definition's defaults, overrides typed as the definition
declares them and held to its enum values; unknown names refused."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from pipelines.errors import UsageValueError

CASTS = {"String": str, "Integer": int, "Float": float, "Boolean": lambda v: str(v).lower() == "true"}


def typed_values(
    definition: dict, overrides: dict[str, str], enums_checked_elsewhere: Collection[str] = ()
) -> tuple[dict[str, Any], list[str]]:
    """Every declared parameter's value for an execution with `overrides`, and the problems found (each in one
    sentence); ValueError at once for names the definition does not declare. The enum values of the parameters in
    `enums_checked_elsewhere` are left to the caller's own check (one message, not two)."""
    declared = {p["Name"]: p for p in definition.get("Parameters", [])}
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise UsageValueError(f"unknown pipeline parameter(s): {', '.join(unknown)}; known: {', '.join(declared)}")
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
        if enum and values[name] not in enum and name not in enums_checked_elsewhere:
            problems.append(f"pipeline parameter {name} must be one of {', '.join(spec['EnumValues'])}, got {raw!r}")
    return values, problems


def parameter_values(definition: dict, overrides: dict[str, str]) -> dict[str, Any]:
    """Every declared parameter's value for an execution with `overrides`; ValueError naming every problem."""
    values, problems = typed_values(definition, overrides)
    if problems:
        raise UsageValueError("; ".join(problems))
    return values
