"""Loading a function's handler from its asset directory and running it as Lambda's Python runtime would.

Emulated: the handler string ``module.function`` (dotted module paths map to sub-directories),
the cold start (module import, cached afterwards for warm starts), the function's environment
variables plus the runtime's own (``AWS_LAMBDA_FUNCTION_NAME``, ``LAMBDA_TASK_ROOT``, ...), and the
context object. Each handler module is imported under a unique module name, because every
function's entry point is usually called ``handler.py``; modules a handler imports from its own
asset directory are kept per function (swapped into ``sys.modules`` only while that function
runs), so two functions with a sibling ``schema.py`` each see their own.

Environment variables are per invocation, not per process: while the embedded cloud runs, ``os.environ``
is a :class:`ThreadEnvironment` (installed by :data:`ENVIRONMENT_PATCH`), where a thread running a handler
-- and every thread that handler starts -- reads its function's variables over the process's, so
handlers of different functions run at the same time, each seeing exactly its own. What a handler
prints to ``sys.stdout`` is captured per thread (:func:`captured_output`).

Not emulated: process isolation. Handlers share this interpreter: ``shared/`` and every library are
imported once for all functions (on AWS, once per execution environment); ``os.environb`` and the C-level
environment (``putenv``, what subprocesses inherit) stay the process's. A function with modules of its own
(siblings of its handler) changes ``sys.path`` and ``sys.modules`` while it runs, so it must run alone
(:meth:`HandlerLoader.needs_the_whole_process`). A handler that runs past its Timeout is not interrupted;
the runtime reports the invocation as timed out afterwards. ``import shared`` resolves to the repository's
``shared/`` (identical to the layer's content, whose Linux wheels cannot be imported here): the runtime
puts the project root on ``sys.path`` while it is installed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Final, TextIO

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


class _Deleted:
    """Marks a variable an invocation deleted from its environment (the process keeps its own)."""


_DELETED: Final = _Deleted()


class ThreadEnvironment(MutableMapping[str, str]):
    """``os.environ`` while the embedded cloud runs: each invocation's thread reads its own function's variables.

    A thread bound to a function's variables (:meth:`bound`, as the runtime does for each invocation, and the
    threads that invocation starts) sees them over the process's; writes and deletions stay in that binding.
    Any other thread (the moto server, the pollers, the user's) reads and writes the process's environment
    (``putenv`` included). Two functions running at once therefore each see exactly their own variables.
    """

    def __init__(self, process: MutableMapping[str, str]) -> None:
        self.process = process
        self._local = threading.local()

    def binding(self) -> dict[str, str | _Deleted] | None:
        """The calling thread's function variables, or None outside an invocation."""
        variables: dict[str, str | _Deleted] | None = getattr(self._local, "variables", None)
        return variables

    @contextmanager
    def bound(self, variables: dict[str, str | _Deleted]) -> Iterator[None]:
        """The calling thread sees ``variables`` over the process's environment inside the block."""
        previous = self.binding()
        self._local.variables = variables
        try:
            yield
        finally:
            self._local.variables = previous

    def __getitem__(self, name: str) -> str:
        variables = self.binding()
        if variables is not None and name in variables:
            value = variables[name]
            if isinstance(value, _Deleted):
                raise KeyError(name)
            return value
        return self.process[name]

    def __setitem__(self, name: str, value: str) -> None:
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError(f"str expected, not {type(name if not isinstance(name, str) else value).__name__}")
        variables = self.binding()
        if variables is None:
            self.process[name] = value
        else:
            variables[name] = value

    def __delitem__(self, name: str) -> None:
        variables = self.binding()
        if variables is None:
            del self.process[name]
            return
        if name not in self:
            raise KeyError(name)
        variables[name] = _DELETED

    def __iter__(self) -> Iterator[str]:
        variables = self.binding()
        if variables is None:
            yield from list(self.process)
            return
        bound = dict(variables)
        yield from (name for name, value in bound.items() if not isinstance(value, _Deleted))
        yield from (name for name in list(self.process) if name not in bound)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def copy(self) -> dict[str, str]:
        """What ``os.environ.copy()`` returns: a plain dict of what this thread sees."""
        return dict(self)

    def __repr__(self) -> str:
        return f"ThreadEnvironment({dict(self)!r})"


class _EnvironmentPatch:
    """Installs :class:`ThreadEnvironment` as ``os.environ`` and makes new threads inherit their starter's binding.

    Reference-counted: two embedded clouds in one process share one installation; the last uninstall puts the
    process's ``os.environ`` and ``threading.Thread.start`` back.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self.environment: ThreadEnvironment | None = None
        self._original_start: Callable[[threading.Thread], None] | None = None

    @property
    def installed(self) -> bool:
        return self.environment is not None

    def install(self) -> None:
        with self._lock:
            self._users += 1
            if self._users > 1:
                return
            environment = ThreadEnvironment(os.environ)
            original_start = threading.Thread.start

            def start(thread: threading.Thread) -> None:
                variables = environment.binding()
                if variables is not None:  # a thread a handler starts runs in its function's environment
                    run = thread.run

                    def run_bound() -> None:
                        with environment.bound(variables):
                            run()

                    setattr(thread, "run", run_bound)  # noqa: B010 - an instance attribute over the method
                original_start(thread)

            self.environment, self._original_start = environment, original_start
            os.environ = environment  # type: ignore[assignment]  # noqa: B003 - a view over it, not a replacement
            threading.Thread.start = start  # type: ignore[method-assign,assignment]

    def uninstall(self) -> None:
        with self._lock:
            if self._users == 0:
                return
            self._users -= 1
            if self._users or self.environment is None or self._original_start is None:
                return
            os.environ = self.environment.process  # type: ignore[assignment]  # noqa: B003 - the original object
            threading.Thread.start = self._original_start  # type: ignore[method-assign,assignment]
            self.environment, self._original_start = None, None


ENVIRONMENT_PATCH: Final = _EnvironmentPatch()
"""The process's one :class:`ThreadEnvironment` installation (see :class:`local.services.lambdas.LambdaRuntime`)."""


class _ThreadRoutedStdout(io.TextIOBase):
    """``sys.stdout`` while handlers run: writes through, and copies into the writing thread's capture, if any."""

    def __init__(self, target: TextIO) -> None:
        self.target = target

    def write(self, text: str) -> int:
        capture: io.StringIO | None = getattr(_OUTPUT.local, "capture", None)
        if capture is not None:
            capture.write(text)
        return self.target.write(text)

    def flush(self) -> None:
        self.target.flush()

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.target, "encoding", "utf-8")


