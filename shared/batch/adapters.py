"""What a batch job needs from the object store, and the listing of a job's objects through it.

:class:`BatchStore` is a Protocol that :class:`~shared.lake.adapters.S3ObjectStore` (the one S3 adapter)
satisfies; tests use the in-memory store of ``tests/fakes.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from shared.batch.exceptions import JobRequestError
from shared.batch.reading import parquet_row_groups
from shared.batch.types import JobRequest, ListedObject
from shared.lake.adapters import ObjectStore
from shared.lake.layout import parse_s3_uri

if TYPE_CHECKING:
    from collections.abc import Sequence

    from shared.lake.adapters import StoredObject


class BatchStore(ObjectStore, Protocol):
    """Ingest's :class:`~shared.lake.adapters.ObjectStore` (its readers stream a gzip object), plus listing with
    sizes, ranged reads and writes of bytes."""

    def list_objects(self, bucket: str, prefix: str) -> list[StoredObject]:
        """Every object under ``prefix`` (paginated: any number of keys), with size and ETag."""
        ...

    def get_range(self, bucket: str, key: str, start: int, end: int) -> bytes: ...

    def put_bytes(self, bucket: str, key: str, body: bytes, *, content_type: str) -> None: ...


def _listed(bucket: str, item: StoredObject) -> ListedObject:
    return ListedObject(bucket=bucket, key=item.key, size=item.size, etag=item.etag.strip('"'))


def list_job_objects(store: BatchStore, request: JobRequest) -> list[ListedObject]:
    """The objects a job scores: every object under its prefix (folders' ``/`` markers aside), or its manifest's
    objects, their size and ETag looked up in the listing when the manifest does not give them."""
    if request.source_uri is not None:
        try:
            bucket, prefix = parse_s3_uri(request.source_uri)
        except ValueError:
            if request.source_uri.startswith("s3://") and "/" not in request.source_uri[5:]:
                bucket, prefix = request.source_uri[5:], ""
            else:
                raise JobRequestError(f"{request.source_uri!r} is not an s3://bucket/prefix URI") from None
        return [_listed(bucket, item) for item in store.list_objects(bucket, prefix) if not item.key.endswith("/")]
    found: list[ListedObject] = []
    for entry in request.objects:
        if entry.size is not None and entry.etag is not None:
            found.append(ListedObject(bucket=entry.bucket, key=entry.key, size=entry.size, etag=entry.etag))
            continue
        matches = [item for item in store.list_objects(entry.bucket, entry.key) if item.key == entry.key]
        if not matches:
            raise JobRequestError(f"s3://{entry.bucket}/{entry.key} (in the job's manifest) does not exist")
        found.append(_listed(entry.bucket, matches[0]))
    return found


def row_groups_reader(store: BatchStore) -> Any:
    """``row_groups_of`` for :func:`~shared.batch.planning.plan_job`: a Parquet footer read by ranged GETs."""

    def row_groups_of(item: ListedObject) -> Sequence[int]:
        return parquet_row_groups(store, item.bucket, item.key, item.size)

    return row_groups_of
