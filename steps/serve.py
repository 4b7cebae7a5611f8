"""The model server of the Regula image: SageMaker's hosting contract on top of the handlers in inference.py.

SageMaker starts a serving container (real-time endpoint, batch transform) as `docker run IMAGE serve`, with the
model artifact unpacked in /opt/ml/model. The Regula image's `serve` runs this file from the artifact
(code/serve.py, packed beside the package code/steps/ by training), so a registered model carries the server
it was built with, and the image holds no Regula code. AWS's PyTorch inference images (TorchServe) end at 2.6.

- GET /ping: 200 once the model is loaded (it is loaded before the port opens).
- POST /invocations: the body as rows (`Content-Type`: text/csv, application/json, application/jsonlines), the
  answer as JSON. The handlers' ClientError (a missing column, a wrong type, an unknown content type) is a 400
  naming every problem; anything else a 500, with the traceback in the log.
- GET /execution-parameters: what batch transform may send at once.

Python's standard library only: one process, a thread per request (PyTorch releases the GIL in its kernels).
Port: SAGEMAKER_BIND_TO_PORT, else 8080.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from steps.serving_code import PROGRAM, module_name

MODEL_DIR = "/opt/ml/model"
MAX_PAYLOAD_MB = 6  # SageMaker's limit for a real-time request; batch transform is told so


def load_handlers(code_dir: str, program: str):
    """The module with model_fn, input_fn, predict_fn and output_fn: SAGEMAKER_PROGRAM, a file relative to the
    code folder (`steps/inference.py`, as the model package sets it), imported by its module name."""
    sys.path.insert(0, code_dir)
    return importlib.import_module(module_name(program))


class Handler(BaseHTTPRequestHandler):
    handlers = None  # set by make_server
    model = None
    protocol_version = "HTTP/1.1"
    timeout = 60  # seconds a client may take to send its request: a stalled connection does not hold a thread forever

    def do_GET(self) -> None:
        if self.path == "/ping":
            self.answer(200, b"")
        elif self.path == "/execution-parameters":
            limits = {"MaxConcurrentTransforms": 1, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": MAX_PAYLOAD_MB}
            self.answer(200, json.dumps(limits).encode())
        else:
            self.answer(404, self.error(f"no such path {self.path}; use POST /invocations"))

    def do_POST(self) -> None:
        if self.path != "/invocations":
            self.answer(404, self.error(f"no such path {self.path}; use POST /invocations"))
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_PAYLOAD_MB * 1024 * 1024:
            # an unbounded or unknown body is never read: it could hold the server's memory or the connection
            self.close_connection = True
            status, text = (
                (413, f"the body is over {MAX_PAYLOAD_MB} MB") if length > 0 else (411, "no valid Content-Length")
            )
            self.answer(status, self.error(text))
            return
        body = self.rfile.read(length)
        content_type = self.headers.get("Content-Type", "")
        accept = self.headers.get("Accept", "") or "application/json"
        if not any(kind in accept for kind in ("application/json", "*/*")):
            self.answer(406, self.error(f"the answer is application/json, not {accept}"))
            return
        h = self.handlers
        try:
            result = h.output_fn(h.predict_fn(h.input_fn(body, content_type), self.model), "application/json")
        except Exception as error:  # every failure is an HTTP answer: the server stays up
            if isinstance(error, getattr(h, "ClientError", ())):
                self.answer(400, self.error(str(error)))
            else:
                traceback.print_exc()
                self.answer(500, self.error(f"{type(error).__name__} while scoring; see the endpoint's log"))
            return
        self.answer(200, result.encode() if isinstance(result, str) else result)

    @staticmethod
    def error(message: str) -> bytes:
        return json.dumps({"error": message}).encode()

    def answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_request(self, code="-", size="-") -> None:
        if self.path != "/ping":  # SageMaker pings every few seconds: keep the log to the requests
            super().log_request(code, size)


def make_server(port: int, model_dir: str, code_dir: str, program: str) -> ThreadingHTTPServer:
    handlers = load_handlers(code_dir, program)
    model = handlers.model_fn(model_dir)
    handler = type("ModelHandler", (Handler,), {"handlers": handlers, "model": model})
    return ThreadingHTTPServer(("", port), handler)


def main() -> None:
    parser = argparse.ArgumentParser(description="serve a Regula model artifact as SageMaker hosting expects")
    parser.add_argument("--model-dir", default=MODEL_DIR)
    parser.add_argument("--port", type=int, default=int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080")))
    args = parser.parse_args()
    server = make_server(
        args.port,
        args.model_dir,
        os.environ.get("SAGEMAKER_SUBMIT_DIRECTORY", str(Path(__file__).resolve().parent)),
        os.environ.get("SAGEMAKER_PROGRAM", PROGRAM),
    )
    print(f"serving on port {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
