"""The order a pipeline definition's steps run in: each after the steps it refers to or depends on."""

from __future__ import annotations

from typing import Any


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
        if step["Type"] == "Condition":
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
