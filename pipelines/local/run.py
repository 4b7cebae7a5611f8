"""`regula run --local`: the pipeline definition, run on this machine with S3 and the registry in moto."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import importlib.util
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pipelines.definition.parameter_names import canonical_names, declared, light_definition
from pipelines.definition.parameters import parameter_values
from pipelines.errors import EnvironmentProblem, NotFound, UsageError
from pipelines.local.preflight import DataFileError, column_problems, read_data_file
from pipelines.settings import Settings, code_version

DIGITS_FILE = "datasets/data/digits.csv.gz"  # inside the scikit-learn package
DEMO_MAX_TRAIN_ROWS = 300  # a small training subset: a model near the gap threshold, quick to train


def demo_dataset_csv() -> bytes:
    """scikit-learn's digits (shipped with the package): 1797 rows, 64 pixel features, column `target`; the bytes of
    `load_digits(as_frame=True).frame.to_csv(index=False)` (tests/test_local_pipeline.py compares them).

    Read from the package's data file rather than through load_digits: importing scikit-learn would be a visible
    share of the demo's run, in a process that needs nothing else of it."""
    sklearn = importlib.util.find_spec("sklearn")
    if sklearn is None or sklearn.origin is None:
        raise EnvironmentProblem(
            "the bundled demo data comes with scikit-learn, which is not installed: pip install -e ."
        )
    try:
        rows = gzip.decompress((Path(sklearn.origin).parent / DIGITS_FILE).read_bytes()).decode().split()
    except OSError as error:
        raise EnvironmentProblem(
            f"cannot read the bundled demo data from scikit-learn ({error}): pass --data"
        ) from None
    header = ",".join([f"pixel_{i}_{j}" for i in range(8) for j in range(8)] + ["target"])
    # the pixels are floats in the frame ("5.0"), the target an integer, as to_csv writes them
    lines = [",".join([*(f"{v}.0" for v in row.split(",")[:-1]), row.rsplit(",", 1)[1]]) for row in rows]
    return "\n".join([header, *lines, ""]).encode()


def local_training_processes() -> int:
    """The most training processes a local run starts (one per TrainingInstanceCount): this machine's CPUs, at least
    two (a distributed run is tested everywhere)."""
    return max(2, os.cpu_count() or 1)


def write_atomically(path: Path, text: str) -> None:
    """`path` holds `text` whole, or what it held before: never a truncated file (a full disk fails the write of a
    temporary file beside it, which is removed)."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        os.fchmod(handle, 0o644)
        with os.fdopen(handle, "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def upload_folder(s3, folder: Path, root_uri: str) -> str:
    """Upload the files under `folder` (hidden ones left out) to a prefix named by their content under `root_uri`;
    the prefix, as InputDataUri (SageMaker downloads it back as the same folder tree)."""
    from pipelines.local.engine.s3 import split_uri

    files = sorted(
        p for p in folder.rglob("*") if p.is_file() and not any(s.startswith(".") for s in p.relative_to(folder).parts)
    )
    if not files:
        raise UsageError(f"data folder {folder} holds no files")
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    bucket, prefix = split_uri(f"{root_uri}/{digest.hexdigest()[:16]}/")
    for path in files:
        s3.upload_file(str(path), bucket, prefix + path.relative_to(folder).as_posix())
    return f"s3://{bucket}/{prefix}"


def claim_run_dir(runs_dir: Path) -> Path:
    """A new folder under `runs_dir`, named by the time; mkdir is atomic, so two runs never share one."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
        for suffix in range(1, 1000):
            run_dir = runs_dir / (stamp if suffix == 1 else f"{stamp}-{suffix}")
            try:
                run_dir.mkdir()
                return run_dir
            except FileExistsError:
                continue
    except OSError as error:
        raise EnvironmentProblem(f"cannot create a run folder in {runs_dir}: {error.strerror}") from None
    raise EnvironmentProblem(f"cannot create a run folder in {runs_dir}: too many runs started at {stamp}")


def mark_interrupted(execution) -> None:
    """An execution stopped by the user: the step under way, and the execution, are Interrupted."""
    running = [s for s in execution.steps if s.status == "Executing"]
    for step in running:
        step.status = "Interrupted"
    execution.status = "Interrupted"
    execution.failed_step = running[-1].name if running else ""
    where = f" during {execution.failed_step}" if running else ""
    execution.failure_reason = f"interrupted (Ctrl-C or SIGTERM){where}: the run did not finish"


