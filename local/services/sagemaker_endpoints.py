"""SageMaker real-time endpoints that actually serve, in-process, with the project's inference code.

moto's ``sagemaker-runtime`` ``InvokeEndpoint`` answers canned data. :class:`EndpointServer` replaces
``moto.sagemakerruntime.responses.SageMakerRuntimeResponse.invoke_endpoint`` (the server-mode
handler of ``POST /endpoints/<name>/invocations``) so that an invocation of any endpoint in moto's
SageMaker backend -- created from the template (:mod:`local.template.serving_resources`) or through the API at
run time (``CreateModel`` → ``CreateEndpointConfig`` → ``CreateEndpoint`` / ``UpdateEndpoint``, the latter
from :mod:`local.services.sagemaker_updates`) --
is served like the scikit-learn container would serve it:

* the endpoint's current config picks a production variant (``TargetVariant`` header, else at
  random by the variants' current weights); the variant's model's ``ModelDataUrl`` (a
  ``model.tar.gz`` in the embedded cloud's S3) is downloaded and extracted under
  ``<state_dir>/sagemaker/endpoints/`` (a model made from a registry package serves the package's
  inference container) and loaded with ``model_fn`` of ``training/inference.py``
  (imported from this repository), cached per (endpoint, model data URL);
* the request runs through ``input_fn`` → ``predict_fn`` → ``output_fn`` with its ``Content-Type``
  and ``Accept``; the response carries ``x-Amzn-Invoked-Production-Variant``;
* the container's ``Environment`` is in ``os.environ`` while ``model_fn`` runs; ``SLUICE_USECASE_FILE``
  is resolved against the model directory, then the project root, and defaults to a ``usecase.toml``
  packed in the model archive, else the embedded cloud's use-case file.

Errors: ``InvalidRequestError`` → HTTP 400 ``ValidationError``; any other failure (loading included)
→ HTTP 500 ``ModelError`` with ``OriginalStatusCode`` / ``OriginalMessage``; an unknown endpoint →
400 ``ValidationError``. On AWS a container's 4xx/5xx answer reaches the caller as HTTP 424
``ModelError`` with the container's status in ``OriginalStatusCode``; the local codes differ on purpose
so a caller can tell a refused request from a broken model by status alone (the score function treats
both as endpoint failures).

Fault injection (an embedded-cloud control; no such thing exists on AWS): ``POST /_sluice/faults`` on
the API front with ``{"endpoint": "<name>", "mode": "error" | "slow" | "ok", "delay_ms": N}`` makes
that endpoint answer 500 ``ModelError``, sleep ``delay_ms`` before serving, or recover;
``GET /_sluice/faults`` lists the active faults.

Not emulated: no container image, instances or autoscaling (the code runs in this process with this
project's packages; ``SAGEMAKER_SUBMIT_DIRECTORY`` code is not used); shadow variants, data capture,
deployment guardrails, multi-model and serverless endpoints, async invocations and response
streaming (moto's own answers remain); the 60-second invocation timeout; endpoint status is
``InService`` at creation, as moto records it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import tarfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlparse

from local.exceptions import LocalCloudError
from local.services.apigateway import ApiResponse
from shared.environment import USECASE_FILE_VARIABLE

logger = logging.getLogger(__name__)

FAULTS_PATH: Final = "/_sluice/faults"
FAULT_MODES: Final = frozenset({"error", "slow", "ok"})


class EndpointInvocationError(LocalCloudError):
    """An invocation cannot be served; ``status`` and ``code`` are what the caller receives."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True, kw_only=True)
class Fault:
    endpoint: str
    mode: str
    delay_ms: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "mode": self.mode, "delay_ms": self.delay_ms}


@dataclass(frozen=True, kw_only=True)
class Served:
    body: bytes
    content_type: str
    variant: str


@dataclass(frozen=True, kw_only=True)
class _Variant:
    name: str
    model_data_url: str
    environment: Mapping[str, str]


