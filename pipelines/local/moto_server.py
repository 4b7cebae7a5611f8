"""An embedded moto server: S3, SageMaker, CloudWatch and SNS on 127.0.0.1, for local runs and tests."""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "regula-local",
    "AWS_SECRET_ACCESS_KEY": "regula-local",
    "AWS_SESSION_TOKEN": "regula-local",
}


class MotoServer:
    def __init__(self):
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.endpoint = ""

    def start(self) -> MotoServer:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        """Stop serving, without waiting: the server thread notices within its poll interval (0.5 s, werkzeug's),
        which a run would otherwise spend idle at its end. Nothing is sent to it after this; the thread is a daemon."""
        threading.Thread(target=self._server.stop, name="moto-stop", daemon=True).start()

    def env(self, region: str) -> dict[str, str]:
        """What a process needs to talk to this server instead of AWS."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
            **FAKE_CREDENTIALS,
        }


@contextmanager
def aws_environment(region: str):
    """Yield the environment for AWS clients: AWS itself (or whatever AWS_ENDPOINT_URL
    names) when an endpoint is set, else a moto server started for the duration."""
    if os.environ.get("AWS_ENDPOINT_URL"):
        yield {
            "AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL"],
            "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", region),
            "AWS_REGION": os.environ.get("AWS_REGION", region),
        }
        return
    server = MotoServer().start()
    try:
        yield server.env(region)
    finally:
        server.stop()