def run_local(
    settings: Settings | None = None,
    data: Path | None = None,
    target: str | None = None,
    params: dict[str, str] | None = None,
    runs_dir: Path = Path("runs"),
    verbose: bool = False,
    echo: Callable[[str], None] = print,
    cache: bool = True,
) -> dict:
    """Run the pipeline here. `cache=False` (`--no-cache`): run every step, even where an earlier run's result
    matches (pipelines/local/engine/cache.py); the results are recorded all the same."""
    import boto3

    from pipelines.definition.render import render
    from pipelines.local import console
    from pipelines.local import layout as run_layout
    from pipelines.local.console import closing_lines
    from pipelines.local.engine.cache import StepCache
    from pipelines.local.engine.faults import FAULTS_ENV, Faults
    from pipelines.local.engine.runner import LocalRunner, Narration
    from pipelines.local.engine.s3 import ensure_bucket, split_uri
    from pipelines.local.moto_server import aws_environment
    from pipelines.local.report import build_report, plot_losses, summary_lines

    settings = settings or Settings()
    # mistakes a user makes most, caught before the seconds of rendering: parameter names (any case), the file's
    # kind, and the columns the run names (pipelines/local/preflight.py)
    params = canonical_names(dict(params or {}), list(declared(settings)))
    if target:
        params["TargetColumn"] = target
    parameter_values(light_definition(settings), params)  # types and ranges, again once rendered
    table = None
    if data is not None:
        data = Path(data)
        if data.is_dir():  # images: class folders, or a manifest and its images (steps/images.py checks them)
            pass
        elif not data.is_file():
            raise NotFound(f"data file or folder {data} does not exist")
        else:
            table = read_data_file(data)
            problems, notes = column_problems(table, params, target_given="TargetColumn" in params)
            if problems:
                raise DataFileError("; ".join(problems))
            for note in notes:
                echo(note)
    params.setdefault("CodeVersion", code_version())

    echo("rendering the pipeline definition ...")
    text, session = render(settings)
    definition = json.loads(text)
    values = parameter_values(definition, params)  # unknown or mistyped parameters: say so before starting anything
    most = local_training_processes()
    if int(values.get("TrainingInstanceCount", 1)) > most:
        raise UsageError(
            f"TrainingInstanceCount {values['TrainingInstanceCount']} is more than a local run starts: one training "
            f"process per instance, at most {most} here (this machine's CPUs)"
        )
    faults = Faults.from_environ(os.environ, definition)  # and mistyped test hooks (REGULA_LOCAL_*)
    if faults.plan:
        plan = ", ".join(f"{s} {len(k)}x" for s, k in faults.plan.items())
        echo(f"{FAULTS_ENV}: failing {plan} before the job")
    run_dir = claim_run_dir(Path(runs_dir))

    with aws_environment(settings.region) as env:
        boto = boto3.Session(
            region_name=env["AWS_DEFAULT_REGION"],
            aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
            aws_session_token=env.get("AWS_SESSION_TOKEN"),
        )
        endpoint = env["AWS_ENDPOINT_URL"]
        s3 = boto.client("s3", endpoint_url=endpoint)
        sagemaker = boto.client("sagemaker", endpoint_url=endpoint)
        if os.environ.get("AWS_ENDPOINT_URL"):
            echo(f"AWS endpoint: {endpoint}; bucket s3://{settings.bucket}")
        else:
            echo(f"S3 and the model registry: embedded moto server at {endpoint} (in memory, for this run)")
        ensure_bucket(s3, settings.bucket, settings.region)
        session.push_uploads(s3)

        if data is None:
            bucket, key = split_uri(settings.demo_data_uri)
            s3.put_object(Bucket=bucket, Key=key, Body=demo_dataset_csv())
            params.setdefault("MaxTrainRows", str(DEMO_MAX_TRAIN_ROWS))
            echo(f"data: bundled digits dataset, {DEMO_MAX_TRAIN_ROWS} training rows")
        elif data.is_dir():  # a folder (class folders of images, a manifest beside its images): its files, uploaded
            params["InputDataUri"] = upload_folder(s3, data, f"s3://{settings.bucket}/{settings.prefix}/data")
            echo(f"data: {data}/ -> {params['InputDataUri']}")
        else:
            key = f"{settings.prefix}/data/{hashlib.sha256(table.body).hexdigest()[:16]}/{table.name}"
            s3.put_object(Bucket=settings.bucket, Key=key, Body=table.body)
            params["InputDataUri"] = f"s3://{settings.bucket}/{key}"
            echo(f"data: {data} -> {params['InputDataUri']}")

        runner = LocalRunner(
            definition,
            run_dir,
            s3,
            sagemaker,
            settings.region,
            env=env,
            echo=echo,
            verbose=verbose,
            cache=StepCache(Path(runs_dir)),
            use_cache=cache,
            faults=faults,
            verify_code=lambda: session.push_uploads(s3),
            narration=Narration(
                job_echo=console.job_output(echo, verbose),
                condition_line=lambda name, outcome: console.condition_line(run_dir, name, outcome, verbose),
                step_line=lambda name: console.step_line(run_dir, name),
            ),
        )
        try:
            execution = runner.run(settings.pipeline_name, params)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the jobs are ended; the run folder says what happened
            execution = getattr(runner, "execution", None)
            if execution is not None:
                mark_interrupted(execution)
                interrupted = json.dumps(build_report(execution), indent=2, default=str)
                write_atomically(run_layout.report_file(run_dir), interrupted)
                echo(f"interrupted during {execution.failed_step or 'start-up'}: {run_dir}/report.json says so")
            raise

    report = build_report(execution)
    try:
        plot = plot_losses(run_dir, run_layout.loss_plot(run_dir))
        report["plot"] = str(plot) if plot else None
        write_atomically(run_layout.report_file(run_dir), json.dumps(report, indent=2, default=str))
    except OSError as error:  # a full disk: no half-written report, and one line
        raise EnvironmentProblem(
            f"cannot write the report of run {run_dir}: {error.strerror or error} (the run {execution.status})"
        ) from None
    for line in summary_lines(report) + closing_lines(report, run_dir, os.environ.get("AWS_ENDPOINT_URL")):
        echo(line)
    return report
