"""Render the pipeline definition: deterministic JSON, no AWS calls."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings

from pipelines.settings import REPO_ROOT, Settings


def render(settings: Settings | None = None):
    """Return (definition JSON text, session). The session's `uploads` hold the step code."""
    root = logging.getLogger()
    root_level, root_handlers = root.level, list(root.handlers)
    try:
        from pipelines.definition import build_pipeline
        from pipelines.session import RegulaSession
    finally:
        # importing the SDK calls logging.basicConfig(level=INFO): every boto call would then log
        root.setLevel(root_level)
        root.handlers[:] = root_handlers

    settings = settings or Settings()
    logging.disable(logging.WARNING)  # the SDK logs every call; its notes on rendering are not for users
    region_was = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = settings.region  # ProcessingStep builds a LocalSession, which needs one
    try:
        session = RegulaSession(settings.region, settings.bucket, settings.prefix)
        with warnings.catch_warnings(), contextlib.chdir(REPO_ROOT):
            warnings.simplefilter("ignore")
            pipeline = build_pipeline(settings, session)
            definition = json.loads(pipeline.definition())
    finally:
        logging.disable(logging.NOTSET)
        if region_was is None:
            os.environ.pop("AWS_DEFAULT_REGION", None)
        else:
            os.environ["AWS_DEFAULT_REGION"] = region_was
    return json.dumps(definition, indent=2) + "\n", session
