"""S3 as the AWS-side commands check it: S3's bucket naming rules and whether these credentials can use a bucket
(`regula upsert`, `regula doctor`). URIs and transfers are the local engine's (pipelines/local/engine/s3.py)."""

from __future__ import annotations

import ipaddress

BUCKET_CHARACTERS = set("abcdefghijklmnopqrstuvwxyz0123456789.-")
RESERVED_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
RESERVED_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


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
