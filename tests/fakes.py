"""In-memory fakes of Sluice's adapters (prefer these over mocks)."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.lake.adapters import StoredObject
from shared.lake.exceptions import StorageError

LISTED_AT = datetime(2026, 1, 1, tzinfo=UTC)


class InMemoryObjectStore:
    """An :class:`~shared.lake.adapters.ObjectStore` over a dict; versioned when ``version_id`` is given."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}
        self.versions: dict[tuple[str, str, str], bytes] = {}
        self.writes: list[tuple[str, str]] = []
        self.range_reads: list[tuple[str, int, int]] = []

    def put(self, bucket: str, key: str, body: bytes, version_id: str | None = None) -> None:
        self.objects[(bucket, key)] = body
        if version_id is not None:
            self.versions[(bucket, key, version_id)] = body

    def body(self, bucket: str, key: str, version_id: str | None = None) -> bytes:
        try:
            if version_id is not None and (bucket, key, version_id) in self.versions:
                return self.versions[(bucket, key, version_id)]
            return self.objects[(bucket, key)]
        except KeyError as exc:
            raise StorageError(f"no such object s3://{bucket}/{key}") from exc

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        return sorted(k for b, k in self.objects if b == bucket and k.startswith(prefix))

    def json(self, bucket: str, key: str) -> Any:
        return json.loads(self.body(bucket, key))

    # --- ObjectStore ---------------------------------------------------------------------------
    @contextmanager
    def open(self, bucket: str, key: str, version_id: str | None = None) -> Iterator[io.BytesIO]:
        yield io.BytesIO(self.body(bucket, key, version_id))

    def download(self, bucket: str, key: str, version_id: str | None, path: Path) -> None:
        path.write_bytes(self.body(bucket, key, version_id))

    def upload_file(self, path: Path, bucket: str, key: str, *, content_type: str) -> None:
        with path.open("rb") as file, io.BytesIO() as buffer:
            shutil.copyfileobj(file, buffer)
            self._write(bucket, key, buffer.getvalue())

    def put_json(self, bucket: str, key: str, document: dict[str, Any]) -> None:
        self._write(bucket, key, json.dumps(document, default=str).encode())

    def get_bytes(self, bucket: str, key: str) -> bytes:
        return self.body(bucket, key)

    def exists(self, bucket: str, key: str) -> bool:
        return (bucket, key) in self.objects

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        return self.keys(bucket, prefix)

    def copy(self, src_bucket: str, src_key: str, src_version_id: str | None, dst_bucket: str, dst_key: str) -> None:
        self._write(dst_bucket, dst_key, self.body(src_bucket, src_key, src_version_id))

    def put_bytes(self, bucket: str, key: str, body: bytes, *, content_type: str) -> None:
        self._write(bucket, key, body)

    def get_range(self, bucket: str, key: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)``, as S3's ranged GET (fewer past the end); counted in ``range_reads``."""
        self.range_reads.append((key, start, end))
        return self.body(bucket, key)[max(start, 0) : max(end, 0)] if end > start else b""

    def list_objects(self, bucket: str, prefix: str) -> list[StoredObject]:
        """Every object under ``prefix`` with its size and an ETag (the md5 of its bytes, as S3's single-part one)."""
        return [
            StoredObject(key, LISTED_AT, len(body), f'"{hashlib.md5(body, usedforsecurity=False).hexdigest()}"')
            for key in self.keys(bucket, prefix)
            for body in (self.objects[(bucket, key)],)
        ]

    def _write(self, bucket: str, key: str, body: bytes) -> None:
        self.objects[(bucket, key)] = body
        self.writes.append((bucket, key))


class FakeLambdaContext:
    """The attributes powertools reads from a Lambda context."""

    function_name = "sluice-ingest"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:sluice-ingest"
    aws_request_id = "00000000-0000-0000-0000-000000000001"
    log_group_name = "/aws/lambda/sluice-ingest"
    log_stream_name = "2024/01/01/[$LATEST]0"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


class InMemoryAuditLog:
    """The deployment table's audit history (``append_event`` / ``latest_event``) as a list, oldest first."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def append_event(self, usecase: str, event: Any, *, at: datetime | None = None) -> str:
        when = (at or datetime.now(UTC)).astimezone(UTC)
        self.events.append({**event, "usecase": usecase, "at": when.isoformat()})
        return f"event#{when.isoformat()}#{len(self.events)}"

    def latest_event(self, usecase: str, *, action: str, scanned: int = 1000) -> dict[str, Any] | None:
        found = [e for e in self.events[-scanned:] if e["usecase"] == usecase and e.get("action") == action]
        return found[-1] if found else None
