"""The embedded cloud, started once per session as its own process (`python -m local`).

Tests talk to it only through boto3 with its endpoint URL and the stack outputs it wrote,
as a user would after `cdk deploy`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from local.launcher import RunningCloud, launch


@pytest.fixture(scope="session")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCloud]:
    workdir: Path = tmp_path_factory.mktemp("embedded-cloud")
    running = launch(outputs_file=workdir / "outputs.json", log_file=workdir / "cloud.log")
    try:
        yield running
    finally:
        code = running.stop()
        assert code == 0, f"the embedded cloud did not stop cleanly ({code}):\n{running.log_file.read_text()[-3000:]}"
