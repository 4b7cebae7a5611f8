"""Shared fixtures: a real moto server over HTTP on 127.0.0.1, and the AWS environment pointing at it."""

from __future__ import annotations

import boto3
import pytest
import requests
from helpers import REGION, run_script
from sklearn.datasets import load_digits

from pipelines.moto_server import MotoServer


@pytest.fixture(scope="session")
def moto_server():
    server = MotoServer().start()
    yield server
    server.stop()


@pytest.fixture
def aws(moto_server, monkeypatch):
    """Point every AWS client, in this process and in subprocesses, at a freshly reset moto server."""
    requests.post(f"{moto_server.endpoint}/moto-api/reset", timeout=10)
    for key, value in moto_server.env(REGION).items():
        monkeypatch.setenv(key, value)
    return moto_server


@pytest.fixture
def clients(aws):
    session = boto3.Session(region_name=REGION)
    return {name: session.client(name) for name in ("s3", "sagemaker", "cloudwatch", "sns", "events")}


@pytest.fixture(scope="session")
def splits(tmp_path_factory):
    """The digits table as preprocessing writes it (300 training rows), made once for the session."""
    root = tmp_path_factory.mktemp("digits")
    load_digits(as_frame=True).frame.to_csv(root / "digits.csv", index=False)
    result = run_script(
        "preprocess.py",
        "--input",
        str(root / "digits.csv"),
        "--output-dir",
        str(root / "out"),
        "--target",
        "target",
        "--max-train-rows",
        "300",
        env={"REGULA_METRICS": "off"},
    )
    assert result.returncode == 0, result.stderr
    return root / "out"
