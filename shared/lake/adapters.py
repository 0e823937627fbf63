"""The object store: a Protocol of what ingest needs, and the S3 adapter every stage uses.

:class:`S3ObjectStore` is the one class that talks to S3. It takes a boto3 S3 client (nothing here
creates one), and wraps every botocore error in :class:`~shared.lake.exceptions.StorageError`; a domain
class may wrap it with typed reads (the promotion's lake, the prediction log's writer).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from shared.lake.exceptions import StorageError

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

MULTIPART_THRESHOLD = 64 * 1024 * 1024


@dataclass(frozen=True)
class StoredObject:
    """One object of a listing: its key, when it was last written, its size in bytes and its ETag."""

    key: str
    last_modified: datetime
    size: int = 0
    etag: str = ""


class ByteStream(Protocol):
    """A readable binary stream (a file, a botocore StreamingBody, a gzip reader)."""

    def read(self, size: int = -1, /) -> bytes: ...


class ObjectStore(Protocol):
    """What ingest needs from an object store."""

    def open(self, bucket: str, key: str, version_id: str | None = None) -> AbstractContextManager[ByteStream]:
        """A streaming, read-only binary body of the object (a context manager that closes it)."""
        ...

    def download(self, bucket: str, key: str, version_id: str | None, path: Path) -> None:
        """Copy the object into a local file (for formats that need random access)."""
        ...

    def upload_file(self, path: Path, bucket: str, key: str, *, content_type: str) -> None: ...

    def put_json(self, bucket: str, key: str, document: dict[str, Any]) -> None: ...

    def get_bytes(self, bucket: str, key: str) -> bytes: ...

    def exists(self, bucket: str, key: str) -> bool: ...

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        """Every key under ``prefix``, sorted."""
        ...

    def copy(self, src_bucket: str, src_key: str, src_version_id: str | None, dst_bucket: str, dst_key: str) -> None:
        """Server-side copy of one object version."""
        ...


def _client_errors() -> tuple[type[Exception], ...]:
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError, S3UploadFailedError)


class _ClosingBody:
    """A context manager over a botocore StreamingBody."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def __enter__(self) -> ByteStream:
        return self._body

    def __exit__(self, *_: object) -> None:
        self._body.close()


class S3ObjectStore:
    """:class:`ObjectStore` on Amazon S3 through a boto3 client."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def _version(self, version_id: str | None) -> dict[str, str]:
        return {"VersionId": version_id} if version_id else {}

    def open(self, bucket: str, key: str, version_id: str | None = None) -> AbstractContextManager[ByteStream]:
        try:
            response = self._client.get_object(Bucket=bucket, Key=key, **self._version(version_id))
        except _client_errors() as exc:
            raise StorageError(f"cannot read s3://{bucket}/{key}: {exc}") from exc
        return _ClosingBody(_WrappedErrors(response["Body"], f"s3://{bucket}/{key}"))

    def download(self, bucket: str, key: str, version_id: str | None, path: Path) -> None:
        extra = {"VersionId": version_id} if version_id else None
        try:
            self._client.download_file(bucket, key, str(path), ExtraArgs=extra)
        except _client_errors() as exc:
            raise StorageError(f"cannot download s3://{bucket}/{key}: {exc}") from exc

    def upload_file(self, path: Path, bucket: str, key: str, *, content_type: str) -> None:
        from boto3.s3.transfer import TransferConfig

        config = TransferConfig(multipart_threshold=MULTIPART_THRESHOLD, use_threads=False)
        try:
            self._client.upload_file(str(path), bucket, key, ExtraArgs={"ContentType": content_type}, Config=config)
        except _client_errors() as exc:
            raise StorageError(f"cannot upload s3://{bucket}/{key}: {exc}") from exc

    def put_json(self, bucket: str, key: str, document: dict[str, Any]) -> None:
        body = json.dumps(document, indent=2, default=str).encode()
        try:
            self._client.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
        except _client_errors() as exc:
            raise StorageError(f"cannot write s3://{bucket}/{key}: {exc}") from exc

    def put_bytes(self, bucket: str, key: str, body: bytes, *, content_type: str) -> None:
        try:
            self._client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
        except _client_errors() as exc:
            raise StorageError(f"cannot write s3://{bucket}/{key}: {exc}") from exc

    def get_bytes(self, bucket: str, key: str) -> bytes:
        try:
            return self._client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except _client_errors() as exc:
            raise StorageError(f"cannot read s3://{bucket}/{key}: {exc}") from exc

    def get_range(self, bucket: str, key: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of the object (an HTTP ranged GET); fewer when the object ends before ``end``,
        none when ``start`` is at or past its end (or the range is empty)."""
        if start < 0 or end <= start:
            return b""
        try:
            return self._client.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}")["Body"].read()
        except _client_errors() as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code == "InvalidRange":
                return b""
            raise StorageError(f"cannot read bytes {start}-{end - 1} of s3://{bucket}/{key}: {exc}") from exc

    def exists(self, bucket: str, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._client.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise StorageError(f"cannot check s3://{bucket}/{key}: {exc}") from exc
        except _client_errors() as exc:
            raise StorageError(f"cannot check s3://{bucket}/{key}: {exc}") from exc
        return True

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        keys: list[str] = []
        try:
            for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                keys.extend(item["Key"] for item in page.get("Contents", []))
        except _client_errors() as exc:
            raise StorageError(f"cannot list s3://{bucket}/{prefix}: {exc}") from exc
        return sorted(keys)

    def list_objects(self, bucket: str, prefix: str) -> list[StoredObject]:
        """Every object under ``prefix`` with its last-modified time, in listing order."""
        objects: list[StoredObject] = []
        try:
            for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                objects.extend(
                    StoredObject(item["Key"], item["LastModified"], int(item.get("Size", 0)), item.get("ETag", ""))
                    for item in page.get("Contents", [])
                )
        except _client_errors() as exc:
            raise StorageError(f"cannot list s3://{bucket}/{prefix}: {exc}") from exc
        return objects

    def list_prefixes(self, bucket: str, prefix: str) -> list[str]:
        """The sub-prefixes one ``/`` below ``prefix`` (``date=…/``, ``hour=…/``), sorted."""
        found: list[str] = []
        try:
            for page in self._client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix, Delimiter="/"
            ):
                found.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
        except _client_errors() as exc:
            raise StorageError(f"cannot list s3://{bucket}/{prefix}: {exc}") from exc
        return sorted(found)

    def copy(self, src_bucket: str, src_key: str, src_version_id: str | None, dst_bucket: str, dst_key: str) -> None:
        source = {"Bucket": src_bucket, "Key": src_key, **self._version(src_version_id)}
        try:
            self._client.copy(source, dst_bucket, dst_key)
        except _client_errors() as exc:
            where = f"s3://{src_bucket}/{src_key} to s3://{dst_bucket}/{dst_key}"
            raise StorageError(f"cannot copy {where}: {exc}") from exc


class _WrappedErrors:
    """A read-only stream whose SDK errors surface as :class:`StorageError`."""

    def __init__(self, body: Any, where: str) -> None:
        self._body = body
        self._where = where

    def read(self, size: int = -1, /) -> bytes:
        try:
            return self._body.read(size if size >= 0 else None)
        except _client_errors() as exc:
            raise StorageError(f"reading {self._where} failed: {exc}") from exc

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._body.close()
