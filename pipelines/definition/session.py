"""A PipelineSession that renders the same definition every time, without calling AWS.

The SDK uploads step code while it renders, under timestamped keys. This
session stores every upload under a content-addressed key instead
(`<prefix>/code/<sha256>/...`) and keeps the bytes in `uploads`, so the
definition depends on nothing but the code, and the caller decides whether
the bytes go to S3 (upsert, local run) or nowhere (render).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import boto3
from sagemaker.core.workflow.pipeline_context import PipelineSession

from pipelines.definition import sdk

sdk.disable_telemetry()


class RegulaSession(PipelineSession):
    def __init__(self, region: str, bucket: str, prefix: str):
        # Offline credentials: rendering must not reach AWS, whatever the environment holds.
        boto_session = boto3.Session(region_name=region, aws_access_key_id="offline", aws_secret_access_key="offline")
        sdk.answer_role_checks(boto_session)
        super().__init__(boto_session=boto_session, default_bucket=bucket, sagemaker_config={})
        self.code_prefix = f"{prefix}/code"
        self.uploads: dict[str, bytes] = {}

    def default_bucket(self) -> str:
        return sdk.given_default_bucket(self)

    def upload_data(self, path, bucket=None, key_prefix="data", callback=None, extra_args=None) -> str:
        path = Path(path)
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        base = path if path.is_dir() else path.parent
        files = [p for p in files if "__pycache__" not in p.parts]
        uri = self._upload({p.relative_to(base).as_posix(): p.read_bytes() for p in files})
        # a folder ends in '/': S3 prefixes match by string, and '<hash>x.py' must not count as inside '<hash>'
        return f"{uri}/" if path.is_dir() else f"{uri}/{path.name}"

    def upload_files(self, files: dict[str, Path]) -> str:
        """The files `files` (relative name in the folder -> local path), as one content-addressed folder: its URI,
        ending in '/'."""
        return self._upload({name: Path(path).read_bytes() for name, path in files.items()}) + "/"

    def _upload(self, contents: dict[str, bytes]) -> str:
        """Record `contents` (relative name -> bytes) under a key derived from names and bytes; the folder's URI."""
        digest = hashlib.sha256()
        for name, data in sorted(contents.items()):
            digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
        key = f"{self.code_prefix}/{digest.hexdigest()[:20]}"
        for name, data in contents.items():
            self.uploads[f"{key}/{name}"] = data
        return f"s3://{self.default_bucket()}/{key}"

    def upload_string_as_file_body(self, body, bucket, key, kms_key=None) -> str:
        self.uploads[key] = body.encode() if isinstance(body, str) else body
        return f"s3://{bucket}/{key}"

    def push_uploads(self, s3_client) -> int:
        """Put the recorded code into the bucket; returns how many objects were written or removed. An object already
        at its content-addressed key is kept only when its bytes are the recorded ones: anything else there (a
        poisoned train.py, a truncated upload) is overwritten, and objects in a code folder that were never uploaded
        (a planted sitecustomize.py) are removed, before a job can run them."""
        written = 0
        folders = {key.rsplit("/", 1)[0] + "/" for key in self.uploads}
        for folder in sorted(folders):  # an object nobody uploaded inside a code folder would reach the jobs too
            pages = s3_client.get_paginator("list_objects_v2").paginate(Bucket=self.default_bucket(), Prefix=folder)
            for item in (item for page in pages for item in page.get("Contents", [])):
                if item["Key"] not in self.uploads:
                    s3_client.delete_object(Bucket=self.default_bucket(), Key=item["Key"])
                    written += 1
        for key, data in sorted(self.uploads.items()):
            try:
                present = s3_client.get_object(Bucket=self.default_bucket(), Key=key)["Body"].read()
            except s3_client.exceptions.ClientError:
                present = None
            if present is not None and hashlib.sha256(present).digest() == hashlib.sha256(data).digest():
                continue
            s3_client.put_object(Bucket=self.default_bucket(), Key=key, Body=data)
            written += 1
        return written