class _OutputRouting:
    def __init__(self) -> None:
        self.local = threading.local()
        self.lock = threading.Lock()
        self.users = 0
        self.router: _ThreadRoutedStdout | None = None


_OUTPUT: Final = _OutputRouting()


@contextmanager
def captured_output() -> Iterator[io.StringIO]:
    """What the calling thread prints to ``sys.stdout`` inside the block (it still reaches the console).

    ``sys.stdout`` is routed while at least one invocation captures, then put back; concurrent invocations each
    capture only their own thread's lines (what another thread prints meanwhile is not theirs).
    """
    capture = io.StringIO()
    with _OUTPUT.lock:
        if _OUTPUT.users == 0:
            _OUTPUT.router = _ThreadRoutedStdout(sys.stdout)
            sys.stdout = _OUTPUT.router
        _OUTPUT.users += 1
    previous = getattr(_OUTPUT.local, "capture", None)
    _OUTPUT.local.capture = capture
    try:
        yield capture
    finally:
        _OUTPUT.local.capture = previous
        with _OUTPUT.lock:
            _OUTPUT.users -= 1
            if _OUTPUT.users == 0 and _OUTPUT.router is not None:
                if sys.stdout is _OUTPUT.router:
                    sys.stdout = _OUTPUT.router.target
                _OUTPUT.router = None


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


