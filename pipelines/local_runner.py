"""Run a rendered SageMaker pipeline definition on this machine, without Docker.

The runner walks the definition the way SageMaker does: it resolves
parameters and step properties, evaluates conditions and runs the chosen
branch, and stops at the first failed step. Processing and Training jobs run
as subprocesses with the container contract mapped onto a folder per job
(`/opt/ml/...` becomes `<run>/jobs/<step>/opt/ml/...`): inputs are downloaded
from S3 into it, outputs uploaded back, training gets its channels, SM_*
variables and hyperparameters, and its model folder becomes model.tar.gz.
RegisterModel calls the SageMaker API (moto locally), Fail ends the
execution with its message.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipelines import expressions
from pipelines.expressions import Context, evaluate_condition, resolve
from pipelines.parameters import parameter_values
from pipelines.s3 import download_prefix, split_uri, upload_dir

CONTAINER_ROOT = "/opt/ml"
PYTHON_NAMES = {"python", "python3"}
PROGRESS_SECONDS = 5.0


class StepFailed(Exception):
    pass


@dataclass
class StepRecord:
    name: str
    type: str
    status: str = "Executing"
    seconds: float = 0.0
    failure_reason: str = ""
    outcome: str = ""  # conditions: "True" or "False"
    job_name: str = ""
    log: str = ""
    process_seconds: float = 0.0  # of `seconds`, the time the job's own processes ran


@dataclass
class Execution:
    pipeline_name: str
    execution_id: str
    arn: str
    parameters: dict[str, Any]
    run_dir: Path
    status: str = "Executing"
    failure_reason: str = ""
    failed_step: str = ""
    steps: list[StepRecord] = field(default_factory=list)
    properties: dict[str, dict] = field(default_factory=dict)
    seconds: float = 0.0


def referenced_steps(value: Any) -> set[str]:
    found = set()
    if isinstance(value, dict):
        if isinstance(value.get("Get"), str) and value["Get"].startswith("Steps."):
            found.add(value["Get"].split(".")[1])
        for item in value.values():
            found |= referenced_steps(item)
    elif isinstance(value, list):
        for item in value:
            found |= referenced_steps(item)
    return found


def order_steps(steps: list[dict]) -> list[dict]:
    """Dependencies first (data references and DependsOn), otherwise in definition order."""
    names = {s["Name"] for s in steps}
    needs = {}
    for step in steps:
        own = step.get("Arguments", {})
        if step["Type"] == "Condition":
            own = own.get("Conditions", [])
        deps = referenced_steps(own) | referenced_steps(step.get("PropertyFiles", [])) | set(step.get("DependsOn", []))
        needs[step["Name"]] = (deps & names) - {step["Name"]}
    ordered, done = [], set()
    while len(ordered) < len(steps):
        ready = [s for s in steps if s["Name"] not in done and needs[s["Name"]] <= done]
        if not ready:
            raise ValueError("the pipeline's steps depend on each other in a cycle")
        ordered.append(ready[0])
        done.add(ready[0]["Name"])
    return ordered


def max_runtime(args: dict) -> float | None:
    """The job's StoppingCondition.MaxRuntimeInSeconds, which SageMaker enforces: the local runner does too."""
    seconds = args.get("StoppingCondition", {}).get("MaxRuntimeInSeconds")
    return float(seconds) if seconds else None


