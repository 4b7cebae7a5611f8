"""Processing and Training jobs on this machine, with SageMaker's container contract mapped onto a folder per job.

`/opt/ml/...` becomes `<run>/jobs/<step>/opt/ml/...` (pipelines/local/engine/layout.py): inputs are downloaded from
S3 into it, outputs uploaded back, training gets its channels, SM_* variables and hyperparameters, and its model folder
becomes model.tar.gz. The job's processes run under pipelines/local/engine/processes.py.

A training job's CheckpointConfig, synced with S3, and the spot-interruption test hook are
pipelines/local/engine/checkpoints.py's.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.local.engine import processes as process_supervisor
from pipelines.local.engine.checkpoints import CheckpointSync
from pipelines.local.engine.errors import StepFailed
from pipelines.local.engine.faults import INTERRUPT_ENV
from pipelines.local.engine.layout import CONTAINER_ROOT, model_archive, on_host
from pipelines.local.engine.s3 import download_prefix, split_uri, upload_dir

PYTHON_NAMES = {"python", "python3"}


class DefinitionText(str):
    """A string the definition itself holds (not a parameter's or a step property's value, nor a Join of one): the
    only values the runner maps from the container to this machine (`/opt/ml/...`, `python3`)."""


def definition_text(value: Any) -> Any:
    """`value` (a step's arguments, unresolved) with each literal string marked as DefinitionText; resolving keeps
    the marks, and every value a pipeline function produces is a plain str."""
    if isinstance(value, dict):
        return {key: definition_text(item) for key, item in value.items()}
    if isinstance(value, list):
        return [definition_text(item) for item in value]
    return DefinitionText(value) if isinstance(value, str) else value


def max_runtime(args: dict) -> float | None:
    """The job's StoppingCondition.MaxRuntimeInSeconds, which SageMaker enforces: the local runner does too."""
    seconds = args.get("StoppingCondition", {}).get("MaxRuntimeInSeconds")
    return float(seconds) if seconds else None


def source_code(channels: dict[str, Path], step: str) -> dict:
    """What ModelTrainer's driver would run: the entry script, and whether torchrun spreads it."""
    drivers = channels.get("sm_drivers")
    if drivers is None or not (drivers / "sourcecode.json").exists():
        raise StepFailed(step, "training job has no sm_drivers channel with sourcecode.json (not a ModelTrainer job)")
    source = json.loads((drivers / "sourcecode.json").read_text())
    if not source.get("entry_script"):
        raise StepFailed(step, "only ModelTrainer jobs with an entry_script run locally")
    distributed = (drivers / "distributed.json").exists() and "torchrun" in (
        drivers / "sm_train.sh"
    ).read_text().lower()
    return {"entry_script": source["entry_script"], "distributed": distributed}


def final_metrics(args: dict, log: Path) -> list[dict]:
    """The last value of each metric definition found in the job's log, as SageMaker reports it."""
    definitions = args.get("AlgorithmSpecification", {}).get("MetricDefinitions", [])
    text = log.read_text(errors="replace") if log.exists() else ""
    metrics = []
    for definition in definitions:
        values = re.findall(definition["Regex"], text)
        if values:
            metrics.append({"MetricName": definition["Name"], "Value": float(values[-1])})
    return metrics


@dataclass
class ContainerJob:
    """One job under the name `name`, its /opt/ml in `root`; `log` and `seconds` are set once its processes run."""

    name: str
    root: Path
    log_file: Path
    s3: Any
    env: dict[str, str]  # the runner's, under the job's own
    echo: Callable[[str], None] = print
    verbose: bool = False
    interrupt: str | None = None  # when the spot-interruption test hook stops it (faults.py); None: never
    log: str = ""
    seconds: float = 0.0  # the time the job's own processes ran

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    @property
    def step(self) -> str:
        """The pipeline step this job runs: its folder is named after it (pipelines/local/engine/layout.py)."""
        return self.root.name

    def processing(self, args: dict) -> dict:
        """Run a Processing job's container with its resolved `args`; the step's properties."""
        for item in args.get("ProcessingInputs", []):
            source = item.get("S3Input")
            if source is None:
                raise StepFailed(self.step, f"input {item.get('InputName')}: only S3 inputs run locally")
            self.download(source["S3Uri"], self.host_path(source["LocalPath"]), item["InputName"])
        outputs = args.get("ProcessingOutputConfig", {}).get("Outputs", [])
        for item in outputs:
            self.host_path(item["S3Output"]["LocalPath"]).mkdir(parents=True, exist_ok=True)
        app = args["AppSpecification"]
        command = [
            self.container_arg(a) for a in app.get("ContainerEntrypoint", []) + app.get("ContainerArguments", [])
        ]
        env = {k: self.container_arg(v) for k, v in args.get("Environment", {}).items()}
        self.run_processes(command, env, cwd=self.root, timeout=max_runtime(args))
        for item in outputs:
            upload_dir(self.s3, self.host_path(item["S3Output"]["LocalPath"]), item["S3Output"]["S3Uri"])
        return {
            "ProcessingJobName": self.name,
            "ProcessingJobStatus": "Completed",
            "ProcessingOutputConfig": {"Outputs": outputs},
        }

    def training(self, args: dict) -> dict:
        """Run a ModelTrainer Training job with its resolved `args`, upload its model.tar.gz; the step's properties."""
        ml = on_host(self.root, CONTAINER_ROOT)
        channels = {}
        for channel in args.get("InputDataConfig", []):
            name = channel["ChannelName"]
            channels[name] = ml / "input" / "data" / name
            self.download(channel["DataSource"]["S3DataSource"]["S3Uri"], channels[name], name)
        given = args.get("HyperParameters", {})
        hyperparameters = {k: str(v) for k, v in given.items()}
        config = ml / "input" / "config"
        config.mkdir(parents=True, exist_ok=True)
        (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
        (config / "inputdataconfig.json").write_text(json.dumps({c: {"TrainingInputMode": "File"} for c in channels}))
        (config / "resourceconfig.json").write_text(json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]}))
        for folder in ("model", "output/data"):
            (ml / folder).mkdir(parents=True, exist_ok=True)

        source = source_code(channels, self.step)
        command = [sys.executable, source["entry_script"]]
        for key, value in given.items():
            command += [f"--{key}", self.container_path(value)]
        env = {
            **{k: str(v) for k, v in args.get("Environment", {}).items()},
            "TRAINING_JOB_NAME": self.name,
            "SM_MODEL_DIR": str(ml / "model"),
            "SM_INPUT_DIR": str(ml / "input"),
            "SM_INPUT_DATA_DIR": str(ml / "input" / "data"),
            "SM_INPUT_CONFIG_DIR": str(config),
            "SM_OUTPUT_DIR": str(ml / "output"),
            "SM_OUTPUT_DATA_DIR": str(ml / "output" / "data"),
            "SM_OUTPUT_FAILURE": str(ml / "output" / "failure"),
            "SM_CHANNELS": json.dumps(sorted(channels)),
            "SM_HPS": json.dumps(hyperparameters),
            "SM_CURRENT_HOST": "algo-1",
            "SM_HOSTS": json.dumps(["algo-1"]),
            "SM_NUM_CPUS": str(os.cpu_count() or 1),
            "SM_SOURCE_DIR": str(channels.get("code", "")),
            "SM_ENTRY_SCRIPT": source["entry_script"],
            **{f"SM_CHANNEL_{name.upper()}": str(path) for name, path in channels.items()},
        }
        processes = int(args.get("ResourceConfig", {}).get("InstanceCount", 1)) if source["distributed"] else 1
        failure = ml / "output" / "failure"
        checkpoints = CheckpointSync.for_job(self.step, self.s3, args, self.host_path, self.interrupt)
        interrupt = checkpoints.interrupt if checkpoints else None
        timeout = max_runtime(args)
        try:
            if checkpoints:
                checkpoints.restore()
            run = {"cwd": channels.get("code", self.root), "processes": processes, "failure_file": failure}
            ran = self.run_processes(command, env, **run, timeout=timeout, interrupt=interrupt)
            if ran.interrupted:
                checkpoints.restart_as_on_a_new_instance(ml, ran.seconds, self.log_file, self.echo)
                remaining = max(1.0, timeout - self.seconds) if timeout else None  # the limit spans both runs
                self.run_processes(command, env, **run, timeout=remaining, append=True)
            elif interrupt:
                self.echo(f"   ({INTERRUPT_ENV}: {self.step} ended before its interruption point)")
        finally:  # SageMaker syncs the folder during the job: a failed or stopped job's checkpoints are in S3 too
            if checkpoints:
                checkpoints.upload()

        archive = model_archive(self.root)
        with tarfile.open(archive, "w:gz") as tar:
            for path in sorted((ml / "model").iterdir()):
                tar.add(path, arcname=path.name)
        model_uri = f"{args['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{self.name}/output/model.tar.gz"
        bucket, key = split_uri(model_uri)
        self.s3.upload_file(str(archive), bucket, key)
        return {
            "TrainingJobName": self.name,
            "TrainingJobStatus": "Completed",
            "ModelArtifacts": {"S3ModelArtifacts": model_uri},
            "HyperParameters": hyperparameters,
            "FinalMetricDataList": final_metrics(args, Path(self.log)),
        }

    def host_path(self, container_path: str) -> Path:
        if not container_path.startswith(CONTAINER_ROOT):
            raise StepFailed(self.step, f"container path {container_path} is outside {CONTAINER_ROOT}")
        return on_host(self.root, container_path)

    def container_arg(self, value: Any) -> str:
        literal = isinstance(value, DefinitionText)
        return sys.executable if literal and value in PYTHON_NAMES else self.container_path(value)

    def container_path(self, value: Any) -> str:
        """A path under /opt/ml that the definition names (DefinitionText) names it in the job's folder; any other
        value is itself: a parameter's value is never rewritten, and never shows this machine's paths."""
        text = str(value)
        if isinstance(value, DefinitionText) and (text == CONTAINER_ROOT or text.startswith(CONTAINER_ROOT + "/")):
            return str(self.root) + text
        return text

    def download(self, uri: str, destination: Path, what: str) -> None:
        try:
            download_prefix(self.s3, uri, destination)
        except FileNotFoundError:
            raise StepFailed(self.step, f"input {what}: {uri} holds no objects") from None
        except ValueError as error:
            raise StepFailed(self.step, f"input {what}: {error}") from None

    def run_processes(
        self,
        command: list[str],
        env: dict[str, str],
        cwd: Path,
        processes: int = 1,
        failure_file: Path | None = None,
        timeout: float | None = None,
        interrupt: Callable[[str], bool] | None = None,
        append: bool = False,
    ) -> process_supervisor.ProcessRun:
        """Run the job's processes; StepFailed with the reason if one fails or they run past `timeout`. Stopped by
        `interrupt` (the test hook), how they ran."""
        self.log = str(self.log_file)
        ran = process_supervisor.run_processes(
            command, {**self.env, **env}, cwd, self.log_file, self.echo, self.verbose, processes, timeout,
            interrupt, append,
        )  # fmt: skip
        self.seconds += ran.seconds
        if ran.interrupted:
            return ran
        if ran.timed_out:
            raise StepFailed(self.step, f"stopped after MaxRuntimeInSeconds={timeout:g} (log: {ran.log})")
        if any(ran.exit_codes):
            reason = ""
            if failure_file and failure_file.exists():
                reason = failure_file.read_text().strip()
            if not reason:
                errors = [line[len("ERROR ") :] for line in ran.last_lines if line.startswith("ERROR ")]
                reason = errors[-1] if errors else (ran.last_lines[-1] if ran.last_lines else "no output")
            raise StepFailed(self.step, f"{reason} (exit code {max(ran.exit_codes, key=abs)}, log: {ran.log})")
        return ran
