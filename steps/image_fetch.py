"""The images a manifest names by S3 URI outside InputDataUri's prefix, fetched inside the preprocessing job.

SageMaker copies only InputDataUri's prefix into the job; a manifest may name images elsewhere in the same bucket
(`s3://team-bucket/other/prefix/x.png`). Those are fetched here with boto3, as the job's role: the execution role
needs s3:GetObject on them (`regula iam --data-uri s3://team-bucket/other/prefix/` grants it, one --data-uri per
prefix). A manifest is untrusted input, so a URI is fetched only when it names the input's own bucket and a plain
key: no empty, '.' or '..' segment, no backslash or control character, at most 1,024 bytes, an image file's suffix.
An object larger than MAX_OBJECT_BYTES is not downloaded. Every URI that cannot be fetched is a problem naming its
row; a failure to reach S3 at all (no credentials, no endpoint) is one error.
"""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from steps.contract import StepError
from steps.image_decode import SUFFIXES

MAX_OBJECT_BYTES = 256 * 2**20  # far above any image under image_decode.MAX_PIXELS; bounds the job's disk per row
MAX_KEY_BYTES = 1024  # S3's own limit
WORKERS = 16  # concurrent GetObject calls: one at a time, 100k small images would take hours


def split_uri(uri: str) -> tuple[str, str]:
    """s3://bucket/key -> (bucket, key)."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def checked_key(uri: str, input_uri: str) -> tuple[str, str]:
    """The key to fetch for a manifest's S3 URI outside InputDataUri's prefix, or ('', why it is refused)."""
    if not input_uri.startswith("s3://"):
        return "", f"{uri}: an S3 URI needs InputDataUri on S3 (it is {input_uri or 'not given'})"
    bucket, key = split_uri(uri)
    if bucket != split_uri(input_uri)[0]:
        return "", f"{uri} is in another bucket than InputDataUri ({input_uri}): images are read from its bucket only"
    parts = key.split("/")
    if not key or any(part in ("", ".", "..") for part in parts):
        return "", f"{uri!r}: the key has an empty, '.' or '..' segment"
    if "\\" in key or any(ord(c) < 32 or ord(c) == 127 for c in key) or len(key.encode()) > MAX_KEY_BYTES:
        return "", f"{uri!r}: the key has a backslash or a control character, or is over {MAX_KEY_BYTES} bytes"
    if Path(key).suffix.lower() not in SUFFIXES:
        return "", f"{uri}: not an image file (expected {', '.join(SUFFIXES)})"
    return key, ""


def fetch(bucket: str, keys: list[str], into: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """Each key's object downloaded under `into` (key -> file), and the keys that could not be (key -> why)."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.client("s3", config=Config(retries={"max_attempts": 5, "mode": "standard"}))

    def one(key: str) -> tuple[str, Path | None, str]:
        target = into / key
        try:
            response = client.get_object(Bucket=bucket, Key=key)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound"):
                return key, None, "does not exist"
            if code in ("AccessDenied", "403"):
                return (
                    key,
                    None,
                    "cannot be read: access denied (the execution role needs s3:GetObject on it: "
                    "regula iam --data-uri with its prefix)",
                )
            return key, None, f"cannot be read ({code or type(error).__name__})"
        body = response["Body"]
        if response.get("ContentLength", 0) > MAX_OBJECT_BYTES:
            body.close()
            return key, None, f"is {response['ContentLength']:,} bytes, over the {MAX_OBJECT_BYTES:,} read per image"
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as out:
            shutil.copyfileobj(body, out, 1 << 20)
        return key, target, ""

    found, problems = {}, {}
    try:
        with ThreadPoolExecutor(WORKERS) as pool:
            for key, path, why in pool.map(one, sorted(set(keys))):
                if path is None:
                    problems[key] = why
                else:
                    found[key] = path
    except BotoCoreError as error:  # no credentials, no endpoint: nothing can be fetched
        raise StepError(f"cannot fetch the manifest's images from s3://{bucket}: {error}") from None
    return found, problems
