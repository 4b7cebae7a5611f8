"""Shared fixtures: a real moto server over HTTP on 127.0.0.1, and the AWS environment pointing at it.

Two tiers: `pytest` runs the fast one (unit tests, the step scripts, one whole local pipeline) for the edit-test
loop; `pytest --slow` runs everything, as CI does. Tests marked `slow` (whole pipelines, LocalStack, interrupts)
are left out of the fast tier, never deleted. Both run in a worker per CPU (pyproject.toml): every fixture here is
per worker (each has its own moto server on a free port), a test file's tests share one worker.
"""

from __future__ import annotations

import boto3
import pytest
import requests
from helpers import REGION, run_script
from sklearn.datasets import load_digits

from pipelines.local.moto_server import FAKE_CREDENTIALS, MotoServer


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", help="also run the slow tier (what CI runs)")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: whole local pipelines and other long tests, run with --slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--slow"):
        return
    slow = [item for item in items if "slow" in item.keywords]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if "slow" not in item.keywords]


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


@pytest.fixture(scope="session")
def boto_session(moto_server):
    """One boto3 session for the test process, bound to the moto server: each client it makes reuses the service
    models it has parsed (a fresh session parses them again, about 0.1 s of JSON per client)."""
    return boto3.Session(region_name=REGION, **{key.lower(): v for key, v in FAKE_CREDENTIALS.items()})


@pytest.fixture
def clients(aws, boto_session):
    """Clients of the AWS services Regula uses, on the freshly reset moto server."""
    names = ("s3", "sagemaker", "cloudwatch", "sns", "events")
    return {name: boto_session.client(name, endpoint_url=aws.endpoint) for name in names}


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
