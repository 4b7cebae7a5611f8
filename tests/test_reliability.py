"""CloudWatch misbehaving during training never costs the model: throttled, or hanging."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from helpers import run_training

pytestmark = pytest.mark.slow  # a dead CloudWatch costs each run its flush deadline: the slow tier


class Throttling(BaseHTTPRequestHandler):
    requests = 0

    def do_POST(self):  # noqa: N802 - http.server's naming
        type(self).requests += 1
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"__type": "Throttling", "message": "Rate exceeded"}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("x-amzn-query-error", "Throttling;Sender")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Hanging(Throttling):
    def do_POST(self):  # noqa: N802
        type(self).requests += 1
        time.sleep(30)


@pytest.mark.parametrize("handler", [Throttling, Hanging], ids=["throttled", "hanging"])
def test_training_keeps_its_model_when_cloudwatch_misbehaves(handler, splits, tmp_path):
    handler.requests = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        started = time.monotonic()
        result = run_training(
            splits,
            tmp_path / "model",
            "--max_epochs",
            "15",
            "--pipeline_name",
            "t",
            env={
                "REGULA_METRICS": "on",
                "AWS_ENDPOINT_URL": f"http://127.0.0.1:{server.server_address[1]}",
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_ACCESS_KEY_ID": "x",
                "AWS_SECRET_ACCESS_KEY": "x",
            },
        )
        seconds = time.monotonic() - started
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "model" / "model.pt").stat().st_size > 0
    assert json.loads((tmp_path / "model" / "config.json").read_text())["epochs"] >= 1
    assert handler.requests >= 1, "the metrics were really sent"
    assert "dropped" in result.stderr
    assert seconds < 45, "a dead metrics endpoint may cost at most the flush deadline"
