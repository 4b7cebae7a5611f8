"""A local training job's checkpoints, synced with S3 as SageMaker syncs them, and the spot-interruption test hook.

A training job's CheckpointConfig works as on SageMaker: its LocalPath is a folder of the job, filled from the S3Uri
before the job starts and copied back when it ends (SageMaker syncs it while the job runs). A test hook stands in for
a spot interruption (`REGULA_LOCAL_INTERRUPT`, pipelines/local/engine/faults.py): the job is stopped with SIGTERM,
its checkpoint folder uploaded, and the job started again on a fresh /opt/ml restored from S3, as SageMaker restarts
it. The job itself is pipelines/local/engine/jobs.py's.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.local.engine.errors import StepFailed
from pipelines.local.engine.faults import INTERRUPT_ENV
from pipelines.local.engine.s3 import download_prefix, upload_dir

CHECKPOINT_DIR = "/opt/ml/checkpoints"  # SageMaker's CheckpointConfig.LocalPath when the job does not name one


def interrupt_predicate(when: str, checkpoints: Path) -> Callable[[str], bool]:
    """The spot-interruption test hook's predicate (pipelines/local/engine/faults.py): it sees each line rank 0
    prints, and says when to stop the job: `after_epochs=N` when the output reaches epoch N, `after_checkpoint` (or
    "") once a file appears in the `checkpoints` folder."""
    epochs = re.fullmatch(r"after_epochs=(\d+)", when)
    if epochs:
        after = int(epochs[1])
        return lambda line: (m := re.match(r"epoch (\d+):", line)) is not None and int(m[1]) >= after
    return lambda line: checkpoints.is_dir() and any(p.is_file() for p in checkpoints.iterdir())


@dataclass
class CheckpointSync:
    """A training job's CheckpointConfig: its S3Uri, the job's folder for its LocalPath, and the test hook's
    predicate where REGULA_LOCAL_INTERRUPT names the job's step; `step`: the job's step, for its failures."""

    s3: Any
    uri: str
    folder: Path
    interrupt: Callable[[str], bool] | None = None
    step: str = ""

    @classmethod
    def for_job(
        cls, step: str, s3, args: dict, host_path: Callable[[str], Path], interrupt: str | None = None
    ) -> CheckpointSync | None:
        """The checkpoint sync of the job of `step`, from its resolved `args` (`host_path`: where a container path
        is on this machine; `interrupt`: when the test hook stops it, None: never); None without a CheckpointConfig."""
        checkpoint = args.get("CheckpointConfig")
        if not checkpoint:
            return None
        folder = host_path(checkpoint.get("LocalPath") or CHECKPOINT_DIR)
        predicate = interrupt_predicate(interrupt, folder) if interrupt is not None else None
        return cls(s3, checkpoint["S3Uri"], folder, predicate, step)

    def restore(self) -> int:
        """Copy the checkpoints under the S3Uri into the folder, as SageMaker does before a job starts; how many."""
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            return download_prefix(self.s3, self.uri, self.folder)
        except FileNotFoundError:  # the first job to use it
            return 0
        except ValueError as error:
            raise StepFailed(self.step, f"checkpoints: {error}") from None

    def upload(self) -> None:
        """SageMaker syncs the folder during the job: a failed or stopped job's checkpoints are in S3 too."""
        if self.folder.is_dir():
            upload_dir(self.s3, self.folder, self.uri)

    def restart_as_on_a_new_instance(
        self, ml: Path, seconds: float, log_file: Path, echo: Callable[[str], None]
    ) -> None:
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
        echo(f"-> {self.step} interrupted (spot), restarting {again}")
        with open(log_file, "a") as log:
            log.write(f"=== {INTERRUPT_ENV}: interrupted (spot) after {seconds:.1f}s, restarted {again} ===\n")
