"""The order a pipeline definition's steps run in (each after the steps it refers to or depends on), and every step
of a definition, those in condition branches too."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pipelines.local.engine.step_types import StepType


def referenced_steps(value: Any) -> set[str]:
    found = set()
    if isinstance(value, dict):
        if isinstance(value.get("Get"), str) and value["Get"].startswith("Steps."):
            found.add(value["Get"].split(".")[1])
        for item in value.values():
            found |= referenced_steps(item)
    elif isinstance(value, list):
        for item in value:
            found |= referenced_steps(item)
    return found


def order_steps(steps: list[dict]) -> list[dict]:
    """Dependencies first (data references and DependsOn), otherwise in definition order."""
    names = {s["Name"] for s in steps}
    needs = {}
    for step in steps:
        own = step.get("Arguments", {})
        if step["Type"] == StepType.CONDITION:
            own = own.get("Conditions", [])
        deps = referenced_steps(own) | referenced_steps(step.get("PropertyFiles", [])) | set(step.get("DependsOn", []))
        needs[step["Name"]] = (deps & names) - {step["Name"]}
    ordered, done = [], set()
    while len(ordered) < len(steps):
        ready = [s for s in steps if s["Name"] not in done and needs[s["Name"]] <= done]
        if not ready:
            raise ValueError("the pipeline's steps depend on each other in a cycle")
        ordered.append(ready[0])
        done.add(ready[0]["Name"])
    return ordered


def all_steps(steps: list[dict]) -> Iterator[dict]:
    """Every step, those in the branches of conditions too, each before the steps of its branches."""
    for step in steps:
        yield step
        if step["Type"] == StepType.CONDITION:
            yield from all_steps(step["Arguments"].get("IfSteps", []))
            yield from all_steps(step["Arguments"].get("ElseSteps", []))
