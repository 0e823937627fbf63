"""Start the embedded cloud as its own process, the way a user runs `make local`.

The demo and the end-to-end tests use this so that they talk to the cloud only through its
endpoint URL and `.local/outputs.json`, exactly as they would talk to AWS after `cdk deploy`.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
logger = logging.getLogger(__name__)


class LaunchError(RuntimeError):
    """The embedded cloud did not come up."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningCloud:
    """A running `python -m local` process and what it published."""

    process: subprocess.Popen[bytes]
    endpoint_url: str
    outputs_file: Path
    log_file: Path
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def stack_outputs(self) -> dict[str, str]:
        """The outputs of the one stack (the app deploys one stack per use case)."""
        (values,) = self.outputs.values()
        return values

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - the embedded cloud accepts any credentials
        )

    def stop(self, timeout: float = 30.0) -> int:
        """Stop the cloud the way Ctrl-C does and return its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def __enter__(self) -> RunningCloud:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def launch(
    *,
    usecase: Path | None = None,
    outputs_file: Path = ROOT / ".local" / "outputs.json",
    log_file: Path = ROOT / ".local" / "cloud.log",
    port: int | None = None,
    timeout: float = 180.0,
    attempts: int = 3,
) -> RunningCloud:
    """Start `python -m local`, wait until it has written its outputs file, and return it.

    Without ``port`` a free one is chosen; should another process take it before the cloud binds it
    (test workers start clouds side by side), the cloud is started again on another free port.
    """
    for attempt in range(1, attempts + 1):
        try:
            return _launch_once(
                usecase=usecase,
                outputs_file=outputs_file,
                log_file=log_file,
                port=port or free_port(),
                timeout=timeout,
            )
        except LaunchError as exc:
            if port is not None or attempt == attempts or not _port_taken(log_file):
                raise
            logger.info("port taken before the embedded cloud bound it (%s); starting again", exc)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def _port_taken(log_file: Path) -> bool:
    return "Address already in use" in log_file.read_text(errors="replace")


def _launch_once(
    *, usecase: Path | None, outputs_file: Path, log_file: Path, port: int, timeout: float
) -> RunningCloud:
    outputs_file.parent.mkdir(parents=True, exist_ok=True)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    outputs_file.unlink(missing_ok=True)
    command = [sys.executable, "-m", "local", "--port", str(port), "--outputs-file", str(outputs_file)]
    if usecase is not None:
        command += ["--usecase", str(usecase)]
    with log_file.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while not outputs_file.exists():
        if process.poll() is not None:
            raise LaunchError(f"the embedded cloud exited with {process.returncode}:\n{log_file.read_text()[-4000:]}")
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise LaunchError(
                f"the embedded cloud did not start within {timeout:.0f}s:\n{log_file.read_text()[-4000:]}"
            )
        time.sleep(0.2)
    outputs: dict[str, dict[str, str]] = {}
    while not outputs:  # the file may be observed before its writer has finished it
        try:
            outputs = json.loads(outputs_file.read_text())
        except json.JSONDecodeError:
            time.sleep(0.1)
    return RunningCloud(
        process=process,
        endpoint_url=f"http://127.0.0.1:{port}",
        outputs_file=outputs_file,
        log_file=log_file,
        outputs=outputs,
    )
