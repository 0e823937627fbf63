"""Loading a function's handler from its asset directory and running it as Lambda's Python runtime would.

Emulated: the handler string ``module.function`` (dotted module paths map to sub-directories),
the cold start (module import, cached afterwards for warm starts), the function's environment
variables plus the runtime's own (``AWS_LAMBDA_FUNCTION_NAME``, ``LAMBDA_TASK_ROOT``, ...), and the
context object. Each handler module is imported under a unique module name, because every
function's entry point is usually called ``handler.py``; modules a handler imports from its own
asset directory are kept per function (swapped into ``sys.modules`` only while that function
runs), so two functions with a sibling ``schema.py`` each see their own.

Not emulated: process isolation. Handlers share this interpreter, so ``os.environ`` and
``sys.path`` are process-global: :class:`HandlerScope` must only be entered while holding the
runtime's single execution lock (see :mod:`local.services.lambdas`). A handler that runs past its Timeout is
not interrupted; the runtime reports the invocation as timed out afterwards. ``import shared``
resolves to the repository's ``shared/`` (identical to the layer's content, whose Linux wheels
cannot be imported here), so the project root is put on ``sys.path``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from local.exceptions import LambdaCodeError
from shared.environment import TASK_ROOT_VARIABLE

Handler = Callable[[Any, Any], Any]


@dataclass(frozen=True, kw_only=True)
class FunctionSpec:
    """What the runtime needs to run one function, taken from its resolved template properties."""

    name: str
    arn: str
    handler: str
    code_dir: Path | None
    """The asset directory (``LAMBDA_TASK_ROOT``); ``None`` when the template carries no local code."""
    environment: Mapping[str, str] = field(default_factory=dict)
    timeout_s: int = 3
    memory_mb: int = 128
    dead_letter_arn: str | None = None
    log_group_name: str = ""

    @property
    def effective_log_group(self) -> str:
        return self.log_group_name or f"/aws/lambda/{self.name}"


@dataclass
class LambdaContext:
    """The context object a Python handler receives (the attributes powertools reads included)."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline: float
    """``time.monotonic()`` at which the function's Timeout runs out."""
    identity: Any = None
    client_context: Any = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def make_context(spec: FunctionSpec, request_id: str) -> LambdaContext:
    day = time.strftime("%Y/%m/%d", time.gmtime())
    return LambdaContext(
        function_name=spec.name,
        function_version="$LATEST",
        invoked_function_arn=spec.arn,
        memory_limit_in_mb=spec.memory_mb,
        aws_request_id=request_id,
        log_group_name=spec.effective_log_group,
        log_stream_name=f"{day}/[$LATEST]{uuid.uuid4().hex}",
        deadline=time.monotonic() + spec.timeout_s,
    )


def runtime_environment(spec: FunctionSpec, *, endpoint_url: str, region: str, log_stream_name: str) -> dict[str, str]:
    """The variables Lambda's runtime sets, pointed at the embedded cloud; the template's win on clashes."""
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",  # moto's dummy credentials
        "AWS_SESSION_TOKEN": "testing",
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": spec.effective_log_group,
        "AWS_LAMBDA_LOG_STREAM_NAME": log_stream_name,
        TASK_ROOT_VARIABLE: str(spec.code_dir or ""),
        "_HANDLER": spec.handler,
        "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon locally
        "AWS_XRAY_SDK_ENABLED": "false",
        "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
        **spec.environment,
    }


@contextmanager
def _environment(variables: Mapping[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def _import_path(*directories: Path) -> Iterator[None]:
    added = [str(directory) for directory in directories if str(directory) not in sys.path]
    sys.path[:0] = added
    try:
        yield
    finally:
        for entry in added:
            if entry in sys.path:
                sys.path.remove(entry)


def _is_under(module: ModuleType, directory: Path) -> bool:
    location = getattr(module, "__file__", None)
    return bool(location) and Path(str(location)).resolve().is_relative_to(directory)


@dataclass
class _LoadedFunction:
    handler: Handler
    private_modules: dict[str, ModuleType]


class HandlerLoader:
    """Imports handlers from asset directories once (cold start) and keeps them (warm starts)."""

    def __init__(self, *, project_root: Path) -> None:
        self.project_root = project_root.resolve()
        self._loaded: dict[str, _LoadedFunction] = {}

    def is_warm(self, spec: FunctionSpec) -> bool:
        return spec.arn in self._loaded

    @contextmanager
    def scope(self, spec: FunctionSpec, environment: Mapping[str, str]) -> Iterator[Handler]:
        """Enter the function's environment and import path; yield its handler (importing it if cold).

        Caller must hold the runtime's execution lock: this changes ``os.environ``, ``sys.path``
        and ``sys.modules``.
        """
        if spec.code_dir is None:
            raise LambdaCodeError(f"{spec.name} has no local code (no aws:asset:path or inline ZipFile)")
        code_dir = spec.code_dir.resolve()
        loaded = self._loaded.get(spec.arn)
        with _environment(environment), _import_path(code_dir, self.project_root):
            before = set(sys.modules)
            if loaded is not None:
                sys.modules.update(loaded.private_modules)
            try:
                if loaded is None:
                    loaded = _LoadedFunction(handler=self._import(spec, code_dir), private_modules={})
                    self._loaded[spec.arn] = loaded
                yield loaded.handler
            finally:
                # Modules imported from this asset dir (at cold start or lazily) stay private to it.
                for name in (set(sys.modules) - before) | set(loaded.private_modules if loaded else ()):
                    module = sys.modules.get(name)
                    if module is not None and _is_under(module, code_dir):
                        if loaded is not None:
                            loaded.private_modules[name] = module
                        del sys.modules[name]

    @staticmethod
    def _import(spec: FunctionSpec, code_dir: Path) -> Handler:
        module_path, _, function_name = spec.handler.rpartition(".")
        if not module_path or not function_name:
            raise LambdaCodeError(f"{spec.name}: handler {spec.handler!r} is not 'module.function'")
        relative = Path(*module_path.split("."))
        source = code_dir / relative.with_suffix(".py")
        if not source.is_file():
            source = code_dir / relative / "__init__.py"
        if not source.is_file():
            raise LambdaCodeError(f"{spec.name}: no module {module_path!r} in {code_dir}")
        unique = "sluice_local_fn_" + re.sub(r"\W", "_", f"{spec.name}_{module_path}")
        module_spec = importlib.util.spec_from_file_location(unique, source)
        if module_spec is None or module_spec.loader is None:
            raise LambdaCodeError(f"{spec.name}: cannot import {source}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[unique] = module
        try:
            module_spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[unique]
            raise
        handler = getattr(module, function_name, None)
        if not callable(handler):
            raise LambdaCodeError(f"{spec.name}: {module_path} has no callable {function_name!r}")
        return handler