def _has_private_modules(spec: FunctionSpec, code_dir: Path) -> bool:
    """True when the asset directory holds importable code besides the handler module (and ``__init__.py``)."""
    module_path = spec.handler.rpartition(".")[0]
    if "." in module_path:
        return True  # a handler inside a package: the package is importable code of its own
    for entry in code_dir.iterdir():
        if entry.name in {"__init__.py", "__pycache__", f"{module_path}.py"}:
            continue
        if entry.is_dir() and any(entry.glob("*.py")):
            return True
        if entry.is_file() and entry.suffix in {".py", ".pyc", ".so", ".pyd"}:
            return True
    return False


@dataclass
class _LoadedFunction:
    handler: Handler
    private_modules: dict[str, ModuleType]


class HandlerLoader:
    """Imports handlers from asset directories once (cold start) and keeps them (warm starts)."""

    def __init__(self, *, project_root: Path) -> None:
        self.project_root = project_root.resolve()
        self._loaded: dict[str, _LoadedFunction] = {}
        self._private: dict[str, bool] = {}

    def is_warm(self, spec: FunctionSpec) -> bool:
        return spec.arn in self._loaded

    def forget(self, spec: FunctionSpec) -> None:
        """Drop what was loaded for ``spec`` (its handler module and private modules): the next invocation is a
        cold start from the function's code directory as it then is (new code after ``UpdateFunctionCode``)."""
        self._loaded.pop(spec.arn, None)
        self._private.pop(spec.arn, None)

    def needs_the_whole_process(self, spec: FunctionSpec) -> bool:
        """True when ``spec``'s asset directory has modules besides its handler (see :meth:`scope`)."""
        if spec.code_dir is None:
            return False
        if spec.arn not in self._private:
            code_dir = spec.code_dir.resolve()
            self._private[spec.arn] = code_dir.is_dir() and _has_private_modules(spec, code_dir)
        return self._private[spec.arn]

    @contextmanager
    def scope(self, spec: FunctionSpec, environment: Mapping[str, str]) -> Iterator[Handler]:
        """Bind the calling thread to the function's environment; yield its handler (importing it if cold).

        Needs :data:`ENVIRONMENT_PATCH` installed (``os.environ`` is then per thread) and the project root on
        ``sys.path``. A function whose asset directory holds only its handler module touches nothing else
        process-global: its module has a unique name. One with modules of its own (a sibling ``settings.py``)
        has them swapped into ``sys.modules`` and its directory onto ``sys.path`` while it runs: the caller
        must then hold the process alone (:meth:`needs_the_whole_process`).
        """
        if spec.code_dir is None:
            raise LambdaCodeError(f"{spec.name} has no local code (no aws:asset:path or inline ZipFile)")
        overlay = ENVIRONMENT_PATCH.environment
        if overlay is None:
            raise LambdaCodeError("the per-invocation environment is not installed (LambdaRuntime.install)")
        code_dir = spec.code_dir.resolve()
        private = self.needs_the_whole_process(spec)
        with overlay.bound(dict(environment)):
            if not private:
                loaded = self._loaded.get(spec.arn)
                if loaded is None:
                    loaded = _LoadedFunction(handler=self._import(spec, code_dir), private_modules={})
                    self._loaded[spec.arn] = loaded
                yield loaded.handler
                return
            with _import_path(code_dir):
                yield from self._private_scope(spec, code_dir)

    def _private_scope(self, spec: FunctionSpec, code_dir: Path) -> Iterator[Handler]:
        loaded = self._loaded.get(spec.arn)
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
        # One module name per function *and* code directory: new code (UpdateFunctionCode) is a module of its own.
        code_version = hashlib.sha256(str(code_dir).encode()).hexdigest()[:12]
        unique = "sluice_local_fn_" + re.sub(r"\W", "_", f"{spec.name}_{code_version}_{module_path}")
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
