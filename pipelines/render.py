"""Render the pipeline definition: deterministic JSON, no AWS calls."""

from __future__ import annotations

import contextlib
import json
import logging
import warnings

from pipelines.settings import REPO_ROOT, Settings


def render(settings: Settings | None = None):
    """Return (definition JSON text, session). The session's `uploads` hold the step code."""
    from pipelines.definition import build_pipeline
    from pipelines.session import RegulaSession

    settings = settings or Settings()
    logging.disable(logging.WARNING)  # the SDK logs every call; its notes on rendering are not for users
    try:
        session = RegulaSession(settings.region, settings.bucket, settings.prefix)
        with warnings.catch_warnings(), contextlib.chdir(REPO_ROOT):
            warnings.simplefilter("ignore")
            pipeline = build_pipeline(settings, session)
            definition = json.loads(pipeline.definition())
    finally:
        logging.disable(logging.NOTSET)
    return json.dumps(definition, indent=2) + "\n", session
