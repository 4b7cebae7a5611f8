"""The model server of the Regula image: SageMaker's hosting contract on top of the handlers in inference.py.

SageMaker starts a serving container (real-time endpoint, batch transform) as `docker run IMAGE serve`, with the
model artifact unpacked in /opt/ml/model. The Regula image's `serve` runs this file from the artifact
(code/serve.py, packed beside the package code/steps/ by training), so a registered model carries the server
it was built with, and the image holds no Regula code. AWS's PyTorch inference images (TorchServe) end at 2.6.

- GET /ping: 200 once the model is loaded (the parent loads it once before the port opens, so a broken artifact
  fails at start with its error; each worker then loads its own copy before it accepts a connection).
- POST /invocations: the body as rows (`Content-Type`: text/csv, application/json, application/jsonlines), the
  answer as JSON. The handlers' ClientError (a missing column, a wrong type, an unknown content type) is a 400
  naming every problem; anything else a 500, with the traceback in the log.
- GET /execution-parameters: what batch transform may send at once.

The HTTP server is uvicorn (in AWS's PyTorch image; pinned in containers/steps/requirements.txt) with its h11
parser, one worker process per CPU (SAGEMAKER_MODEL_SERVER_WORKERS overrides), each scoring in a small thread pool
so that its event loop keeps reading other requests; the listen backlog holds BACKLOG connections. A slow or
stalled client costs a socket, not a thread, and `RequestDeadline` gives every request (its headers and its body)
REQUEST_SECONDS in all from its connection or the previous answer, where uvicorn times only idle keep-alive. A body
the server does not read (a 404, a GET with a body) is drained by the parser, so the next request on the connection
stays in step. docs/serving.md has the measurements behind these choices. Port: SAGEMAKER_BIND_TO_PORT, else 8080.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import resource
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from inspect import signature
from pathlib import Path

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.supervisors import Multiprocess

from steps.serving_code import PROGRAM, module_name

MODEL_DIR = "/opt/ml/model"
MAX_PAYLOAD_MB = 6  # SageMaker's limit for a real-time request; batch transform is told so
REQUEST_SECONDS = 20.0  # a whole request (headers and body) must arrive within this; SageMaker's own limit is 60 s
KEEPALIVE_SECONDS = 5  # an idle keep-alive connection is closed after this
BACKLOG = 2048  # connections the kernel queues while every worker is busy (Linux caps it at net.core.somaxconn)
CONNECTIONS_PER_WORKER = 1024  # beyond these, a request is answered 503 at once instead of queueing
THREADS_PER_WORKER = 2  # one request's parsing (Python, under the GIL) overlaps another's PyTorch kernels
SETTINGS = "REGULA_SERVE"  # the environment variable that hands the parent's settings to the worker processes


def available_cpus() -> int:
    """The CPUs this process may use: its affinity, and a cgroup v2 quota (a container's --cpus) when set."""
    cpus = len(os.sched_getaffinity(0))
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cpus = min(cpus, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cpus


def load_handlers(code_dir: str, program: str):
    """The module with model_fn, input_fn, predict_fn and output_fn: SAGEMAKER_PROGRAM, a file relative to the
    code folder (`steps/inference.py`, as the model package sets it), imported by its module name."""
    if code_dir not in sys.path:
        sys.path.insert(0, code_dir)
    return importlib.import_module(module_name(program))


class App:
    """The ASGI application of one worker: the handlers and the model, loaded when it is made."""

    def __init__(self, settings: dict):
        self.handlers = load_handlers(settings["code_dir"], settings["program"])
        if "torch" in sys.modules:  # workers x threads fill the CPUs: PyTorch's own threads would oversubscribe
            sys.modules["torch"].set_num_threads(settings["torch_threads"])
        self.model = self.handlers.model_fn(settings["model_dir"])
        self.pool = ThreadPoolExecutor(settings["threads"], thread_name_prefix="score")
        limits = {"MaxConcurrentTransforms": settings["workers"], "BatchStrategy": "MULTI_RECORD"}
        self.limits = json.dumps({**limits, "MaxPayloadInMB": MAX_PAYLOAD_MB}).encode()
        print(f"worker {os.getpid()} ready", flush=True)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        start = time.perf_counter()
        answer = await self.respond(scope, receive)
        if answer is None:  # the client went away (or ran out of time) before its request was in
            return
        status, body, close = answer
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if close:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        if scope["path"] != "/ping":  # SageMaker pings every few seconds: keep the log to the requests
            milliseconds = (time.perf_counter() - start) * 1000
            print(f'"{scope["method"]} {scope["path"]}" {status} {len(body)} {milliseconds:.1f} ms', flush=True)

    async def respond(self, scope, receive) -> tuple[int, bytes, bool] | None:
        method, path = scope["method"], scope["path"]
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        if "transfer-encoding" in headers and "content-length" in headers:
            # the parser goes by Transfer-Encoding; a proxy in front that goes by Content-Length would see another
            # request in the body (request smuggling): refused, and the connection closed (RFC 9112, 6.3)
            return 400, error("both Transfer-Encoding and Content-Length"), True
        if path == "/ping" and method in ("GET", "HEAD"):
            return 200, b"", False
        if path == "/execution-parameters" and method == "GET":
            return 200, self.limits, False
        if path not in ("/ping", "/execution-parameters", "/invocations"):
            return 404, error(f"no such path {path}; use POST /invocations"), False
        if method != "POST" or path != "/invocations":
            return 405, error(f"{method} {path} is not served; use POST /invocations"), False
        limit = MAX_PAYLOAD_MB * 1024 * 1024
        if int(headers.get("content-length") or 0) > limit:  # the parser has checked it is a number
            return 413, error(f"the body is over {MAX_PAYLOAD_MB} MB"), True  # never read: the connection closes
        accept = headers.get("accept", "") or "application/json"
        if not any(kind in accept for kind in ("application/json", "*/*")):
            return 406, error(f"the answer is application/json, not {accept}"), False
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit:  # chunked: no length said up front
                return 413, error(f"the body is over {MAX_PAYLOAD_MB} MB"), True
            if not message.get("more_body", False):
                break
        loop = asyncio.get_running_loop()
        return (
            *await loop.run_in_executor(self.pool, self.score, b"".join(chunks), headers.get("content-type")),
            False,
        )

    def score(self, body: bytes, content_type: str | None) -> tuple[int, bytes]:
        h, model = self.handlers, self.model
        try:
            # Regula's Predictor reads JSON against the model's own columns; another program's model, by input_fn
            read = getattr(model, "read_rows", None) or h.input_fn
            result = h.output_fn(h.predict_fn(read(body, content_type or ""), model), "application/json")
        except Exception as failure:  # every failure is an HTTP answer: the server stays up
            if isinstance(failure, getattr(h, "ClientError", ())):
                return 400, error(str(failure))
            traceback.print_exc()
            return 500, error(f"{type(failure).__name__} while scoring; see the endpoint's log")
        return 200, result.encode() if isinstance(result, str) else result


def error(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


def settings_from_environment() -> dict:
    return json.loads(os.environ[SETTINGS])


def app() -> App:
    """The worker's application (uvicorn's factory): settings from the parent, through the environment."""
    return App(settings_from_environment())


class RequestDeadline(H11Protocol):
    """uvicorn's h11 connection with a deadline for each request: its headers and its body must be in within the
    request timeout, counted from the connection (or from the previous answer on a keep-alive connection). uvicorn
    times only idle keep-alive, so a client trickling a byte at a time would hold its connection for as long as it
    liked. The time the model spends scoring is not the client's, and is not counted."""

    def connection_made(self, transport) -> None:
        self.request_timeout = settings_from_environment()["request_timeout"]
        self.deadline = None
        super().connection_made(transport)
        self.arm()

    def arm(self) -> None:
        self.disarm()
        self.deadline = self.loop.call_later(self.request_timeout, self.expire)

    def disarm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def handle_events(self) -> None:
        super().handle_events()
        # the whole request is in and its answer is being made: the rest is the server's time
        if self.conn.their_state in (h11.DONE, h11.MUST_CLOSE) and self.conn.our_state is h11.SEND_RESPONSE:
            self.disarm()

    def on_response_complete(self) -> None:
        self.arm()  # first: a pipelined request that is already complete disarms it again
        super().on_response_complete()

    def connection_lost(self, exc) -> None:
        self.disarm()
        super().connection_lost(exc)

    def expire(self) -> None:
        self.deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is None or not self.cycle.response_started:
            self.transport.write(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        self.transport.close()  # the handler, if it was waiting for the body, sees a disconnect


def raise_open_files_limit(wanted: int) -> None:
    """Each connection is a file descriptor: a container's soft limit (often 1024) would refuse connections long
    before CONNECTIONS_PER_WORKER. Raised up to the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="serve a Regula model artifact as SageMaker hosting expects")
    parser.add_argument("--model-dir", default=MODEL_DIR)
    parser.add_argument("--host", default="0.0.0.0")  # a container's port is reached from outside it
    parser.add_argument("--port", type=int, default=int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080")))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("SAGEMAKER_MODEL_SERVER_WORKERS", "0")))
    parser.add_argument("--request-timeout", type=float, default=REQUEST_SECONDS, help="seconds for a whole request")
    args = parser.parse_args(argv)
    cpus = available_cpus()
    workers = args.workers if args.workers > 0 else cpus
    settings = {
        "model_dir": args.model_dir,
        "code_dir": os.environ.get("SAGEMAKER_SUBMIT_DIRECTORY", str(Path(__file__).resolve().parent)),
        "program": os.environ.get("SAGEMAKER_PROGRAM", PROGRAM),
        "workers": workers,
        "threads": THREADS_PER_WORKER,
        "torch_threads": max(1, cpus // workers),
        "request_timeout": args.request_timeout,
    }
    os.environ[SETTINGS] = json.dumps(settings)  # what the workers read (they are spawned: fresh interpreters)
    raise_open_files_limit(CONNECTIONS_PER_WORKER + 64)
    first = App(settings)  # a broken artifact fails here, with its traceback, before the port opens
    config = uvicorn.Config(
        first if workers == 1 else "serve:app",  # several workers import this file from the artifact by name
        factory=workers > 1,
        host=args.host,
        port=args.port,
        workers=workers,
        http=RequestDeadline if workers == 1 else "serve:RequestDeadline",
        loop="asyncio",
        lifespan="off",
        backlog=BACKLOG,
        limit_concurrency=CONNECTIONS_PER_WORKER,
        timeout_keep_alive=KEEPALIVE_SECONDS,
        access_log=False,
        log_level="warning",
    )
    sock = config.bind_socket()
    sock.listen(BACKLOG)  # connections wait in the queue, not refused, while the workers load the model
    print(
        f"{workers} workers x {THREADS_PER_WORKER} threads ({cpus} CPUs), whole-request timeout "
        f"{args.request_timeout:g} s, backlog {BACKLOG}",
        flush=True,
    )
    print(f"serving on port {sock.getsockname()[1]}", flush=True)
    if workers == 1:
        uvicorn.Server(config).run(sockets=[sock])
    else:
        del first  # each worker loads its own
        # uvicorn 0.44 (AWS's image) is given the workers' entry; later versions make it themselves
        target = {"target": uvicorn.Server(config).run} if "target" in signature(Multiprocess).parameters else {}
        Multiprocess(config, sockets=[sock], **target).run()


if __name__ == "__main__":
    main()
