"""Read faults on S3 objects: GetObject of one key answers ``503 SlowDown`` (an embedded-cloud control; no such
thing exists on AWS), so that a test can make a reader fail and watch what retries it.

``POST /_sluice/faults/objects`` on the API front (beside the endpoints' ``/_sluice/faults``) with
``{"bucket": B, "key": K, "calls": N}`` makes the next ``N`` GetObject calls of ``s3://B/K`` (ranged ones
included) fail; without ``calls`` every call fails until ``{"bucket": B, "key": K, "mode": "ok"}`` removes the
fault. A *call* is one SDK call with all its own retries: botocore sends the same ``amz-sdk-invocation-id``
header on every attempt of a call, and every attempt of a failing call is answered with the error, so the
SDK's retries do not absorb the fault and the caller gets the error (as it would after an outage longer than
its retries); a request without that header is a call of its own. ``GET /_sluice/faults/objects`` lists the
faults with the calls they failed so far (``failed_calls``) and the reads they let through since
(``served``).

Only reads are affected (HeadObject, listings and writes are not); the SDK's backoff between its attempts is
real (botocore's legacy mode: five attempts, up to about 15 s in all).
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Final

from local.services.apigateway import ApiResponse

logger = logging.getLogger(__name__)

OBJECT_FAULTS_PATH: Final = "/_sluice/faults/objects"
INVOCATION_ID_HEADER: Final = "amz-sdk-invocation-id"
SLOW_DOWN: Final = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate. (injected by the embedded cloud's fault switch)</Message></Error>"
)


@dataclass(kw_only=True)
class ObjectFault:
    bucket: str
    key: str
    calls: int | None
    """Calls still to fail (None: every call)."""
    failed_calls: int = 0
    served: int = 0
    failing: set[str] = field(default_factory=set)
    """Invocation ids of the calls failed so far (their retries fail too)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "key": self.key,
            "calls_left": self.calls,
            "failed_calls": self.failed_calls,
            "served": self.served,
        }

    def fails(self, invocation_id: str | None) -> bool:
        """Whether this read fails (and counts it)."""
        if invocation_id is not None and invocation_id in self.failing:
            return True
        if self.calls is not None and self.calls <= 0:
            self.served += 1
            return False
        if self.calls is not None:
            self.calls -= 1
        self.failed_calls += 1
        if invocation_id is not None:
            self.failing.add(invocation_id)
        return True


class ObjectFaults:
    """The faults and the patch of moto's GetObject that applies them; :meth:`control` is the API front's."""

    def __init__(self) -> None:
        self._faults: dict[tuple[str, str], ObjectFault] = {}
        self._lock = threading.Lock()
        self._original: Any = None

    def set_fault(self, bucket: str, key: str, *, calls: int | None = None, mode: str = "error") -> ObjectFault | None:
        """Fail the next ``calls`` reads of ``s3://bucket/key`` (None: all); ``mode="ok"`` removes the fault."""
        if mode not in ("error", "ok"):
            raise ValueError(f"mode must be 'error' or 'ok', not {mode!r}")
        with self._lock:
            if mode == "ok":
                self._faults.pop((bucket, key), None)
                return None
            fault = ObjectFault(bucket=bucket, key=key, calls=None if calls is None else max(0, int(calls)))
            self._faults[(bucket, key)] = fault
        logger.info("read fault on s3://%s/%s: %s", bucket, key, fault.to_json())
        return fault

    @property
    def faults(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.to_json() for f in self._faults.values()]

    def fails(self, bucket: str, key: str, invocation_id: str | None) -> bool:
        with self._lock:
            fault = self._faults.get((bucket, key))
            return fault is not None and fault.fails(invocation_id)

    def control(self, method: str, path: str, body: bytes) -> ApiResponse | None:
        """The ``/_sluice/faults/objects`` control of the API front."""
        if path.rstrip("/") != OBJECT_FAULTS_PATH:
            return None
        if method == "GET":
            return _json_response(200, {"faults": self.faults})
        if method != "POST":
            return _json_response(405, {"message": "GET or POST"})
        try:
            request = json.loads(body or b"{}")
            calls = request.get("calls")
            fault = self.set_fault(
                str(request["bucket"]),
                str(request["key"]),
                calls=None if calls is None else int(calls),
                mode=str(request.get("mode", "error")),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return _json_response(400, {"message": f"send {{'bucket', 'key', 'calls', 'mode'}}: {exc}"})
        return _json_response(200, fault.to_json() if fault else {"bucket": request["bucket"], "key": request["key"]})

    # -- the moto patch -------------------------------------------------------------------------

    def install(self) -> None:
        if self._original is not None:
            return
        from moto.s3.responses import S3Response

        original = S3Response.get_object
        faults = self

        def get_object(response: Any) -> Any:
            call = response.headers.get(INVOCATION_ID_HEADER)
            if faults.fails(response.bucket_name, response.parse_key_name(), call):
                return 503, {"Content-Type": "application/xml"}, SLOW_DOWN
            return original(response)

        self._original = original
        setattr(S3Response, "get_object", get_object)  # noqa: B010 - a patch, undone on uninstall

    def uninstall(self) -> None:
        if self._original is None:
            return
        from moto.s3.responses import S3Response

        setattr(S3Response, "get_object", self._original)  # noqa: B010
        self._original = None


def _json_response(status: int, document: Any) -> ApiResponse:
    return ApiResponse(
        status=status, headers=[("Content-Type", "application/json")], body=json.dumps(document).encode()
    )
