"""The pipeline parameters' names, defaults and meanings, without the SageMaker SDK: for `--help` and for checking
`--param` names before rendering (seconds) starts. They come from steps/parameter_table.py, declared once there;
tests/test_preflight.py holds what this module says to what the definition renders."""

from __future__ import annotations

import difflib

from pipelines.errors import UsageValueError
from pipelines.settings import Settings
from steps import parameter_table


def names() -> list[str]:
    """Every parameter's name, spot-only ones included, in the definition's order."""
    return [p.name for p in parameter_table.TABLE]


def declared(settings: Settings) -> dict[str, tuple[str, object]]:
    """(type, default) of every parameter the definition rendered for `settings` declares."""
    return {p.name: (p.type, _default(p, settings)) for p in parameter_table.TABLE if settings.spot or not p.spot_only}


def light_definition(settings: Settings) -> dict:
    """The parameters as a rendered definition declares them, for checking values before rendering
    (pipelines/definition/parameters.parameter_values); the rendered definition is checked again after."""
    return {"Parameters": [{"Name": n, "Type": t, "DefaultValue": v} for n, (t, v) in declared(settings).items()]}


def _default(param: parameter_table.Parameter, settings: Settings):
    return getattr(settings, param.setting) if param.setting else param.default


def help_text(settings: Settings | None = None) -> str:
    """The `--param` names with their defaults, for an epilog."""
    settings = settings or Settings()
    lines = ["pipeline parameters (--param NAME=VALUE; names are case-insensitive):"]
    for param in parameter_table.TABLE:
        shown = "(spot only)" if param.spot_only and not settings.spot else repr(_default(param, settings))
        lines.append(f"  {param.name:<23} {shown:<22} {param.help}")
    return "\n".join(lines)


def did_you_mean(name: str, known: list[str], quote: str = "") -> str:
    """' (did you mean X?)' for the closest known name, compared without case; '' when none is close."""
    lowered = {k.lower(): k for k in known}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean {quote}{lowered[close[0]]}{quote}?)" if close else ""


def canonical_names(params: dict[str, str], known: list[str]) -> dict[str, str]:
    """`params` with each name spelled as declared (maxgap -> MaxGap). Unknown names: ValueError naming each, with
    the closest known name, before anything is rendered or started."""
    lowered = {k.lower(): k for k in known}
    named, unknown = {}, []
    for name, value in params.items():
        if name in known or name.lower() in lowered:
            canonical = name if name in known else lowered[name.lower()]
            if canonical in named:
                raise UsageValueError(f"pipeline parameter {canonical} given twice (as {name} too)")
            named[canonical] = value
        else:
            unknown.append(f"{name}{did_you_mean(name, known)}")
    if unknown:
        raise UsageValueError(f"unknown pipeline parameter(s): {', '.join(unknown)}; known: {', '.join(known)}")
    return named