class EndpointServer:
    """Serves endpoint invocations in-process; :meth:`install` patches moto, :meth:`uninstall` undoes it."""

    def __init__(
        self,
        *,
        client: Callable[[str], Any],
        state_dir: Path,
        project_root: Path,
        usecase_file: Path | None = None,
        account_id: str = "123456789012",
        region: str = "us-east-1",
    ) -> None:
        self._client = client
        self.models_dir = state_dir / "sagemaker" / "endpoints"
        self._project_root = project_root
        self._usecase_file = usecase_file
        self._account_id = account_id
        self._region = region
        self._models: dict[tuple[str, str], Any] = {}
        self._load_lock = threading.Lock()
        self._env_lock = threading.Lock()
        self._faults: dict[str, Fault] = {}
        self._faults_lock = threading.Lock()
        self._original: Any = None
        self.invocations = 0

    # -- faults ---------------------------------------------------------------------------------

    def set_fault(self, endpoint: str, mode: str, delay_ms: int = 0) -> Fault:
        if mode not in FAULT_MODES:
            raise ValueError(f"mode must be one of {sorted(FAULT_MODES)}, not {mode!r}")
        fault = Fault(endpoint=endpoint, mode=mode, delay_ms=max(0, int(delay_ms)))
        with self._faults_lock:
            if mode == "ok":
                self._faults.pop(endpoint, None)
            else:
                self._faults[endpoint] = fault
        logger.info("fault on endpoint %s: %s", endpoint, fault.to_json())
        return fault

    @property
    def faults(self) -> list[Fault]:
        with self._faults_lock:
            return list(self._faults.values())

    def control(self, method: str, path: str, body: bytes) -> ApiResponse | None:
        """The ``/_sluice/faults`` control of the API front (:data:`local.services.apigateway.ControlRoute`)."""
        if path.rstrip("/") != FAULTS_PATH:
            return None
        if method == "GET":
            return _json_response(200, {"faults": [f.to_json() for f in self.faults]})
        if method != "POST":
            return _json_response(405, {"message": "GET or POST"})
        try:
            request = json.loads(body or b"{}")
            fault = self.set_fault(
                str(request["endpoint"]), str(request.get("mode", "")), int(request.get("delay_ms", 0))
            )
        except (ValueError, KeyError, TypeError) as exc:
            return _json_response(400, {"message": f"send {{'endpoint', 'mode', 'delay_ms'}}: {exc}"})
        return _json_response(200, fault.to_json())

    # -- serving --------------------------------------------------------------------------------

    def invoke(
        self, endpoint_name: str, body: bytes, content_type: str, accept: str, target_variant: str | None
    ) -> Served:
        """Serve one invocation; raises :class:`EndpointInvocationError`."""
        with self._faults_lock:
            fault = self._faults.get(endpoint_name)
        if fault is not None and fault.mode == "error":
            raise EndpointInvocationError(500, "ModelError", f"injected fault on endpoint {endpoint_name}")
        if fault is not None and fault.mode == "slow":
            time.sleep(fault.delay_ms / 1000)
        variant = self._variant(endpoint_name, target_variant)
        from training import inference

        model = self._model(endpoint_name, variant, inference.model_fn)
        try:
            records = inference.input_fn(body, content_type or inference.JSON)
            payload, answered_type = inference.output_fn(inference.predict_fn(records, model), accept or inference.JSON)
        except inference.InvalidRequestError as exc:
            raise EndpointInvocationError(400, "ValidationError", str(exc)) from exc
        except Exception as exc:  # the container answers 500 on any inference failure
            logger.exception("endpoint %s failed", endpoint_name)
            raise EndpointInvocationError(500, "ModelError", f"{type(exc).__name__}: {exc}") from exc
        self.invocations += 1
        return Served(
            body=payload.encode() if isinstance(payload, str) else payload,
            content_type=answered_type,
            variant=variant.name,
        )

    def warm(self, endpoint_name: str) -> None:
        """Load the models of the endpoint's production variants in the background (an updated endpoint's new
        variants answer warm, as SageMaker's do once the endpoint is InService)."""

        def load() -> None:
            from training import inference

            for name in self._variant_names(endpoint_name):
                try:
                    self._model(endpoint_name, self._variant(endpoint_name, name), inference.model_fn)
                except EndpointInvocationError:
                    logger.warning("endpoint %s: variant %s did not load ahead", endpoint_name, name, exc_info=True)

        threading.Thread(target=load, name=f"warm-{endpoint_name}", daemon=True).start()

    def _variant_names(self, endpoint_name: str) -> list[str]:
        from moto.sagemaker.models import sagemaker_backends

        backend = sagemaker_backends[self._account_id][self._region]
        endpoint = backend.endpoints.get(endpoint_name)
        if endpoint is None:
            return []
        return [
            str(v["VariantName"]) for v in backend.endpoint_configs[endpoint.endpoint_config_name].production_variants
        ]

    def _variant(self, endpoint_name: str, target_variant: str | None) -> _Variant:
        from moto.sagemaker.models import sagemaker_backends

        backend = sagemaker_backends[self._account_id][self._region]
        endpoint = backend.endpoints.get(endpoint_name)
        if endpoint is None:
            raise EndpointInvocationError(
                400, "ValidationError", f"Endpoint {endpoint_name} of account {self._account_id} not found."
            )
        config = backend.endpoint_configs[endpoint.endpoint_config_name]
        variants = list(config.production_variants)
        if target_variant:
            variants = [v for v in variants if v.get("VariantName") == target_variant]
            if not variants:
                raise EndpointInvocationError(400, "ValidationError", f"variant {target_variant} not found")
        current = {v["VariantName"]: v.get("CurrentWeight") for v in getattr(endpoint, "production_variants", [])}
        weights = [float(current.get(v["VariantName"]) or v.get("InitialVariantWeight") or 1.0) for v in variants]
        chosen = random.choices(variants, weights=weights)[0] if len(variants) > 1 else variants[0]  # noqa: S311
        model = backend._models.get(chosen["ModelName"])
        if model is None:
            raise EndpointInvocationError(500, "ModelError", f"model {chosen['ModelName']} not found")
        container = model.primary_container or (model.containers[0] if model.containers else {})
        if container.get("ModelPackageName") and not container.get("ModelDataUrl"):
            container = _package_container(backend, str(container["ModelPackageName"]), container)
        url = container.get("ModelDataUrl")
        if not url:
            raise EndpointInvocationError(500, "ModelError", f"model {chosen['ModelName']} has no ModelDataUrl")
        return _Variant(name=chosen["VariantName"], model_data_url=url, environment=container.get("Environment") or {})

    def _model(self, endpoint_name: str, variant: _Variant, model_fn: Callable[[str], Any]) -> Any:
        key = (endpoint_name, variant.model_data_url)
        with self._load_lock:
            if key in self._models:
                return self._models[key]
            try:
                model_dir = self._download(endpoint_name, variant.model_data_url)
                with self._environment(variant.environment, model_dir):
                    model = model_fn(str(model_dir))
            except EndpointInvocationError:
                raise
            except Exception as exc:  # a model that does not load is the container's 500
                logger.exception("endpoint %s: loading %s failed", endpoint_name, variant.model_data_url)
                raise EndpointInvocationError(
                    500, "ModelError", f"model load failed: {type(exc).__name__}: {exc}"
                ) from exc
            self._models[key] = model
            logger.info("endpoint %s loaded %s", endpoint_name, variant.model_data_url)
            return model

    def _download(self, endpoint_name: str, url: str) -> Path:
        parsed = urlparse(url)
        if parsed.scheme != "s3":
            raise EndpointInvocationError(500, "ModelError", f"ModelDataUrl must be s3://, not {url!r}")
        target = self.models_dir / endpoint_name / hashlib.sha256(url.encode()).hexdigest()[:16]
        target.mkdir(parents=True, exist_ok=True)
        archive = target.parent / f"{target.name}.tar.gz"
        self._client("s3").download_file(parsed.netloc, parsed.path.lstrip("/"), str(archive))
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")
        return target

    def _environment(self, environment: Mapping[str, str], model_dir: Path) -> _PatchedEnviron:
        values = {str(k): str(v) for k, v in environment.items()}
        configured = values.get(USECASE_FILE_VARIABLE)
        candidates = (
            [model_dir / configured, self._project_root / configured, Path(configured)]
            if configured
            else [model_dir / "usecase.toml", model_dir / "code" / "usecase.toml"]
        )
        found = next((c for c in candidates if c.is_file()), None)
        if found is None and self._usecase_file is not None:
            found = self._usecase_file
        if found is not None:
            values[USECASE_FILE_VARIABLE] = str(found)
        return _PatchedEnviron(values, self._env_lock)

    # -- moto's choke point ---------------------------------------------------------------------

    def install(self) -> None:
        if self._original is not None:
            return
        from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

        server = self

        def invoke_endpoint(response: Any) -> tuple[int, dict[str, str], bytes | str]:
            name = str(response._get_params().get("EndpointName") or response.path.split("/")[2])
            body = response.body if isinstance(response.body, bytes) else str(response.body or "").encode()
            headers = response.headers
            try:
                served = server.invoke(
                    name,
                    body,
                    headers.get("Content-Type") or "application/json",
                    headers.get("Accept") or "application/json",
                    headers.get("X-Amzn-SageMaker-Target-Variant"),
                )
            except EndpointInvocationError as exc:
                return _error(exc)
            return (
                200,
                {"Content-Type": served.content_type, "x-Amzn-Invoked-Production-Variant": served.variant},
                served.body,
            )

        self._original = SageMakerRuntimeResponse.invoke_endpoint
        SageMakerRuntimeResponse.invoke_endpoint = invoke_endpoint  # type: ignore[method-assign,assignment]

    def uninstall(self) -> None:
        if self._original is None:
            return
        from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

        SageMakerRuntimeResponse.invoke_endpoint = self._original  # type: ignore[method-assign]
        self._original = None


