"""Evaluate the functions of a SageMaker pipeline definition: Get, Std:Join, Std:JsonGet, conditions.

The same semantics SageMaker applies when it runs a definition, for the parts
Regula's local runner needs. Unknown functions raise, never pass silently.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_TOKEN = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_]*)|\[(?:'([^']*)'|\"([^\"]*)\"|(\d+))\]")


class ExpressionError(Exception):
    pass


def parse_path(path: str) -> list[str | int]:
    """`Outputs['train'].S3Output.S3Uri` -> ['Outputs', 'train', 'S3Output', 'S3Uri']."""
    tokens: list[str | int] = []
    position = 0
    while position < len(path):
        match = _TOKEN.match(path, position)
        if not match:
            raise ExpressionError(f"cannot parse property path {path!r} at {path[position:]!r}")
        name, quoted, double_quoted, index = match.groups()
        tokens.append(int(index) if index is not None else (name or quoted or double_quoted))
        position = match.end()
    return tokens


def lookup(value: Any, tokens: list[str | int], what: str) -> Any:
    for token in tokens:
        if isinstance(value, dict) and token in value:
            value = value[token]
        elif isinstance(value, list) and isinstance(token, int) and token < len(value):
            value = value[token]
        elif isinstance(value, list) and isinstance(token, str):
            # SageMaker lists such as ProcessingOutputConfig.Outputs are indexed by name
            named = [
                item
                for item in value
                if isinstance(item, dict)
                and token in (item.get("OutputName"), item.get("Name"), item.get("ChannelName"))
            ]
            if not named:
                raise ExpressionError(f"{what}: no item named {token!r}")
            value = named[0]
        else:
            raise ExpressionError(f"{what}: no {token!r}")
    return value


def json_path(document: Any, path: str) -> Any:
    """The JsonPath subset SageMaker's JsonGet accepts: dotted names and [index]."""
    return lookup(document, parse_path(path), f"JsonGet path {path!r}")


@dataclass
class Context:
    """What expressions can refer to while an execution runs."""

    parameters: dict[str, Any]
    execution: dict[str, str]
    steps: dict[str, dict] = field(default_factory=dict)  # step name -> its properties
    read_property_file: Callable[[str, str], Any] | None = None  # (step, property file name) -> parsed JSON

    def get(self, reference: str) -> Any:
        root, _, rest = reference.partition(".")
        if root == "Parameters":
            if rest not in self.parameters:
                raise ExpressionError(f"unknown parameter {rest!r}")
            return self.parameters[rest]
        if root == "Execution":
            if rest not in self.execution:
                raise ExpressionError(f"unknown execution variable {rest!r}")
            return self.execution[rest]
        if root == "Steps":
            step, _, path = rest.partition(".")
            if step not in self.steps:
                raise ExpressionError(f"step {step!r} has not run")
            return lookup(self.steps[step], parse_path(path), f"Steps.{step}")
        raise ExpressionError(f"cannot resolve {reference!r}")


def resolve(value: Any, ctx: Context) -> Any:
    """Replace every pipeline function inside `value` by its value."""
    if isinstance(value, list):
        return [resolve(item, ctx) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Get"}:
        return ctx.get(value["Get"])
    if set(value) == {"Std:Join"}:
        join = value["Std:Join"]
        return str(join["On"]).join(to_text(resolve(item, ctx)) for item in join["Values"])
    if set(value) == {"Std:JsonGet"}:
        spec = value["Std:JsonGet"]
        reference = spec["PropertyFile"]["Get"]  # Steps.<step>.PropertyFiles.<name>
        match = re.fullmatch(r"Steps\.([^.]+)\.PropertyFiles\.([^.]+)", reference)
        if not match or ctx.read_property_file is None:
            raise ExpressionError(f"cannot read property file {reference!r}")
        document = ctx.read_property_file(match.group(1), match.group(2))
        return json_path(document, resolve(spec["Path"], ctx))
    if any(key.startswith("Std:") for key in value):
        raise ExpressionError(f"unsupported pipeline function {next(iter(value))}")
    return {key: resolve(item, ctx) for key, item in value.items()}


def to_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


_COMPARE = {
    "Equals": lambda a, b: a == b,
    "GreaterThan": lambda a, b: a > b,
    "GreaterThanOrEqualTo": lambda a, b: a >= b,
    "LessThan": lambda a, b: a < b,
    "LessThanOrEqualTo": lambda a, b: a <= b,
}


def _number_if_possible(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def evaluate_condition(condition: dict, ctx: Context) -> bool:
    kind = condition["Type"]
    if kind in _COMPARE:
        left = _number_if_possible(resolve(condition["LeftValue"], ctx))
        right = _number_if_possible(resolve(condition["RightValue"], ctx))
        try:
            return bool(_COMPARE[kind](left, right))
        except TypeError:
            raise ExpressionError(f"cannot compare {left!r} and {right!r} in {kind}") from None
    if kind == "In":
        return resolve(condition["QueryValue"], ctx) in [resolve(v, ctx) for v in condition["Values"]]
    if kind == "Not":
        return not evaluate_condition(condition["Condition"], ctx)
    if kind == "Or":
        return any(evaluate_condition(c, ctx) for c in condition["Conditions"])
    raise ExpressionError(f"unsupported condition type {kind}")
