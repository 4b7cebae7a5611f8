"""Small S3 helpers shared by the local runner and the CLI."""

from __future__ import annotations

import ipaddress
import shutil
from pathlib import Path
from urllib.parse import urlparse

BUCKET_CHARACTERS = set("abcdefghijklmnopqrstuvwxyz0123456789.-")
RESERVED_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
RESERVED_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
SMALL_OBJECT = 8 * 1024 * 1024  # s3transfer's multipart threshold: below it download_file makes one GET too


def split_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"not an S3 URI: {uri!r}")
    return parsed.netloc, parsed.path.lstrip("/")


def bucket_name_problems(name: str) -> list[str]:
    """Why `name` breaks S3's naming rules for general purpose buckets; empty when it is a valid name."""
    problems = []
    if not 3 <= len(name) <= 63:
        problems.append(f"it has {len(name)} character{'s' if len(name) != 1 else ''} (3 to 63)")
    others = sorted({c for c in name if c not in BUCKET_CHARACTERS})
    if others:
        shown = " ".join(repr(c) for c in others)
        problems.append(f"it holds {shown}: only lowercase letters, digits, dots and hyphens are allowed")
    if name and not (name[0].isalnum() and name[-1].isalnum()):
        problems.append("it must begin and end with a letter or a digit")
    if ".." in name:
        problems.append("it has two dots in a row")
    try:
        ipaddress.IPv4Address(name)
        problems.append("it is formatted as an IP address")
    except ValueError:
        pass
    problems += [f"it starts with {p!r}, reserved by AWS" for p in RESERVED_BUCKET_PREFIXES if name.startswith(p)]
    problems += [f"it ends with {s!r}, reserved by AWS" for s in RESERVED_BUCKET_SUFFIXES if name.endswith(s)]
    return problems


def bucket_name_error(name: str) -> str | None:
    problems = bucket_name_problems(name)
    return f"bucket name {name!r} is invalid: {'; '.join(problems)}" if problems else None


def bucket_access_error(s3, bucket: str, prefix: str) -> str | None:
    """Why Regula cannot use `bucket` with these credentials, or None. It lists the prefix rather than calling
    HeadBucket: HeadBucket needs s3:ListBucket on the whole bucket, which `regula iam` grants only under the
    prefix."""
    try:
        s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix.strip('/')}/", MaxKeys=1)
    except s3.exceptions.ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchBucket", "404"):
            return f"bucket {bucket} does not exist: create it (aws s3 mb s3://{bucket}) or pass --bucket"
        if code in ("AccessDenied", "403", "AllAccessDisabled"):
            return (
                f"bucket {bucket} is not readable with these credentials: it belongs to another account, or the "
                f"role lacks s3:ListBucket on {prefix}/ (see `regula iam`)"
            )
        return f"bucket {bucket}: {error}"
    return None


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
