"""S3 as the engine uses it: URIs split into bucket and key, and prefixes copied between S3 and local folders as a
job's S3Prefix inputs, outputs and checkpoints are. Any S3 API endpoint (the local runs: moto). No Regula names."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlparse

SMALL_OBJECT = 8 * 1024 * 1024  # s3transfer's multipart threshold: below it download_file makes one GET too


def split_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"not an S3 URI: {uri!r}")
    return parsed.netloc, parsed.path.lstrip("/")


def download_prefix(s3, uri: str, destination: Path) -> int:
    """Copy every object under `uri` (a prefix or one object) into `destination`, as SageMaker's S3Prefix input does.
    Keys are untrusted: one that would land outside `destination` ('..', an absolute path) is refused, by name."""
    bucket, prefix = split_uri(uri)
    destination.mkdir(parents=True, exist_ok=True)
    root = destination.resolve()
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            key = item["Key"]
            if key.endswith("/"):
                continue
            relative = key[len(prefix) :].lstrip("/") or key.rsplit("/", 1)[-1]
            target = (root / relative).resolve()
            if not target.is_relative_to(root) or target == root:
                raise ValueError(f"object key {key!r} would be written outside {destination}: refused")
            target.parent.mkdir(parents=True, exist_ok=True)
            if item.get("Size", SMALL_OBJECT) < SMALL_OBJECT:
                # one GET: download_file would add a HEAD and a transfer pool per object, which dominate for a job's
                # few dozen small code files (the runner's per-step overhead: benchmarks/results/overheads.json);
                # larger objects keep its ranged, parallel GETs
                with open(target, "wb") as handle:
                    shutil.copyfileobj(s3.get_object(Bucket=bucket, Key=key)["Body"], handle)
            else:
                s3.download_file(bucket, key, str(target))
            count += 1
    if count == 0:
        raise FileNotFoundError(f"nothing found at {uri}")
    return count


def upload_dir(s3, source: Path, uri: str) -> int:
    bucket, prefix = split_uri(uri)
    count = 0
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        s3.upload_file(str(path), bucket, f"{prefix.rstrip('/')}/{path.relative_to(source).as_posix()}")
        count += 1
    return count


def ensure_bucket(s3, bucket: str, region: str) -> None:
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if bucket in existing:
        return
    if region == "us-east-1":
        s3.create_bucket(Bucket=bucket)
    else:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
