"""The in-process Lambda runtime behind the embedded cloud.

moto runs Lambda code only in Docker. This module replaces moto's choke points so that handlers run
in this process instead:

* ``moto.awslambda.models.LambdaFunction.invoke`` -- every ``Invoke`` API call (boto3, the CLI,
  Step Functions ``lambda:invoke`` tasks, SQS/SNS/DynamoDB-stream deliveries that moto makes).
  ``RequestResponse`` runs the handler synchronously and returns its JSON result, or Lambda's error
  payload with ``X-Amz-Function-Error: Unhandled``; ``Event`` queues the event and returns at once
  (HTTP 202); ``DryRun`` returns nothing.
* ``moto.s3.notifications._invoke_awslambda`` and ``moto.events.notifications._invoke_lambda`` --
  S3 notifications and EventBridge rule targets, which are asynchronous invocations on AWS, are
  queued rather than run inside the ``PutObject`` / ``PutEvents`` request.
* ``moto.s3.notifications._get_s3_event`` -- moto's S3 event lacks what real S3 sends; this adds
  ``versionId`` (versioned buckets), a ``sequencer`` that increases per event, ``userIdentity``,
  ``requestParameters`` and ``responseElements``.

Asynchronous semantics (one worker thread): each queued event is tried, and retried up to the
function's ``AWS::Lambda::EventInvokeConfig`` ``MaximumRetryAttempts`` (default 2) with a short
local backoff (``retry_backoff_s`` x attempt, instead of AWS's one and two minutes); an event older
than ``MaximumEventAgeInSeconds`` is dropped. On final failure the destination record goes to the
``OnFailure`` destination (SQS, SNS, Lambda or EventBridge) and the raw event to the function's
``DeadLetterConfig`` target (SQS or SNS) -- to both when both are configured. ``OnSuccess``
destinations receive the success record. :meth:`LambdaRuntime.wait_until_idle` tells when nothing
is queued, retrying or running.

Differences from AWS, on purpose or by necessity:

* Functions run concurrently, as on AWS, but each function has one execution environment (as with a
  reserved concurrency of 1): its invocations run one at a time, in the order they get its lock. Another
  function's handler, a synchronous invoke from one handler of another function included, runs at once
  beside it (each sees its own environment variables, see :mod:`local.services.lambda_code`). An invocation
  that waits for its function's environment longer than ``lock_timeout_s`` (a handler synchronously invoking
  its own function, say) gets a ``TooManyRequestsException`` error payload, as a throttled one does on AWS.
* A function whose asset directory holds modules besides its handler swaps them into ``sys.modules`` while it
  runs, so it runs alone: it waits for every running handler, and no other starts meanwhile.
* A handler running past its Timeout is not stopped; the invocation is reported as timed out
  (``Sandbox.Timedout``) after it returns.
* No log capture: handler output goes to this process's stdout/stderr and ``LogType=Tail`` returns
  no ``X-Amz-Log-Result``; nothing is written to CloudWatch Logs. What a handler prints to
  ``sys.stdout`` is also handed to :attr:`LambdaRuntime.output_sink` (EMF lines → CloudWatch metrics).
* ``UpdateFunctionCode`` with ``ZipFile`` bytes unpacks them into a new code directory (one per code
  sha256, under ``code_root``); the next invocation is a cold start from it: the handler module is imported
  afresh under a name of its own and the old code's private modules are dropped, so nothing of the old code
  runs again (``shared/`` and libraries stay imported, as the layer does on AWS). ``S3Bucket``/``S3Key`` and
  image updates are recorded by moto only. ``UpdateFunctionConfiguration`` applies ``Environment``,
  ``Timeout``, ``MemorySize`` and ``Handler`` to the next invocation. ``GetFunction``'s ``Code.Location`` is a
  ``file://`` URL of a zip of the function's current code (AWS answers a presigned HTTPS URL; both read with
  ``urllib.request.urlopen``).
* Functions created through the API (not from the template) have no local code: invoking one
  returns a ``Runtime.ImportModuleError`` payload. Versions and aliases are not distinguished.
* SQS event source mappings are polled by :mod:`local.services.event_sources` (moto's own delivery on
  ``SendMessage`` does not apply because mappings are only recorded by the deployer).
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import io
import itertools
import json
import logging
import sys
import tempfile
import threading
import time
import traceback
import uuid
import zipfile
from collections import deque
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from local.exceptions import LambdaCodeError, LocalCloudError
from local.services.lambda_code import (
    ENVIRONMENT_PATCH,
    FunctionSpec,
    HandlerLoader,
    captured_output,
    make_context,
    runtime_environment,
)

logger = logging.getLogger(__name__)

DEFAULT_MAXIMUM_RETRY_ATTEMPTS: Final = 2
DEFAULT_MAXIMUM_EVENT_AGE_S: Final = 21600


@dataclass(frozen=True, kw_only=True)
class InvokeConfig:
    """A function's asynchronous invocation settings (``AWS::Lambda::EventInvokeConfig``)."""

    maximum_retry_attempts: int = DEFAULT_MAXIMUM_RETRY_ATTEMPTS
    maximum_event_age_s: int = DEFAULT_MAXIMUM_EVENT_AGE_S
    on_failure: str | None = None
    on_success: str | None = None


