"""Objects in S3: recipients files read as streams (from any byte, pinned to one version),
big requests' rows and the reader's checkpoints written to the stack's bucket."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from .aws import client

READ_CHUNK = 256 * 1024


class FileUnreadable(LookupError):
    """The object is missing, not ours to read, or changed since the request named it."""


@dataclass(frozen=True)
class S3Object:
    bucket: str
    key: str

    @classmethod
    def parse(cls, uri: str) -> S3Object:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        return cls(bucket, key)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def etag_of(obj: S3Object) -> str:
    """The object's current version tag (reads later are pinned to it)."""
    try:
        return client("s3").head_object(Bucket=obj.bucket, Key=obj.key)["ETag"]
    except ClientError as exc:
        raise FileUnreadable(_why(exc, obj)) from None


def stream(obj: S3Object, etag: str | None, start: int = 0) -> Iterator[bytes]:
    """The object's bytes from `start`, in chunks; the version named by `etag` or nothing."""
    kwargs = {"Bucket": obj.bucket, "Key": obj.key}
    if etag:
        kwargs["IfMatch"] = etag
    if start:
        kwargs["Range"] = f"bytes={start}-"
    try:
        body = client("s3").get_object(**kwargs)["Body"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "InvalidRange":
            return iter(())  # nothing after `start`
        raise FileUnreadable(_why(exc, obj)) from None
    return body.iter_chunks(READ_CHUNK)


def put(obj: S3Object, data: bytes, content_type: str = "application/octet-stream") -> str:
    """Write an object; its ETag."""
    return client("s3").put_object(Bucket=obj.bucket, Key=obj.key, Body=data, ContentType=content_type)[
        "ETag"
    ]


def get(obj: S3Object) -> bytes:
    try:
        return client("s3").get_object(Bucket=obj.bucket, Key=obj.key)["Body"].read()
    except ClientError as exc:
        raise FileUnreadable(_why(exc, obj)) from None


def metadata(obj: S3Object) -> dict[str, Any]:
    """{"metadata": the object's user metadata, "etag": its version tag}."""
    try:
        head = client("s3").head_object(Bucket=obj.bucket, Key=obj.key)
    except ClientError as exc:
        raise FileUnreadable(_why(exc, obj)) from None
    return {"metadata": head.get("Metadata", {}), "etag": head["ETag"]}


def _why(exc: ClientError, obj: S3Object) -> str:
    code = exc.response.get("Error", {}).get("Code", "")
    if code in ("NoSuchKey", "404", "NotFound"):
        return f"{obj.uri} does not exist"
    if code in ("AccessDenied", "403"):
        return f"{obj.uri} cannot be read by smsrelay: put it in the stack's bucket or grant it s3:GetObject"
    if code in ("PreconditionFailed", "412"):
        return f"{obj.uri} changed while it was being read: upload the new list under a new name"
    if code == "NoSuchBucket":
        return f"bucket {obj.bucket!r} does not exist"
    return f"{obj.uri} could not be read ({code or 'error'})"
