"""LocalStack on 127.0.0.1, for what moto cannot do: evaluate alarms and run their SNS actions, and deliver EventBridge
events through an input transformer to SNS.

Installed on first use into ~/.cache/regula/localstack-venv-<hash of the requirements and the Python> (it needs
Python >= 3.12, found on PATH or under pyenv; under CI installed afresh on every run), then started as a plain
process: no Docker. Its requirements are declared once, in localstack-requirements.txt, not as an extra: its pins
conflict with Regula's (pyproject.toml says which).
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

REQUIREMENTS = Path(__file__).with_name("localstack-requirements.txt")
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "regula"


def find_python() -> str | None:
    """A Python >= 3.12 that really runs (a pyenv shim may exist for a version that is not selected)."""
    candidates = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[2-9]*/bin/python3")), reverse=True)
    candidates += [shutil.which(name) for name in ("python3.13", "python3.12", "python3")]
    for candidate in filter(None, candidates):
        check = subprocess.run([candidate, "-c", "import sys; assert sys.version_info >= (3, 12)"], capture_output=True)
        if check.returncode == 0:
            return candidate
    return None


def venv_key(python: str) -> str:
    """The cached venv's name: the requirements file and the exact Python that made it (a venv made by another
    Python, or from other pins, is another venv)."""
    version = subprocess.run([python, "-c", "import sys; print(sys.version)"], capture_output=True, text=True)
    digest = hashlib.sha256(REQUIREMENTS.read_bytes() + version.stdout.encode()).hexdigest()[:12]
    return f"localstack-venv-{digest}"


def ensure_venv(fresh: bool | None = None) -> Path | None:
    """LocalStack's venv, made on first use and reused after. `fresh` (default: under CI, CI set): made again even
    if cached, so pins that no longer install fail the run instead of hiding behind a venv installed earlier."""
    python = find_python()
    if python is None:
        return None
    fresh = bool(os.environ.get("CI")) if fresh is None else fresh
    venv = CACHE / venv_key(python)
    ready = venv / ".installed"
    if fresh or not ready.exists():
        ready.unlink(missing_ok=True)  # half made until the install below succeeds
        subprocess.run([python, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "-r", str(REQUIREMENTS)], check=True, timeout=900)
        ready.write_text("ok\n")
    return venv


class LocalStack:
    def __init__(self, venv: Path, workdir: Path):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "GATEWAY_LISTEN": f"127.0.0.1:{self.port}",
            "SERVICES": "cloudwatch,sns,ses,sts,events",
            # load them at start: SES is otherwise loaded by the first email, and its outbox (/_aws/ses) answers
            # 501 until then, so a test that reads it before SNS has delivered would fail instead of waiting
            "EAGER_SERVICE_LOADING": "1",
            "LOCALSTACK_VOLUME_DIR": str(workdir / "volume"),
            "SKIP_SSL_CERT_DOWNLOAD": "1",
        }
        for key in [k for k in env if k.startswith("AWS_ENDPOINT_URL")]:
            env.pop(key)
        self.log = open(workdir / "localstack.log", "w")
        self.process = subprocess.Popen(
            [str(venv / "bin" / "python"), "-m", "localstack.runtime.main"],
            cwd=workdir,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, seconds: float = 120) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"LocalStack exited with {self.process.returncode}; see {self.log.name}")
            try:
                urllib.request.urlopen(f"{self.endpoint}/_localstack/health", timeout=2)
                return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"LocalStack did not answer within {seconds}s; see {self.log.name}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()