def end_process_group(process: subprocess.Popen) -> None:
    """Stop a job and everything it started (its own process group): TERM, then KILL after a grace period."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalRunner:
    def __init__(
        self,
        definition: dict,
        run_dir: Path,
        s3,
        sagemaker,
        region: str,
        account: str = "000000000000",
        env: dict[str, str] | None = None,
        echo: Callable[[str], None] = print,
        verbose: bool = False,
    ):
        self.definition = definition
        self.run_dir = Path(run_dir).resolve()
        self.s3 = s3
        self.sagemaker = sagemaker
        self.region = region
        self.account = account
        self.env = env or {}
        self.echo = echo
        self.verbose = verbose
        self.step_defs: dict[str, dict] = {}
        self._property_files: dict[tuple[str, str], Any] = {}

    # -- execution ---------------------------------------------------------

    def run(
        self, pipeline_name: str, overrides: dict[str, str] | None = None, execution_id: str | None = None
    ) -> Execution:
        execution_id = execution_id or secrets.token_hex(6)
        arn = f"arn:aws:sagemaker:{self.region}:{self.account}:pipeline/{pipeline_name}/execution/{execution_id}"
        parameters = parameter_values(self.definition, overrides or {})
        self.execution = Execution(pipeline_name, execution_id, arn, parameters, self.run_dir)
        self.ctx = Context(
            parameters=parameters,
            execution={
                "PipelineExecutionId": execution_id,
                "PipelineExecutionArn": arn,
                "PipelineName": pipeline_name,
                "StartDateTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
            steps=self.execution.properties,
            read_property_file=self._read_property_file,
        )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        self._run_steps(self.definition["Steps"])
        if self.execution.status == "Executing":
            self.execution.status = "Succeeded"
        self.execution.seconds = round(time.perf_counter() - started, 3)
        return self.execution

    def _run_steps(self, steps: list[dict]) -> None:
        for step in order_steps(steps):
            if self.execution.status != "Executing":
                return
            self._run_step(step)

    def _run_step(self, step: dict) -> None:
        name, kind = step["Name"], step["Type"]
        self.step_defs[name] = step
        record = StepRecord(name, kind)
        self.execution.steps.append(record)
        handler = {
            "Processing": self._processing,
            "Training": self._training,
            "RegisterModel": self._register_model,
            "Condition": self._condition,
            "Fail": self._fail,
        }.get(kind)
        started = time.perf_counter()
        if kind != "Condition":
            self.echo(f"-> {name} ({kind})")
        try:
            if handler is None:
                raise StepFailed(f"step type {kind} is not supported by the local runner")
            branch = handler(step, record)
            record.status = "Succeeded" if kind != "Fail" else "Failed"
        except (StepFailed, expressions.ExpressionError, OSError, ValueError, BotoCoreError, ClientError) as error:
            branch = None
            record.status = "Failed"
            record.failure_reason = str(error)
            self.execution.status = "Failed"
            self.execution.failure_reason = str(error)
            self.execution.failed_step = name
        record.seconds = round(time.perf_counter() - started, 3)
        if kind == "Condition":
            self.echo(f"?  {name}: {record.outcome}")
        elif record.status == "Succeeded":
            self.echo(f"   done in {record.seconds:.1f}s")
        else:
            self.echo(f"   FAILED: {record.failure_reason}")
        if branch:
            self._run_steps(branch)

    # -- step types ----------------------------------------------------------

    def _condition(self, step: dict, record: StepRecord) -> list[dict]:
        args = step["Arguments"]
        outcome = all(evaluate_condition(c, self.ctx) for c in args["Conditions"])
        record.outcome = str(outcome)
        self.execution.properties[step["Name"]] = {"Outcome": outcome}
        return args["IfSteps"] if outcome else args["ElseSteps"]

    def _fail(self, step: dict, record: StepRecord) -> None:
        message = expressions.to_text(resolve(step["Arguments"].get("ErrorMessage", ""), self.ctx))
        record.failure_reason = message
        self.execution.status = "Failed"
        self.execution.failure_reason = message
        self.execution.failed_step = step["Name"]

    def _register_model(self, step: dict, record: StepRecord) -> None:
        args = resolve(step["Arguments"], self.ctx)
        group = args["ModelPackageGroupName"]
        try:
            self.sagemaker.describe_model_package_group(ModelPackageGroupName=group)
        except self.sagemaker.exceptions.ClientError:
            self.sagemaker.create_model_package_group(
                ModelPackageGroupName=group, ModelPackageGroupDescription="Models registered by Regula"
            )
        arn = self.sagemaker.create_model_package(**args)["ModelPackageArn"]
        self.execution.properties[step["Name"]] = {"ModelPackageArn": arn}
        self.echo(f"   registered {arn}")

    def _processing(self, step: dict, record: StepRecord) -> None:
        args = resolve(step["Arguments"], self.ctx)
        job = record.job_name = self._job_name(step["Name"])
        root = self._job_root(step["Name"])
        for item in args.get("ProcessingInputs", []):
            source = item.get("S3Input")
            if source is None:
                raise StepFailed(f"input {item.get('InputName')}: only S3 inputs run locally")
            self._download(source["S3Uri"], self._host_path(root, source["LocalPath"]), item["InputName"])
        outputs = args.get("ProcessingOutputConfig", {}).get("Outputs", [])
        for item in outputs:
            self._host_path(root, item["S3Output"]["LocalPath"]).mkdir(parents=True, exist_ok=True)
        app = args["AppSpecification"]
        command = [
            self._container_arg(root, a) for a in app.get("ContainerEntrypoint", []) + app.get("ContainerArguments", [])
        ]
        env = {k: self._container_arg(root, str(v)) for k, v in args.get("Environment", {}).items()}
        self._run_process(record, command, env, cwd=root, timeout=max_runtime(args))
        for item in outputs:
            upload_dir(self.s3, self._host_path(root, item["S3Output"]["LocalPath"]), item["S3Output"]["S3Uri"])
        self.execution.properties[step["Name"]] = {
            "ProcessingJobName": job,
            "ProcessingJobStatus": "Completed",
            "ProcessingOutputConfig": {"Outputs": outputs},
        }

    def _training(self, step: dict, record: StepRecord) -> None:
        args = resolve(step["Arguments"], self.ctx)
        job = record.job_name = self._job_name(step["Name"])
        root = self._job_root(step["Name"])
        ml = root / CONTAINER_ROOT.lstrip("/")
        channels = {}
        for channel in args.get("InputDataConfig", []):
            name = channel["ChannelName"]
            channels[name] = ml / "input" / "data" / name
            self._download(channel["DataSource"]["S3DataSource"]["S3Uri"], channels[name], name)
        hyperparameters = {k: str(v) for k, v in args.get("HyperParameters", {}).items()}
        config = ml / "input" / "config"
        config.mkdir(parents=True, exist_ok=True)
        (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
        (config / "inputdataconfig.json").write_text(json.dumps({c: {"TrainingInputMode": "File"} for c in channels}))
        (config / "resourceconfig.json").write_text(json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]}))
        for folder in ("model", "output/data"):
            (ml / folder).mkdir(parents=True, exist_ok=True)

        source = self._source_code(channels)
        command = [sys.executable, source["entry_script"]]
        for key, value in hyperparameters.items():
            command += [f"--{key}", value]
        env = {
            **{k: str(v) for k, v in args.get("Environment", {}).items()},
            "TRAINING_JOB_NAME": job,
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
        self._run_process(
            record,
            command,
            env,
            cwd=channels.get("code", root),
            processes=processes,
            failure_file=ml / "output" / "failure",
            timeout=max_runtime(args),
        )

        archive = root / "model.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            for path in sorted((ml / "model").iterdir()):
                tar.add(path, arcname=path.name)
        model_uri = f"{args['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{job}/output/model.tar.gz"
        bucket, key = split_uri(model_uri)
        self.s3.upload_file(str(archive), bucket, key)
        self.execution.properties[step["Name"]] = {
            "TrainingJobName": job,
            "TrainingJobStatus": "Completed",
            "ModelArtifacts": {"S3ModelArtifacts": model_uri},
            "HyperParameters": hyperparameters,
            "FinalMetricDataList": self._final_metrics(args, Path(record.log)),
        }

    # -- helpers -------------------------------------------------------------

    def _source_code(self, channels: dict[str, Path]) -> dict:
        """What ModelTrainer's driver would run: the entry script, and whether torchrun spreads it."""
        drivers = channels.get("sm_drivers")
        if drivers is None or not (drivers / "sourcecode.json").exists():
            raise StepFailed("training job has no sm_drivers channel with sourcecode.json (not a ModelTrainer job)")
        source = json.loads((drivers / "sourcecode.json").read_text())
        if not source.get("entry_script"):
            raise StepFailed("only ModelTrainer jobs with an entry_script run locally")
        distributed = (drivers / "distributed.json").exists() and "torchrun" in (
            drivers / "sm_train.sh"
        ).read_text().lower()
        return {"entry_script": source["entry_script"], "distributed": distributed}

    def _final_metrics(self, args: dict, log: Path) -> list[dict]:
        """The last value of each metric definition found in the job's log, as SageMaker reports it."""
        definitions = args.get("AlgorithmSpecification", {}).get("MetricDefinitions", [])
        text = log.read_text(errors="replace") if log.exists() else ""
        metrics = []
        for definition in definitions:
            values = re.findall(definition["Regex"], text)
            if values:
                metrics.append({"MetricName": definition["Name"], "Value": float(values[-1])})
        return metrics

    def _read_property_file(self, step_name: str, file_name: str) -> Any:
        key = (step_name, file_name)
        if key not in self._property_files:
            step = self.step_defs[step_name]
            spec = next((p for p in step.get("PropertyFiles", []) if p["PropertyFileName"] == file_name), None)
            if spec is None:
                raise expressions.ExpressionError(f"step {step_name} has no property file {file_name}")
            outputs = self.execution.properties[step_name]["ProcessingOutputConfig"]["Outputs"]
            output = next(o for o in outputs if o["OutputName"] == spec["OutputName"])
            bucket, prefix = split_uri(output["S3Output"]["S3Uri"])
            body = self.s3.get_object(Bucket=bucket, Key=f"{prefix.rstrip('/')}/{spec['FilePath']}")["Body"].read()
            self._property_files[key] = json.loads(body)
        return self._property_files[key]

    def _job_name(self, step_name: str) -> str:
        name = re.sub(
            r"[^a-zA-Z0-9-]", "-", f"{self.execution.pipeline_name}-{step_name}-{self.execution.execution_id}"
        )
        return name[:63]

    def _job_root(self, step_name: str) -> Path:
        root = self.run_dir / "jobs" / step_name
        root.mkdir(parents=True, exist_ok=True)
        return root

    @staticmethod
    def _host_path(root: Path, container_path: str) -> Path:
        if not container_path.startswith(CONTAINER_ROOT):
            raise StepFailed(f"container path {container_path} is outside {CONTAINER_ROOT}")
        return root / container_path.lstrip("/")

    @staticmethod
    def _container_arg(root: Path, value: str) -> str:
        if value in PYTHON_NAMES:
            return sys.executable
        if value == CONTAINER_ROOT or value.startswith(CONTAINER_ROOT + "/"):
            return str(root) + value
        return value

    def _download(self, uri: str, destination: Path, what: str) -> None:
        try:
            download_prefix(self.s3, uri, destination)
        except FileNotFoundError:
            raise StepFailed(f"input {what}: {uri} holds no objects") from None
        except ValueError as error:
            raise StepFailed(f"input {what}: {error}") from None

    def _run_process(
        self,
        record: StepRecord,
        command: list[str],
        env: dict[str, str],
        cwd: Path,
        processes: int = 1,
        failure_file: Path | None = None,
        timeout: float | None = None,
    ) -> None:
        log = self.run_dir / "logs" / f"{record.name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        record.log = str(log)
        # each process gets its share of the CPUs: more torch/BLAS threads than cores only spin (steps/contract.py)
        share = str(max(1, (os.cpu_count() or 1) // processes))
        base = {**os.environ, **self.env, **env, "PYTHONUNBUFFERED": "1", "REGULA_CPUS": share}
        ranks: list[subprocess.Popen] = []
        rank_logs = contextlib.ExitStack()
        started = time.perf_counter()
        master_port = str(free_port())
        timed_out = threading.Event()

        def stop_all() -> None:
            timed_out.set()
            for process in ranks:
                end_process_group(process)

        watchdog = threading.Timer(timeout, stop_all) if timeout else None
        try:
            for rank in range(processes):
                rank_env = dict(base)
                if processes > 1:
                    rank_env.update(
                        WORLD_SIZE=str(processes),
                        RANK=str(rank),
                        LOCAL_RANK="0",
                        MASTER_ADDR="127.0.0.1",
                        MASTER_PORT=master_port,
                    )
                out = (
                    subprocess.PIPE
                    if rank == 0
                    else rank_logs.enter_context(open(log.with_suffix(f".rank{rank}.log"), "w"))
                )
                ranks.append(
                    subprocess.Popen(
                        command,
                        cwd=cwd,
                        env=rank_env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        text=True,
                        start_new_session=True,  # its own process group: ended with everything it started
                    )
                )
            if watchdog:
                watchdog.start()
            last_lines: list[str] = []
            last_shown = time.monotonic()
            with open(log, "w") as sink:
                for line in ranks[0].stdout:
                    sink.write(line)
                    line = line.rstrip()
                    if line:
                        last_lines = (last_lines + [line])[-20:]
                    # every line with --verbose; else all but the per-epoch ones, of which one every few seconds
                    quiet = line.startswith("epoch ") and time.monotonic() - last_shown < PROGRESS_SECONDS
                    if line and (self.verbose or not quiet):
                        self.echo(f"   | {line}")
                        last_shown = time.monotonic()
            codes = [p.wait() for p in ranks]
        finally:  # an error, Ctrl-C or SIGTERM here: no job outlives the runner
            if watchdog:
                watchdog.cancel()
            for process in ranks:
                end_process_group(process)
            rank_logs.close()
        record.process_seconds = round(time.perf_counter() - started, 3)
        if timed_out.is_set():
            raise StepFailed(f"stopped after MaxRuntimeInSeconds={timeout:g} (log: {log})")
        if any(codes):
            reason = ""
            if failure_file and failure_file.exists():
                reason = failure_file.read_text().strip()
            if not reason:
                errors = [line[len("ERROR ") :] for line in last_lines if line.startswith("ERROR ")]
                reason = errors[-1] if errors else (last_lines[-1] if last_lines else "no output")
            raise StepFailed(f"{reason} (exit code {max(codes, key=abs)}, log: {log})")
