"""The model server of the Regula image (code/serve.py in the artifact), run as SageMaker hosting runs it: a
separate process answering /ping and /invocations over HTTP."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from helpers import STEPS, run_training, serving
from sklearn.datasets import load_digits

from steps import serving_code

ROWS = load_digits(as_frame=True).frame.drop(columns=["target"]).head(5)


@pytest.fixture(scope="module")
def model_dir(splits, tmp_path_factory):
    model = tmp_path_factory.mktemp("serve") / "model"
    result = run_training(splits, model, "--max_epochs", "5")
    assert result.returncode == 0, result.stderr
    return model


REQUEST_TIMEOUT = 3  # the whole-request timeout the test server runs with (20 s by default)


@pytest.fixture(scope="module")
def server(model_dir):
    """Two worker processes, the whole-request timeout shortened for the tests."""
    with serving(model_dir, 2, REQUEST_TIMEOUT) as url:
        yield url


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
        (
            ROWS.astype(float).assign(pixel_0_2=[1.0, float("inf"), 2.0, 3.0, float("-inf")]).to_csv(index=False),
            "text/csv",
            "application/json",
            400,
            "column 'pixel_0_2': 2 values are infinite, not finite numbers (inf, -inf; rows 1, 4)",
        ),
        (
            json.dumps([{"pixel 0 0": 1}, {"target": 3}]),
            "application/json",
            "application/json",
            400,
            "the 2 JSON records have none of the model's columns: got 'pixel 0 0', 'target'; expected 'pixel_0_0', "
            "'pixel_0_1', 'pixel_0_2', 'pixel_0_3', 'pixel_0_4', 'pixel_0_5', 'pixel_0_6', 'pixel_0_7', 'pixel_1_0', "
            "'pixel_1_1' and 54 more",
        ),
    ],
    ids=["missing column", "content type", "bad json", "accept", "infinite number", "none of the model's keys"],
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
    [("7000000", 413, "the body is over 6 MB"), ("-5", 400, "Invalid HTTP request"), ("abc", 400, "Invalid HTTP")],
)
def test_a_body_too_large_or_of_unknown_length_is_refused_unread_and_the_server_stays_up(
    server, length, status, message
):
    connection = http.client.HTTPConnection(*address(server), timeout=10)
    connection.putrequest("POST", "/invocations")
    connection.putheader("Content-Type", "text/csv")
    connection.putheader("Content-Length", length)
    connection.endheaders()  # no body follows: the server must answer without waiting for one
    response = connection.getresponse()
    assert response.status == status and message in response.read().decode()
    assert response.getheader("Connection") == "close"
    connection.close()
    assert call(f"{server}/ping")[0] == 200


def address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def test_fifty_clients_at_once_are_all_answered(server):
    """200 requests from 50 clients, each on a connection of its own: none is reset (the standard library's
    server, with its backlog of 5, reset 10-18% of them)."""
    body = ROWS.to_csv(index=False)
    expected = call(f"{server}/invocations", body)
    barrier = threading.Barrier(50)

    def client(_) -> list:
        barrier.wait()  # all 50 connect at once
        answers = []
        for _ in range(4):
            try:
                answers.append(call(f"{server}/invocations", body))
            except OSError as failure:  # a reset, a refusal, a timeout
                answers.append(repr(failure))
        return answers

    with ThreadPoolExecutor(50) as pool:
        answers = [a for chunk in pool.map(client, range(50)) for a in chunk]
    assert len(answers) == 200 and answers == [expected] * 200, [a for a in answers if a != expected][:3]


def read_answer(connection: socket.socket, deadline: float) -> bytes:
    """Everything the server sends until it closes the connection or `deadline` passes."""
    received = b""
    while time.monotonic() < deadline:
        connection.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = connection.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk
    raise AssertionError(f"still open after the deadline; received {received[:200]!r}")


@pytest.mark.parametrize("stage", ["headers", "body"])
def test_a_trickled_request_is_cut_at_the_whole_request_timeout(server, stage):
    """A client sending a byte every 0.25 s never lets a per-read timeout fire: the request as a whole is refused
    (408, connection closed) once the timeout has passed, however steadily it trickles, and is never scored."""
    body = ROWS.to_csv(index=False).encode()
    head = f"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: {len(body)}\r\n\r\n"
    trickle = head.encode() + body if stage == "headers" else body  # from the first byte, or after the headers
    connection = socket.create_connection(address(server))
    start = time.monotonic()
    if stage == "body":
        connection.sendall(head.encode())
    sent, closed_at, answer = 0, None, b""
    while time.monotonic() - start < REQUEST_TIMEOUT + 5 and sent < len(trickle):
        try:
            connection.sendall(trickle[sent : sent + 1])
        except (BrokenPipeError, ConnectionResetError):
            closed_at = time.monotonic() - start
            break
        sent += 1
        time.sleep(0.25)
        connection.settimeout(0)
        try:
            answer = connection.recv(65536)
        except BlockingIOError:
            continue
        except ConnectionResetError:
            answer = b""
        closed_at = time.monotonic() - start
        break
    connection.close()
    assert closed_at is not None, "the trickled request was still being read after the timeout"
    assert REQUEST_TIMEOUT - 0.5 <= closed_at <= REQUEST_TIMEOUT + 2, closed_at
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408 "), answer


def test_hundreds_of_stalled_connections_hold_no_worker_and_are_closed_at_the_timeout(server):
    """slowloris: 300 connections that send half a request and stall. A real request is answered meanwhile, in
    well under a second; every stalled connection is closed once the whole-request timeout has passed."""
    stalled = []
    for n in range(300):
        connection = socket.create_connection(address(server))
        connection.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n" if n % 2 else b"GE")
        stalled.append(connection)
    start = time.monotonic()
    assert call(f"{server}/invocations", ROWS.to_csv(index=False))[0] == 200
    assert time.monotonic() - start < 2
    deadline = start + REQUEST_TIMEOUT + 5
    answers = [read_answer(connection, deadline) for connection in stalled]
    for connection in stalled:
        connection.close()
    assert all(a == b"" or a.startswith(b"HTTP/1.1 408 ") for a in answers), {a[:40] for a in answers}
    assert call(f"{server}/ping")[0] == 200


def test_an_unread_body_leaves_the_keep_alive_connection_in_step(server):
    """A 404 to a POST and a GET with a body are answered without reading the body: the server still drains it,
    so the next request on the same connection is read as that request (and a body that looks like a request is
    never taken for one)."""
    smuggled = b"GET /nowhere-smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    connection = http.client.HTTPConnection(*address(server), timeout=10)
    exchanges = [
        ("POST", "/nowhere", smuggled, 404),
        ("GET", "/ping", smuggled, 200),
        ("GET", "/execution-parameters", b"x" * 100_000, 200),
        ("POST", "/invocations", ROWS.to_csv(index=False).encode(), 200),
        ("GET", "/ping", None, 200),
    ]
    answers = []
    for method, path, body, _ in exchanges:
        connection.request(method, path, body=body, headers={"Content-Type": "text/csv"})
        response = connection.getresponse()
        answers.append((response.status, response.read()))
        assert response.getheader("Connection") != "close"
    connection.close()
    assert [status for status, _ in answers] == [status for *_, status in exchanges], answers
    assert b"no such path /nowhere;" in answers[0][1] and answers[1][1] == b""
    assert json.loads(answers[2][1])["MaxPayloadInMB"] == 6
    assert len(json.loads(answers[3][1])["predictions"]) == len(ROWS)


def test_one_worker_serves_in_the_process_itself(model_dir):
    """One CPU: no supervisor, the parent process serves (the same handlers, the same deadline)."""
    with serving(model_dir, 1, REQUEST_TIMEOUT) as url:
        assert call(f"{url}/ping") == (200, "")
        status, answer = call(f"{url}/invocations", ROWS.to_csv(index=False))
        assert status == 200 and len(answer["predictions"]) == len(ROWS)
        connection = socket.create_connection(address(url))
        connection.sendall(b"GET /pi")
        assert read_answer(connection, time.monotonic() + REQUEST_TIMEOUT + 3).startswith(b"HTTP/1.1 408 ")
        connection.close()


def test_a_request_with_both_transfer_encoding_and_content_length_is_refused_and_the_connection_closed(server):
    """The parser goes by Transfer-Encoding: a proxy going by Content-Length would take the rest for a request of
    its own (request smuggling). Refused, and nothing after it on the connection is answered."""
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    head = b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nTransfer-Encoding: chunked\r\n"
    connection = socket.create_connection(address(server))
    connection.sendall(head + b"Content-Length: %d\r\n\r\n0\r\n\r\n" % (5 + len(smuggled)) + smuggled)
    answer = read_answer(connection, time.monotonic() + 5)
    connection.close()
    assert answer.startswith(b"HTTP/1.1 400 ") and b"both Transfer-Encoding and Content-Length" in answer
    assert answer.count(b"HTTP/1.1 ") == 1, answer
