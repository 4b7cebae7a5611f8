"""Render the pipeline definition: deterministic JSON, no AWS calls."""

from __future__ import annotations

import json

from pipelines.definition import sdk
from pipelines.errors import UsageError
from pipelines.settings import REPO_ROOT, Settings


def render(settings: Settings | None = None):
    """Return (definition JSON text, session). The session's `uploads` hold the step code."""
    with sdk.quiet_import():
        from pipelines.definition.pipeline import build_pipeline
        from pipelines.definition.session import RegulaSession

    settings = settings or Settings()
    settings.account  # noqa: B018 - a malformed role ARN is refused before anything is rendered
    if settings.model_code:  # imported and built once on a dummy spec: a broken model fails here, not when billed
        from steps import model_code

        try:
            model_code.dry_run(settings.model_code)
        except model_code.ModelCodeError as error:  # the team's model, not Regula's code: a usage error, one line
            raise UsageError(str(error)) from None
    with sdk.rendering(settings.region, REPO_ROOT):
        session = RegulaSession(settings.region, settings.bucket, settings.prefix)
        definition = json.loads(build_pipeline(settings, session).definition())
    return json.dumps(definition, indent=2) + "\n", session
