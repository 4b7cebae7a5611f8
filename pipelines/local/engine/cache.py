"""Step caching for local runs, with SageMaker's semantics.

A step whose CacheConfig is Enabled reuses the result of an earlier successful run of the same step of the same
pipeline when its cache key matches and that run is younger than ExpireAfter. The key is made of the attributes AWS
documents (pipelines-default-keys): Processing: AppSpecification, Environment, ProcessingInputs; Training:
AlgorithmSpecification, CheckpointConfig, DebugHookConfig, DebugRuleConfigurations, Environment, HyperParameters,
InputDataConfig; all after parameters and step properties are resolved, so a step downstream of a cached step, which
gets the cached step's original output URIs, hits too. Like SageMaker's, the key holds S3 URIs, not what is stored
there: the step code is content-addressed (pipelines/definition/session.py) and so is a table given with --data, so a
change changes the key; another object written over the same key is not noticed.

Where results live: a run's S3 is a moto server that ends with the run, so a result is the files that the step wrote
into its run folder (runs/<time>/jobs/<step>/...), and the index runs/.cache/index.json says, per key, which run and
step, when, the step's properties, and every object it wrote (S3 URI, file, size, sha256). A hit checks that the files
are still there and unchanged, copies them into the new run folder, uploads them to the SAME URIs, and takes the
recorded properties as the step's (SageMaker propagates a cached step's properties, its original output URIs too).
Deleting a run folder drops its entries. Writers hold a lock and replace the index atomically: runs started at the
same time never corrupt it.

The index is a file anyone with the runs folder can edit, so an entry is trusted only as far as it is checked: its run
folder is a folder of the runs folder; its files lie in that run's folder of the same step; its time is not in the
future; and it restores only into the step's own outputs (the step's output URIs, any execution's id in place of this
one's: never the step code or another step's data), whose properties name those outputs too. An index of any other
shape counts as empty. After a restore the runner checks the step code again (LocalRunner's verify_code).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pipelines.errors import UsageValueError
from pipelines.local.engine.layout import model_archive, on_host
from pipelines.local.engine.s3 import split_uri
from pipelines.local.engine.step_types import StepType

CACHE_DIR = ".cache"  # under the runs folder
INDEX_FILE = "index.json"
LOCK_FILE = "index.lock"
VERSION = 1
KEEP_PER_KEY = 5  # the newest results of one key; older ones could only hit where the newer are gone
CLOCK_SKEW = timedelta(minutes=5)  # an entry recorded later than now by more than this is not believed
EXECUTION_ID = r"[A-Za-z0-9-]{1,64}"  # what stands for an execution's id in the output URIs of another execution

KEY_ATTRIBUTES = {
    StepType.PROCESSING: ("AppSpecification", "Environment", "ProcessingInputs"),
    StepType.TRAINING: (
        "AlgorithmSpecification",
        "CheckpointConfig",
        "DebugHookConfig",
        "DebugRuleConfigurations",
        "Environment",
        "HyperParameters",
        "InputDataConfig",
    ),
}

_DURATION = re.compile(
    r"P?(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?",
    re.IGNORECASE,
)


def parse_duration(text: str) -> timedelta:
    """An ISO 8601 duration (P30D, PT12H, P4DT12H, P1Y2M; AWS's examples also drop the P: 30d, T16m). A year counts
    365 days and a month 30."""
    text = text.strip()
    match = _DURATION.fullmatch(text)
    if not match or not any(match.groupdict().values()) or text.upper().endswith("T"):
        raise UsageValueError(f"ExpireAfter {text!r} is not an ISO 8601 duration such as P30D, PT12H or P4DT12H")
    n = {name: float(value or 0) for name, value in match.groupdict().items()}
    days = 365 * n["years"] + 30 * n["months"] + 7 * n["weeks"] + n["days"]
    return timedelta(days=days, hours=n["hours"], minutes=n["minutes"], seconds=n["seconds"])


def cache_key(pipeline_name: str, step: dict, args: dict) -> str | None:
    """The key of a step whose `args` are resolved; None for step types that are never cached here."""
    attributes = KEY_ATTRIBUTES.get(step["Type"])
    if attributes is None:
        return None
    document = {"pipeline": pipeline_name, "step": step["Name"], "type": step["Type"]}
    document.update({name: args.get(name) for name in attributes})
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def written_objects(step_type: str, properties: dict, job_root: Path) -> list[tuple[str, Path]]:
    """(S3 URI, local file) of everything a finished job uploaded: a processing job's output folders, file by file
    under the same keys as pipelines/local/engine/s3.upload_dir; a training job's model.tar.gz."""
    if step_type == StepType.TRAINING:
        return [(properties["ModelArtifacts"]["S3ModelArtifacts"], model_archive(job_root))]
    objects = []
    for output in properties.get("ProcessingOutputConfig", {}).get("Outputs", []):
        folder = on_host(job_root, output["S3Output"]["LocalPath"])
        prefix = output["S3Output"]["S3Uri"].rstrip("/")
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            objects.append((f"{prefix}/{path.relative_to(folder).as_posix()}", path))
    return objects


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


class StepCache:
    """The cache index of the run folders under `runs_dir`."""

    def __init__(self, runs_dir: Path, now: Callable[[], datetime] = _now):
        self.runs_dir = Path(runs_dir)
        self.folder = self.runs_dir / CACHE_DIR
        self.now = now

    @property
    def index_file(self) -> Path:
        return self.folder / INDEX_FILE

    def entries(self) -> dict[str, list[dict]]:
        """key -> results, as the index holds them; an index that cannot be read counts as empty."""
        try:
            index = json.loads(self.index_file.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(index, dict) or index.get("version") != VERSION:
            return {}
        entries = index.get("entries", {})
        well_formed = isinstance(entries, dict) and all(
            isinstance(results, list)
            and all(
                isinstance(e, dict) and isinstance(e.get("run"), str) and isinstance(e.get("time"), str)
                for e in results
            )
            for results in entries.values()
        )
        return entries if well_formed else {}  # valid JSON of another shape: as unreadable

    def lookup(
        self, key: str, expire_after: timedelta, step: dict | None = None, args: dict | None = None, execution_id=""
    ) -> tuple[dict | None, str]:
        """The newest usable result of `key` younger than `expire_after`; else None and why the ones there are not
        usable ("" when there are none). With the `step`, its resolved `args` and this `execution_id`: only a result
        that restores into the step's own outputs (`foreign`)."""
        candidates = sorted(self.entries().get(key, []), key=lambda e: e["time"], reverse=True)
        reasons = []
        for entry in candidates:
            try:
                age = self.now() - datetime.fromisoformat(entry["time"])
                problem = self.malformed(entry)
            except (KeyError, TypeError, ValueError, AttributeError) as error:
                problem = f"an unreadable cache entry ({type(error).__name__})"
            if not problem and step is not None:
                problem = foreign(entry, step, args or {}, execution_id)
            if problem:
                reasons.append(problem)
                continue
            if age < -CLOCK_SKEW:
                reasons.append(f"the result of {self.source(entry)} is recorded in the future ({entry['time']})")
                continue
            if age > expire_after:
                reasons.append(f"the result of {self.source(entry)} is older than ExpireAfter ({_age(age)})")
                continue
            problem = self.check(entry)
            if problem:
                reasons.append(problem)
                continue
            return entry, ""
        return None, reasons[0] if reasons else ""

    def source(self, entry: dict) -> Path:
        """The run folder a result came from."""
        return self.runs_dir / entry["run"]

    def malformed_run(self, entry: dict) -> bool:
        run = Path(entry["run"])
        return run.is_absolute() or ".." in run.parts

    def malformed(self, entry: dict) -> str | None:
        """Why an entry is not one this cache writes (fields of other types, a run folder outside the runs folder, a
        file outside its run's job folder of the step), or None."""
        fields = {"run": str, "step": str, "type": str, "time": str, "execution_arn": str, "properties": dict,
                  "log": str, "objects": list}  # fmt: skip
        wrong = sorted(name for name, kind in fields.items() if not isinstance(entry.get(name), kind))
        if wrong:
            return f"an unreadable cache entry (fields {', '.join(wrong)})"
        run = Path(entry["run"])
        if (
            run.is_absolute()
            or ".." in run.parts
            or not run.parts
            or self.runs_dir.resolve() not in ((self.runs_dir / run).resolve().parents)
        ):
            return f"a cache entry names a run outside the runs folder {self.runs_dir}: {entry['run']}"
        job = Path("jobs", entry["step"])
        for item in entry["objects"]:
            if not (isinstance(item, dict) and all(isinstance(item.get(k), str) for k in ("uri", "path", "sha256"))):
                return f"the result of {self.source(entry)} lists an unreadable file"
            if not isinstance(item.get("size"), int):
                return f"the result of {self.source(entry)} lists an unreadable file"
        for name in [item["path"] for item in entry["objects"]] + ([entry["log"]] if entry["log"] else []):
            relative = Path(name)
            if (
                relative.is_absolute()
                or ".." in relative.parts
                or (name != entry["log"] and job not in relative.parents)
            ):
                return f"the result of {self.source(entry)} records a file outside its run folder's {job}: {name}"
        return None

    def check(self, entry: dict) -> str | None:
        """Why the files of a result cannot be used (gone, changed, or recorded outside its run folder), or None."""
        for item in entry["objects"]:
            relative = Path(item["path"])
            if relative.is_absolute() or ".." in relative.parts:
                return f"the result of {self.source(entry)} records a file outside its run folder: {item['path']}"
            path = self.source(entry) / relative
            if not path.is_file():
                return f"{path} of the result of {self.source(entry)} is gone"
            if path.stat().st_size != item["size"] or file_sha256(path) != item["sha256"]:
                return f"{path} of the result of {self.source(entry)} has changed"
        return None

    def restore(self, entry: dict, run_dir: Path, s3) -> None:
        """Put a result's files into `run_dir` at the places the step wrote them, and into S3 at their URIs."""
        for item in entry["objects"]:
            source = self.source(entry) / item["path"]
            target = Path(run_dir) / item["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            bucket, key = split_uri(item["uri"])
            s3.upload_file(str(target), bucket, key)

    def new_entry(
        self, run_dir: Path, step: dict, execution_arn: str, properties: dict, objects: list[tuple[str, Path]], log: str
    ) -> dict:
        run_dir = Path(run_dir)
        try:  # where the run is, from the runs folder: its name, unless it is elsewhere
            run = run_dir.resolve().relative_to(self.runs_dir.resolve()).as_posix()
        except ValueError:
            run = str(run_dir.resolve())
        return {
            "run": run,
            "step": step["Name"],
            "type": step["Type"],
            "time": self.now().isoformat(timespec="seconds"),
            "execution_arn": execution_arn,
            "properties": properties,
            "log": Path(log).relative_to(run_dir).as_posix() if log else "",
            "objects": [
                {
                    "uri": uri,
                    "path": path.relative_to(run_dir).as_posix(),
                    "size": path.stat().st_size,
                    "sha256": file_sha256(path),
                }
                for uri, path in objects
            ],
        }

    def record(self, key: str, entry: dict) -> None:
        """Add a result; drop those whose run folder is gone and all but the newest KEEP_PER_KEY of the key."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with self._locked():
            entries = self.entries()
            entries.setdefault(key, []).append(entry)
            kept = {}
            for name, results in entries.items():
                results = [e for e in results if not self.malformed_run(e) and self.source(e).is_dir()]
                results.sort(key=lambda e: e["time"], reverse=True)
                if results:
                    kept[name] = results[:KEEP_PER_KEY]
            self._write({"version": VERSION, "entries": kept})

    def _write(self, index: dict[str, Any]) -> None:
        handle, temporary = tempfile.mkstemp(dir=self.folder, prefix=".index-", suffix=".json")
        try:
            os.fchmod(handle, 0o644)  # as an index written with open() would be, not mkstemp's 0600
            with os.fdopen(handle, "w") as out:
                json.dump(index, out, indent=1, sort_keys=True)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.index_file)  # readers see the old index or the new one, never half of one
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    @contextlib.contextmanager
    def _locked(self):
        """One writer at a time, across processes (a read-modify-write of the index)."""
        with open(self.folder / LOCK_FILE, "a+") as lock:
            try:
                import fcntl
            except ImportError:  # no flock (Windows): the atomic replace still keeps the index whole
                yield
                return
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def output_patterns(step_type: str, args: dict, execution_id: str) -> list[re.Pattern]:
    """Where the step with resolved `args` writes, in any execution: its output URIs, each as a prefix, with any
    execution's id where they hold this one's (SageMaker propagates a cached step's original output URIs)."""
    if step_type == StepType.TRAINING:
        uris = [args.get("OutputDataConfig", {}).get("S3OutputPath", "")]
    else:
        uris = [
            o.get("S3Output", {}).get("S3Uri", "") for o in args.get("ProcessingOutputConfig", {}).get("Outputs", [])
        ]
    patterns = []
    for uri in (str(u).rstrip("/") for u in uris if u):
        parts = [re.escape(part) for part in (uri.split(execution_id) if execution_id else [uri])]
        patterns.append(re.compile(EXECUTION_ID.join(parts) + "(/|$)"))
    return patterns


def foreign(entry: dict, step: dict, args: dict, execution_id: str) -> str | None:
    """Why a result of another step, or one that would write outside this step's outputs (over the step code, say),
    or whose properties name other places, is not this step's; None when it is."""
    if entry["step"] != step["Name"] or entry["type"] != step["Type"]:
        return f"a cache entry of {entry['step']} ({entry['type']}) is filed under {step['Name']}'s key"
    patterns = output_patterns(step["Type"], args, execution_id)

    def inside(uri) -> bool:
        text = str(uri)
        key = text.split("/", 3)[3] if text.count("/") >= 3 else ""
        dotted = any(part in (".", "..") for part in key.split("/"))
        return isinstance(uri, str) and not dotted and any(p.match(text) for p in patterns)

    try:
        if step["Type"] == StepType.TRAINING:
            named = [entry["properties"]["ModelArtifacts"]["S3ModelArtifacts"]]
        else:
            outputs = entry["properties"]["ProcessingOutputConfig"]["Outputs"]
            named = [o["S3Output"]["S3Uri"] for o in outputs]
            declared = [o.get("OutputName") for o in args.get("ProcessingOutputConfig", {}).get("Outputs", [])]
            if [o.get("OutputName") for o in outputs] != declared:
                return f"the result of {entry['run']} names outputs other than {step['Name']}'s"
    except (KeyError, TypeError, AttributeError):
        return f"the result of {entry['run']} has no readable output properties"
    for uri in [*named, *(item["uri"] for item in entry["objects"])]:
        if not inside(uri):
            return f"the result of {entry['run']} would write outside {step['Name']}'s outputs: {uri}"
    return None


def _age(age: timedelta) -> str:
    hours = age.total_seconds() / 3600
    return f"{hours / 24:.1f} days old" if hours >= 48 else f"{hours:.1f} hours old"
