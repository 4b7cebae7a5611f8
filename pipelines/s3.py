"""Small S3 helpers shared by the local runner and the CLI."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse


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
