"""The model server of the Regula image (code/serve.py in the artifact), run as SageMaker hosting runs it: a
separate process answering /ping and /invocations over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from helpers import STEPS, run_training
from sklearn.datasets import load_digits

from steps import serving_code

ROWS = load_digits(as_frame=True).frame.drop(columns=["target"]).head(5)


@pytest.fixture(scope="module")
def model_dir(splits, tmp_path_factory):
    model = tmp_path_factory.mktemp("serve") / "model"
    result = run_training(splits, model, "--max_epochs", "5")
    assert result.returncode == 0, result.stderr
    return model


@pytest.fixture(scope="module")
def server(model_dir):
    """`serve` as the image's entry runs it: code/serve.py of the artifact, the model folder as /opt/ml/model."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAGEMAKER_")}
    process = subprocess.Popen(
        [sys.executable, str(model_dir / "code" / "serve.py"), "--model-dir", str(model_dir), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env={**env, "PYTHONPATH": ""},  # only the artifact's code: nothing from steps/ on the path
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("serving on port "), line
        yield f"http://127.0.0.1:{int(line.split()[-1])}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def call(url: str, body: str | None = None, content_type: str = "text/csv", accept: str = "application/json"):
    """(status, decoded JSON answer or raw text) of a GET (no body) or POST."""
    headers = {"Content-Type": content_type, "Accept": accept}
    request = urllib.request.Request(url, data=None if body is None else body.encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    return status, json.loads(text) if text else text


def test_the_packed_server_scores_raw_rows_as_the_handlers_do(server, model_dir):
    assert call(f"{server}/ping") == (200, "")
    status, answer = call(f"{server}/invocations", ROWS.to_csv(index=False))
    assert status == 200 and len(answer["predictions"]) == len(ROWS)
    assert np.allclose(np.sum(answer["probabilities"], axis=1), 1, atol=1e-4)

    inference = serving_code.import_inference(model_dir / "code")
    expected = inference.model_fn(str(model_dir)).predict(ROWS)
    assert answer == json.loads(json.dumps(expected))

    # columns by name in any order, JSON and JSON lines alike; concurrent requests get the same answers
    shuffled = ROWS[list(reversed(ROWS.columns))]
    records = shuffled.to_dict(orient="records")
    lines = "\n".join(json.dumps(r) for r in records)
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(
                lambda body: call(f"{server}/invocations", *body),
                [(json.dumps(records), "application/json"), (lines, "application/jsonlines")] * 4,
            )
        )
    assert all(a == (200, answer) for a in answers)


@pytest.mark.parametrize(
    "body,content_type,accept,status,message",
    [
        (ROWS.iloc[:, :10].to_csv(index=False), "text/csv", "application/json", 400, "missing required column"),
        ("a;b", "text/plain", "application/json", 400, "unsupported content type 'text/plain'"),
        ("not json", "application/json", "application/json", 400, "cannot read the JSON body"),
        (ROWS.to_csv(index=False), "text/csv", "text/csv", 406, "the answer is application/json"),
    ],
    ids=["missing column", "content type", "bad json", "accept"],
)
def test_a_bad_request_is_a_client_error_naming_the_problem(server, body, content_type, accept, status, message):
    answered, text = call(f"{server}/invocations", body, content_type, accept)
    assert answered == status and message in text["error"], text
    assert call(f"{server}/ping")[0] == 200, "the server stays up"


def test_batch_transform_learns_the_limits_and_unknown_paths_are_404(server):
    status, limits = call(f"{server}/execution-parameters")
    assert status == 200 and limits["MaxPayloadInMB"] == 6
    assert call(f"{server}/nowhere")[0] == 404


def test_the_image_serves_the_artifacts_server():
    """SageMaker hosting runs `serve`: the image's one addition runs code/serve.py of the unpacked artifact."""
    dockerfile = (STEPS.parent / "containers" / "steps" / "Dockerfile").read_text()
    assert "/usr/local/bin/serve" in dockerfile and f"/opt/ml/model/code}}/{serving_code.SERVER}" in dockerfile


@pytest.mark.parametrize(
    "length,status,message",
    [("7000000", 413, "the body is over 6 MB"), ("-5", 411, "no valid Content-Length"), ("abc", 411, "no valid")],
)
def test_a_body_too_large_or_of_unknown_length_is_refused_unread_and_the_server_stays_up(
    server, length, status, message
):
    import http.client

    host, port = server.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.putrequest("POST", "/invocations")
    connection.putheader("Content-Type", "text/csv")
    connection.putheader("Content-Length", length)
    connection.endheaders()  # no body follows: the server must answer without waiting for one
    response = connection.getresponse()
    assert response.status == status and message in json.loads(response.read())["error"]
    connection.close()
    assert call(f"{server}/ping")[0] == 200