class _PatchedEnviron:
    """``os.environ`` plus ``values`` inside the block (serialized by ``lock``), restored exactly after."""

    def __init__(self, values: Mapping[str, str], lock: threading.Lock) -> None:
        self._values = values
        self._lock = lock
        self._saved: dict[str, str | None] = {}

    def __enter__(self) -> None:
        self._lock.acquire()
        self._saved = {k: os.environ.get(k) for k in self._values}
        os.environ.update(self._values)

    def __exit__(self, *_exc: object) -> None:
        try:
            for key, value in self._saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        finally:
            self._lock.release()


def _package_container(backend: Any, package: str, container: dict[str, Any]) -> dict[str, Any]:
    """A model built from a registry package (``Containers=[{"ModelPackageName": ...}]``, as a promotion builds
    it): the package's first inference container, with the model's own environment over the package's."""
    name = backend.model_package_name_mapping.get(package, package)
    found = backend.model_packages.get(name)
    if found is None:
        raise EndpointInvocationError(500, "ModelError", f"model package {package} not found")
    containers = (found.inference_specification or {}).get("Containers") or [{}]
    environment = {**(containers[0].get("Environment") or {}), **(container.get("Environment") or {})}
    return {**containers[0], "Environment": environment}


def _error(exc: EndpointInvocationError) -> tuple[int, dict[str, str], bytes]:
    body: dict[str, Any] = {"__type": exc.code, "message": str(exc)}
    if exc.code == "ModelError":
        body |= {"OriginalStatusCode": exc.status, "OriginalMessage": str(exc)}
    # moto takes the status from the "status" header (``BaseResponse._transform_response``)
    headers = {"Content-Type": "application/json", "x-amzn-ErrorType": exc.code, "status": str(exc.status)}
    return exc.status, headers, json.dumps(body).encode()


def _json_response(status: int, document: Any) -> ApiResponse:
    return ApiResponse(
        status=status, headers=[("Content-Type", "application/json")], body=json.dumps(document).encode()
    )