@dataclass(frozen=True, kw_only=True)
class InvocationResult:
    """What one run of a handler returned."""

    request_id: str
    payload: bytes
    """The JSON result, or Lambda's error payload when ``function_error``."""
    function_error: bool
    duration_ms: float

    @property
    def error(self) -> dict[str, Any] | None:
        return json.loads(self.payload) if self.function_error else None


@dataclass(frozen=True, kw_only=True)
class InvocationRecord:
    """One line of the invocation log (:attr:`LambdaRuntime.invocations`)."""

    function_name: str
    request_id: str
    invocation_type: str
    attempt: int
    duration_ms: float
    outcome: str
    """``ok`` or the error type."""


@dataclass(order=True)
class _QueuedEvent:
    due: float
    sequence: int
    function_name: str = field(compare=False)
    event: Any = field(compare=False)
    request_id: str = field(compare=False)
    enqueued_at: float = field(compare=False)
    attempts: int = field(default=0, compare=False)


class _ProcessGate:
    """Handlers share the process; a function with modules of its own (see :mod:`local.services.lambda_code`)
    needs it alone. Many holders in shared mode, or one in exclusive mode."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._shared = 0
        self._exclusive = False

    def acquire(self, *, exclusive: bool, timeout: float) -> bool:
        with self._changed:
            if exclusive:
                free = self._changed.wait_for(lambda: not self._exclusive and self._shared == 0, timeout=timeout)
                self._exclusive = self._exclusive or free
                return free
            if not self._changed.wait_for(lambda: not self._exclusive, timeout=timeout):
                return False
            self._shared += 1
            return True

    def release(self, *, exclusive: bool) -> None:
        with self._changed:
            if exclusive:
                self._exclusive = False
            else:
                self._shared -= 1
            self._changed.notify_all()


def _header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if str(k).lower() == name.lower()), None)
    return None if value is None else str(value)


def _is_zip(package: Any) -> bool:
    """``ZipFile`` as moto holds it: base64 text (from the REST API) or bytes."""
    try:
        data = base64.b64decode(package, validate=True) if isinstance(package, str) else bytes(package)
    except (ValueError, TypeError):
        return False
    return zipfile.is_zipfile(io.BytesIO(data))


def _function_name(name_or_arn: str) -> str:
    """``my-fn``, ``arn:aws:lambda:r:a:function:my-fn[:qualifier]`` or ``a:function:my-fn`` → ``my-fn``."""
    parts = name_or_arn.split(":")
    if "function" in parts:
        return parts[parts.index("function") + 1]
    return name_or_arn


class LambdaRuntime:
    """Registry of template functions plus the synchronous and asynchronous invocation paths."""

    def __init__(
        self,
        *,
        endpoint_url: str,
        region: str,
        project_root: Path,
        retry_backoff_s: float = 0.2,
        lock_timeout_s: float = 60.0,
        code_root: Path | None = None,
    ) -> None:
        """``code_root``: where updated code is unpacked (``UpdateFunctionCode``); a temporary folder if none."""
        self.endpoint_url = endpoint_url
        self._code_root = code_root
        self.region = region
        self.retry_backoff_s = retry_backoff_s
        self.lock_timeout_s = lock_timeout_s
        self.invocations: deque[InvocationRecord] = deque(maxlen=10_000)
        self._loader = HandlerLoader(project_root=project_root)
        self._functions: dict[str, FunctionSpec] = {}
        self._invoke_configs: dict[str, InvokeConfig] = {}
        # One execution environment per function: its invocations run one at a time, other functions' beside.
        self._environments: dict[str, threading.Lock] = {}
        self._environments_lock = threading.Lock()
        self._gate = _ProcessGate()
        self._added_to_path: str | None = None
        self._queue: list[_QueuedEvent] = []
        self._queue_changed = threading.Condition()
        self._outstanding = 0
        self._sequence = itertools.count()
        self._worker: threading.Thread | None = None
        self._running = False
        self._patches: list[tuple[Any, str, Any]] = []
        self._sequencer_lock = threading.Lock()
        self._last_sequencer = 0
        self._session: Any = None
        self.output_sink: Callable[[str], None] | None = None
        """Receives what each handler printed to ``sys.stdout`` (after it returns, outside the lock):
        the embedded cloud turns the EMF lines in it into CloudWatch metrics (:mod:`local.services.emf`)."""

    # -- registry -------------------------------------------------------------------------------

    def register(self, spec: FunctionSpec) -> None:
        self._functions[spec.name] = spec

    def put_invoke_config(self, function_name_or_arn: str, config: InvokeConfig) -> None:
        self._invoke_configs[_function_name(function_name_or_arn)] = config

    def function(self, function_name_or_arn: str) -> FunctionSpec:
        name = _function_name(function_name_or_arn)
        try:
            return self._functions[name]
        except KeyError:
            raise LambdaCodeError(f"function {name!r} was not deployed from the template") from None

    def invoke_config(self, function_name_or_arn: str) -> InvokeConfig:
        return self._invoke_configs.get(_function_name(function_name_or_arn), InvokeConfig())

    # -- code and configuration updates ---------------------------------------------------------

    def update_code(self, function_name_or_arn: str, zip_bytes: bytes) -> Path:
        """Unpack a deployment package into a new code directory; the next invocation loads its handler from it.

        Raises :class:`LambdaCodeError` when the function has no local code or the bytes are not a zip.
        """
        spec = self.function(function_name_or_arn)
        digest = hashlib.sha256(zip_bytes).hexdigest()
        directory = self._code_directory(spec.name, digest)
        if not directory.is_dir():
            staging = directory.with_name(f"{directory.name}.partial-{uuid.uuid4().hex[:8]}")
            try:
                with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
                    archive.extractall(staging)
            except (zipfile.BadZipFile, OSError, ValueError) as exc:
                raise LambdaCodeError(f"{spec.name}: the new code is not a readable zip ({exc})") from exc
            staging.rename(directory)
        self._replace(spec, code_dir=directory)
        return directory

    def update_configuration(self, function_name_or_arn: str, updates: Mapping[str, Any]) -> FunctionSpec:
        """Apply ``UpdateFunctionConfiguration``'s ``Environment``, ``Timeout``, ``MemorySize`` and ``Handler``."""
        spec = self.function(function_name_or_arn)
        changes: dict[str, Any] = {}
        if "Environment" in updates:
            variables = (updates["Environment"] or {}).get("Variables") or {}
            changes["environment"] = {str(k): str(v) for k, v in variables.items()}
        if "Timeout" in updates:
            changes["timeout_s"] = int(updates["Timeout"])
        if "MemorySize" in updates:
            changes["memory_mb"] = int(updates["MemorySize"])
        if "Handler" in updates:
            changes["handler"] = str(updates["Handler"])
        return self._replace(spec, **changes) if changes else spec

    def code_archive(self, function_name_or_arn: str) -> Path:
        """A zip of the function's current code (what ``GetFunction``'s ``Code.Location`` names)."""
        spec = self.function(function_name_or_arn)
        if spec.code_dir is None or not spec.code_dir.is_dir():
            raise LambdaCodeError(f"{spec.name} has no local code")
        files = sorted(p for p in spec.code_dir.resolve().rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in files:
                info = zipfile.ZipInfo(str(path.relative_to(spec.code_dir.resolve())), date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                archive.writestr(info, path.read_bytes())
        data = buffer.getvalue()
        target = self._code_directory(spec.name, "archives") / f"{hashlib.sha256(data).hexdigest()}.zip"
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.is_file():
            target.write_bytes(data)
        return target

    def _code_directory(self, function_name: str, leaf: str) -> Path:
        if self._code_root is None:
            self._code_root = Path(tempfile.mkdtemp(prefix="sluice-lambda-code-"))
        folder = self._code_root / function_name
        folder.mkdir(parents=True, exist_ok=True)
        return folder / leaf

    def _replace(self, spec: FunctionSpec, **changes: Any) -> FunctionSpec:
        # Under the function's environment lock: a running invocation finishes on the code it started with.
        with self._environment_lock(spec.name):
            updated = replace(spec, **changes)
            self._functions[spec.name] = updated
            self._loader.forget(spec)
        return updated

    # -- synchronous path -----------------------------------------------------------------------

    def invoke(
        self, function_name_or_arn: str, event: Any, *, invocation_type: str = "RequestResponse"
    ) -> InvocationResult:
        """Run the handler now (waiting for its function's environment) and return its result or error payload."""
        request_id = str(uuid.uuid4())
        try:
            spec = self.function(function_name_or_arn)
        except LambdaCodeError as exc:
            return self._failed(request_id, "Runtime.ImportModuleError", str(exc))
        return self._execute(spec, event, request_id=request_id, invocation_type=invocation_type, attempt=1)

    def _execute(
        self, spec: FunctionSpec, event: Any, *, request_id: str, invocation_type: str, attempt: int
    ) -> InvocationResult:
        deadline = time.monotonic() + self.lock_timeout_s
        environment = self._environment_lock(spec.name)
        if not environment.acquire(timeout=self.lock_timeout_s):
            return self._failed(
                request_id,
                "TooManyRequestsException",
                f"Rate Exceeded: the local runtime runs one invocation of {spec.name} at a time and its execution "
                f"environment stayed busy for {self.lock_timeout_s}s (a handler synchronously invoking its own "
                "function waits for itself)",
            )
        output: list[str] = []
        try:
            exclusive = self._loader.needs_the_whole_process(spec)
            if not self._gate.acquire(exclusive=exclusive, timeout=max(0.0, deadline - time.monotonic())):
                return self._failed(
                    request_id,
                    "TooManyRequestsException",
                    f"Rate Exceeded: {spec.name} has modules of its own and runs alone in the local runtime; other "
                    f"handlers kept running for {self.lock_timeout_s}s",
                )
            try:
                result = self._run_locked(spec, event, request_id, output)
            finally:
                self._gate.release(exclusive=exclusive)
        finally:
            environment.release()
        if self.output_sink is not None and output and output[0]:
            try:
                self.output_sink(output[0])
            except Exception:  # metrics are best effort, as EMF extraction is on AWS
                logger.exception("handler output of %s not processed", spec.name)
        outcome = (result.error or {}).get("errorType", "error") if result.function_error else "ok"
        self.invocations.append(
            InvocationRecord(
                function_name=spec.name,
                request_id=request_id,
                invocation_type=invocation_type,
                attempt=attempt,
                duration_ms=result.duration_ms,
                outcome=outcome,
            )
        )
        logger.info(
            "λ %s %s attempt %d: %s in %.1f ms (%s)",
            spec.name,
            invocation_type,
            attempt,
            outcome,
            result.duration_ms,
            request_id,
        )
        return result

    def _environment_lock(self, function_name: str) -> threading.Lock:
        with self._environments_lock:
            return self._environments.setdefault(function_name, threading.Lock())

    def _run_locked(self, spec: FunctionSpec, event: Any, request_id: str, output: list[str]) -> InvocationResult:
        context = make_context(spec, request_id)
        environment = runtime_environment(
            spec, endpoint_url=self.endpoint_url, region=self.region, log_stream_name=context.log_stream_name
        )
        started = time.perf_counter()

        def failed(error_type: str, message: str, trace: list[str] | None = None) -> InvocationResult:
            return self._failed(request_id, error_type, message, trace, started=started)

        with ExitStack() as stack:
            try:
                handler = stack.enter_context(self._loader.scope(spec, environment))
            except Exception as exc:  # noqa: BLE001 - the runtime boundary reports any import failure, as Lambda does
                module = spec.handler.rpartition(".")[0]
                return failed("Runtime.ImportModuleError", f"Unable to import module '{module}': {exc}")
            capture = stack.enter_context(captured_output()) if self.output_sink is not None else None
            try:
                value = handler(event, context)
            except Exception as exc:  # noqa: BLE001 - an unhandled handler error becomes Lambda's error payload
                frames = traceback.extract_tb(exc.__traceback__)[1:]
                return failed(type(exc).__name__, str(exc), traceback.format_list(frames))
            finally:
                if capture is not None:
                    output.append(capture.getvalue())
        elapsed = time.perf_counter() - started
        if elapsed > spec.timeout_s:
            message = f"RequestId: {request_id} Error: Task timed out after {spec.timeout_s:.2f} seconds"
            return failed("Sandbox.Timedout", message)
        try:
            payload = json.dumps(value).encode()
        except (TypeError, ValueError) as exc:
            return failed("Runtime.MarshalError", f"Unable to marshal response: {exc}")
        return InvocationResult(
            request_id=request_id, payload=payload, function_error=False, duration_ms=elapsed * 1000
        )

    @staticmethod
    def _failed(
        request_id: str,
        error_type: str,
        message: str,
        trace: list[str] | None = None,
        *,
        started: float | None = None,
    ) -> InvocationResult:
        payload = {"errorMessage": message, "errorType": error_type, "requestId": request_id, "stackTrace": trace or []}
        duration = 0.0 if started is None else (time.perf_counter() - started) * 1000
        return InvocationResult(
            request_id=request_id, payload=json.dumps(payload).encode(), function_error=True, duration_ms=duration
        )

    # -- asynchronous path ----------------------------------------------------------------------

    def invoke_async(self, function_name_or_arn: str, event: Any) -> str:
        """Queue an ``Event`` invocation; returns its request id. Raises if the function is unknown."""
        spec = self.function(function_name_or_arn)
        request_id = str(uuid.uuid4())
        now = time.monotonic()
        with self._queue_changed:
            self._outstanding += 1
            heapq.heappush(
                self._queue,
                _QueuedEvent(now, next(self._sequence), spec.name, event, request_id, enqueued_at=now),
            )
            self._queue_changed.notify_all()
        return request_id

    @property
    def pending(self) -> int:
        """Events queued, waiting for a retry or running."""
        with self._queue_changed:
            return self._outstanding

    def wait_until_idle(self, timeout: float | None = None) -> bool:
        """Block until no asynchronous event is queued, retrying or running; False if ``timeout`` passed."""
        with self._queue_changed:
            return self._queue_changed.wait_for(lambda: self._outstanding == 0, timeout=timeout)

    def start(self) -> None:
        """Start the worker thread that runs queued events."""
        if self._worker is not None:
            return
        self._running = True
        self._worker = threading.Thread(target=self._work, name="local-lambda-async", daemon=True)
        self._worker.start()

    def stop(self, *, drain_timeout_s: float = 5.0) -> None:
        """Let queued events finish (up to ``drain_timeout_s``), then stop the worker; leftovers are dropped."""
        if self._worker is None:
            return
        if not self.wait_until_idle(drain_timeout_s):
            logger.warning("stopping with %d asynchronous events undelivered", self.pending)
        with self._queue_changed:
            self._running = False
            self._queue_changed.notify_all()
        self._worker.join(timeout=self.lock_timeout_s)
        self._worker = None

    def _next_due(self) -> _QueuedEvent | None:
        with self._queue_changed:
            while self._running:
                now = time.monotonic()
                if self._queue and self._queue[0].due <= now:
                    return heapq.heappop(self._queue)
                wait = (self._queue[0].due - now) if self._queue else None
                self._queue_changed.wait(timeout=wait)
            return None

    def _work(self) -> None:
        while (item := self._next_due()) is not None:
            try:
                finished = self._attempt(item)
            except Exception:  # the worker must outlive a bad event
                logger.exception("asynchronous invocation of %s failed inside the local runtime", item.function_name)
                finished = True
            with self._queue_changed:
                if finished:
                    self._outstanding -= 1
                else:
                    heapq.heappush(self._queue, item)
                self._queue_changed.notify_all()

    def _attempt(self, item: _QueuedEvent) -> bool:
        """Run one attempt; True when the event is done with (success or final failure)."""
        spec = self._functions[item.function_name]
        config = self.invoke_config(spec.name)
        if time.monotonic() - item.enqueued_at > config.maximum_event_age_s:
            self._deliver_outcome(spec, config, item, None, condition="EventAgeExceeded")
            return True
        item.attempts += 1
        result = self._execute(
            spec, item.event, request_id=item.request_id, invocation_type="Event", attempt=item.attempts
        )
        if not result.function_error:
            self._deliver_outcome(spec, config, item, result, condition="Success")
            return True
        if item.attempts <= config.maximum_retry_attempts:
            item.due = time.monotonic() + self.retry_backoff_s * item.attempts
            return False
        self._deliver_outcome(spec, config, item, result, condition="RetriesExhausted")
        return True

    # -- destinations ---------------------------------------------------------------------------

    def _deliver_outcome(
        self,
        spec: FunctionSpec,
        config: InvokeConfig,
        item: _QueuedEvent,
        result: InvocationResult | None,
        *,
        condition: str,
    ) -> None:
        success = condition == "Success"
        destination = config.on_success if success else config.on_failure
        response_payload = json.loads(result.payload) if result is not None and result.payload else None
        record = {
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "requestContext": {
                "requestId": item.request_id,
                "functionArn": f"{spec.arn}:$LATEST",
                "condition": condition,
                "approximateInvokeCount": item.attempts,
            },
            "requestPayload": item.event,
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                **({} if success else {"functionError": "Unhandled"}),
            },
            "responsePayload": response_payload,
        }
        if destination:
            self._send(destination, record, detail_type="Success" if success else "Failure")
        if not success:
            if spec.dead_letter_arn:
                error = (result.error if result else None) or {}
                self._send_dead_letter(spec.dead_letter_arn, item, error)
            if not destination and not spec.dead_letter_arn:
                logger.warning(
                    "λ %s dropped event %s (%s): no destination or DLQ", spec.name, item.request_id, condition
                )

    def _client(self, service: str) -> Any:
        if self._session is None:
            import boto3

            self._session = boto3.session.Session(
                aws_access_key_id="testing",
                aws_secret_access_key="testing",  # noqa: S106 - moto's dummy credentials
                region_name=self.region,
            )
        return self._session.client(service, endpoint_url=self.endpoint_url)

    def _send(self, target_arn: str, record: Mapping[str, Any], *, detail_type: str) -> None:
        service = target_arn.split(":")[2]
        body = json.dumps(record)
        senders: dict[str, Callable[[], Any]] = {
            "sqs": lambda: self._client("sqs").send_message(QueueUrl=self._queue_url(target_arn), MessageBody=body),
            "sns": lambda: self._client("sns").publish(TopicArn=target_arn, Message=body),
            "lambda": lambda: self.invoke_async(target_arn, record),
            "events": lambda: self._client("events").put_events(
                Entries=[
                    {
                        "Source": "lambda",
                        "DetailType": f"Lambda Function Invocation Result - {detail_type}",
                        "Detail": body,
                        "EventBusName": target_arn,
                    }
                ]
            ),
        }
        self._attempt_delivery(target_arn, senders.get(service))

    def _send_dead_letter(self, target_arn: str, item: _QueuedEvent, error: Mapping[str, Any]) -> None:
        attributes = {
            "RequestID": {"DataType": "String", "StringValue": item.request_id},
            "ErrorCode": {"DataType": "Number", "StringValue": "200"},
            "ErrorMessage": {"DataType": "String", "StringValue": str(error.get("errorMessage", ""))[:1024] or "-"},
        }
        body = json.dumps(item.event)
        senders: dict[str, Callable[[], Any]] = {
            "sqs": lambda: self._client("sqs").send_message(
                QueueUrl=self._queue_url(target_arn), MessageBody=body, MessageAttributes=attributes
            ),
            "sns": lambda: self._client("sns").publish(TopicArn=target_arn, Message=body, MessageAttributes=attributes),
        }
        self._attempt_delivery(target_arn, senders.get(target_arn.split(":")[2]))

    @staticmethod
    def _attempt_delivery(target_arn: str, send: Callable[[], Any] | None) -> None:
        if send is None:
            logger.warning("destination %s is not a supported target type locally", target_arn)
            return
        try:
            send()
        except Exception:  # delivery is best effort, as on AWS; say why
            logger.exception("delivery to %s failed", target_arn)

    def _queue_url(self, queue_arn: str) -> str:
        *_, account, name = queue_arn.split(":")
        response = self._client("sqs").get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)
        return str(response["QueueUrl"])

    # -- moto's choke points --------------------------------------------------------------------

    def install(self) -> None:
        """Replace moto's Lambda invoke, S3/EventBridge async delivery and S3 event shape, make ``os.environ``
        per invocation and put the project root on ``sys.path`` (undo: :meth:`uninstall`)."""
        if self._patches:
            return
        ENVIRONMENT_PATCH.install()
        root = str(self._loader.project_root)
        if root not in sys.path:
            sys.path.insert(0, root)
            self._added_to_path = root
        from moto.awslambda import exceptions as lambda_exceptions
        from moto.awslambda import models as lambda_models
        from moto.events import notifications as events_notifications
        from moto.s3 import notifications as s3_notifications

        runtime = self
        original_s3_event = s3_notifications._get_s3_event

        def invoke(function: Any, body: Any, request_headers: Any, response_headers: Any) -> bytes:
            return runtime._serve_invoke(function.function_name, body, request_headers, response_headers)

        def s3_invoke(_account_id: str, event_body: Any, fn_arn: str, _region_name: str) -> None:
            runtime._queue_from_service("S3", fn_arn, event_body)

        def events_invoke(_account_id: str, fn_arn: str, event: Any) -> None:
            runtime._queue_from_service("EventBridge", fn_arn, event)

        def s3_event(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
            event: dict[str, Any] = original_s3_event(event_name, bucket, key, notification_id)
            runtime._enrich_s3_event(event, bucket, key)
            return event

        original_update_code = lambda_models.LambdaFunction.update_function_code
        original_update_configuration = lambda_models.LambdaFunction.update_configuration
        original_get_code = lambda_models.LambdaFunction.get_code

        def update_function_code(function: Any, updated_spec: dict[str, Any]) -> dict[str, Any]:
            if "ZipFile" in updated_spec and not _is_zip(updated_spec["ZipFile"]):
                raise lambda_exceptions.InvalidParameterValueException("Could not unzip uploaded file.")
            answer: dict[str, Any] = original_update_code(function, updated_spec)
            if (
                "ZipFile" in updated_spec
                and not updated_spec.get("DryRun")
                and function.function_name in runtime._functions
            ):
                runtime.update_code(function.function_name, function.code_bytes)
            return answer

        def update_configuration(function: Any, config_updates: dict[str, Any]) -> dict[str, Any]:
            answer: dict[str, Any] = original_update_configuration(function, config_updates)
            if function.function_name in runtime._functions:
                runtime.update_configuration(function.function_name, config_updates)
            return answer

        def get_code(function: Any) -> dict[str, Any]:
            answer: dict[str, Any] = original_get_code(function)
            if function.function_name in runtime._functions:
                try:
                    location = runtime.code_archive(function.function_name).as_uri()
                except LambdaCodeError:
                    return answer
                answer["Code"] = {"RepositoryType": "S3", "Location": location}
            return answer

        for owner, name, replacement in (
            (lambda_models.LambdaFunction, "invoke", invoke),
            (s3_notifications, "_invoke_awslambda", s3_invoke),
            (s3_notifications, "_get_s3_event", s3_event),
            (events_notifications, "_invoke_lambda", events_invoke),
            (lambda_models.LambdaFunction, "update_function_code", update_function_code),
            (lambda_models.LambdaFunction, "update_configuration", update_configuration),
            (lambda_models.LambdaFunction, "get_code", get_code),
        ):
            self._patches.append((owner, name, getattr(owner, name)))
            setattr(owner, name, replacement)

    def uninstall(self) -> None:
        if not self._patches:
            return
        while self._patches:
            owner, name, original = self._patches.pop()
            setattr(owner, name, original)
        if self._added_to_path is not None:
            if self._added_to_path in sys.path:
                sys.path.remove(self._added_to_path)
            self._added_to_path = None
        ENVIRONMENT_PATCH.uninstall()

    def _serve_invoke(self, function_name: str, body: Any, request_headers: Any, response_headers: Any) -> bytes:
        if isinstance(body, bytes):
            body = body.decode()
        event = json.loads(body) if body else {}
        invocation_type = _header(request_headers, "x-amz-invocation-type") or "RequestResponse"
        response_headers["x-amz-executed-version"] = "$LATEST"
        if invocation_type == "DryRun":
            return b""
        if invocation_type == "Event":
            try:
                self.invoke_async(function_name, event)
            except LocalCloudError as exc:
                logger.warning("Event invoke of %s not queued: %s", function_name, exc)
            return b""
        result = self.invoke(function_name, event)
        if result.function_error:
            response_headers["x-amz-function-error"] = "Unhandled"
        return result.payload

    def _queue_from_service(self, source: str, function_arn: str, event: Any) -> None:
        try:
            self.invoke_async(function_arn, event)
        except LocalCloudError as exc:
            logger.warning("%s event for %s not delivered: %s", source, function_arn, exc)

    def _enrich_s3_event(self, event: dict[str, Any], bucket: Any, key: Any) -> None:
        with self._sequencer_lock:
            self._last_sequencer = max(self._last_sequencer + 1, time.time_ns())
            sequencer = f"{self._last_sequencer:018X}"
        for record in event.get("Records", []):
            s3_object = record["s3"]["object"]
            if getattr(bucket, "is_versioned", False) and getattr(key, "version_id", None):
                s3_object["versionId"] = key.version_id
            s3_object["sequencer"] = sequencer
            record.setdefault("userIdentity", {"principalId": "AWS:LOCAL"})
            record.setdefault("requestParameters", {"sourceIPAddress": "127.0.0.1"})
            record.setdefault(
                "responseElements",
                {"x-amz-request-id": uuid.uuid4().hex[:16].upper(), "x-amz-id-2": uuid.uuid4().hex},
            )
            record["s3"]["bucket"].setdefault("ownerIdentity", {"principalId": "LOCAL"})
