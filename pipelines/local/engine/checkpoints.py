"""A local training job's checkpoints, synced with S3 as SageMaker syncs them, and the spot-interruption test hook.

A training job's CheckpointConfig works as on SageMaker: its LocalPath is a folder of the job, filled from the S3Uri
before the job starts and copied back when it ends (SageMaker syncs it while the job runs). A test hook stands in for
a spot interruption (`REGULA_LOCAL_INTERRUPT`, see `interruption`): the job is stopped with SIGTERM, its checkpoint
folder uploaded, and the job started again on a fresh /opt/ml restored from S3, as SageMaker restarts it. The job
itself is pipelines/local/engine/jobs.py's.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pipelines.aws.s3 import download_prefix, upload_dir
from pipelines.local.engine.processes import StepFailed


class ContainerJob(Protocol):
    """What the checkpoints need of a job (pipelines/local/engine/jobs.py's ContainerJob, which imports them)."""

    s3: Any
    log_file: Path
    echo: Callable[[str], None]

    @property
    def step(self) -> str: ...

    def host_path(self, container_path: str) -> Path: ...


CHECKPOINT_DIR = "/opt/ml/checkpoints"  # SageMaker's CheckpointConfig.LocalPath when the job does not name one
INTERRUPT_VARIABLE = "REGULA_LOCAL_INTERRUPT"  # the spot-interruption test hook (`interruption`)
INTERRUPT_FORMAT = "STEP, STEP:after_checkpoint or STEP:after_epochs=N, comma-separated"


def interruption(spec: str, step: str, checkpoints: Path) -> Callable[[str], bool] | None:
    """A test hook, not a SageMaker feature: `REGULA_LOCAL_INTERRUPT="TrainRound1:after_epochs=5"` interrupts the
    training step TrainRound1 once, as a spot interruption would, when its output reaches epoch 5;
    `TrainRound1:after_checkpoint` (or just `TrainRound1`) once a file appears in its checkpoint folder. The predicate
    sees each line rank 0 prints; None when `spec` does not name `step`."""
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, when = item.partition(":")
        epochs = re.fullmatch(r"after_epochs=(\d+)", when)
        if when not in ("", "after_checkpoint") and not epochs:
            raise StepFailed(f"{INTERRUPT_VARIABLE}={spec!r}: {item!r} is not one of {INTERRUPT_FORMAT}")
        if name != step:
            continue
        if epochs:
            after = int(epochs[1])
            return lambda line: (m := re.match(r"epoch (\d+):", line)) is not None and int(m[1]) >= after
        return lambda line: checkpoints.is_dir() and any(p.is_file() for p in checkpoints.iterdir())
    return None


@dataclass
class CheckpointSync:
    """A training job's CheckpointConfig: its S3Uri, the job's folder for its LocalPath, and the test hook's
    predicate where REGULA_LOCAL_INTERRUPT names the job's step."""

    s3: Any
    uri: str
    folder: Path
    interrupt: Callable[[str], bool] | None = None

    @classmethod
    def for_job(cls, job: ContainerJob, args: dict) -> CheckpointSync | None:
        """The job's checkpoint sync, from its resolved `args`; None when it has no CheckpointConfig."""
        checkpoint = args.get("CheckpointConfig")
        if not checkpoint:
            return None
        folder = job.host_path(checkpoint.get("LocalPath") or CHECKPOINT_DIR)
        spec = os.environ.get(INTERRUPT_VARIABLE, "")
        interrupt = interruption(spec, job.step, folder) if spec else None
        return cls(job.s3, checkpoint["S3Uri"], folder, interrupt)

    def restore(self) -> int:
        """Copy the checkpoints under the S3Uri into the folder, as SageMaker does before a job starts; how many."""
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            return download_prefix(self.s3, self.uri, self.folder)
        except FileNotFoundError:  # the first job to use it
            return 0
        except ValueError as error:
            raise StepFailed(f"checkpoints: {error}") from None

    def upload(self) -> None:
        """SageMaker syncs the folder during the job: a failed or stopped job's checkpoints are in S3 too."""
        if self.folder.is_dir():
            upload_dir(self.s3, self.folder, self.uri)

    def restart_as_on_a_new_instance(self, job: ContainerJob, ml: Path, seconds: float) -> None:
        """After an interruption, as SageMaker restarts a spot job: the checkpoints uploaded, then a fresh model and
        output folder and the checkpoint folder copied back from S3 (the inputs are unchanged: kept)."""
        upload_dir(self.s3, self.folder, self.uri)
        shutil.rmtree(self.folder)
        for folder in ("model", "output"):
            shutil.rmtree(ml / folder)
        for folder in ("model", "output/data"):
            (ml / folder).mkdir(parents=True)
        found = self.restore()
        again = "from its checkpoint" if found else "from the beginning (no checkpoint yet)"
        job.echo(f"-> {job.step} interrupted (spot), restarting {again}")
        with open(job.log_file, "a") as log:
            log.write(f"=== {INTERRUPT_VARIABLE}: interrupted (spot) after {seconds:.1f}s, restarted {again} ===\n")
