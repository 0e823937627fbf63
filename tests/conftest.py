"""How pytest-xdist shares the suite out among its workers (``make test``: ``-n 2 --dist loadgroup``).

A work unit is a test file — a module's fixtures (a synthesized assembly, an embedded cloud) are built
once, on one worker — except that the e2e modules which share the session's embedded cloud form one
unit, so that each embedded cloud is started by one worker only. Units run biggest first.

This replaces xdist's own ``loadgroup`` scheduling, which on pytest 9 groups nothing: it renames
``item._nodeid`` to add the group, and pytest 9 no longer reads that attribute.
"""

from __future__ import annotations

from typing import Any

import pytest

# The browser and page fixtures (Playwright on Debian's chromium), for tests/browser and the e2e tests.
pytest_plugins = ("tests.browser.harness",)

# e2e module → the embedded cloud it runs on; modules of one cloud are one work unit.
CLOUD_OF_MODULE = {
    "tests/e2e/test_data_path.py": "e2e-telco-cloud",
    "tests/e2e/test_scoring.py": "e2e-telco-cloud",
    "tests/e2e/test_training.py": "e2e-telco-cloud",
    "tests/e2e/test_promotion.py": "e2e-promotion-cloud",
    "tests/e2e/test_heavy_scoring.py": "e2e-heavy-cloud",
    "tests/e2e/test_batch.py": "e2e-batch-cloud",
    "tests/e2e/test_backfill.py": "e2e-backfill-cloud",
    "tests/e2e/test_monitoring.py": "e2e-monitoring-cloud",
    "tests/e2e/test_review.py": "e2e-review-cloud",
}


def work_unit(nodeid: str) -> str:
    module = nodeid.split("::", 1)[0]
    return CLOUD_OF_MODULE.get(module, module)


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class CloudScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return CloudScheduling(config, log)


GPU_MARKER = "gpu"


def cuda_unavailable() -> str | None:
    """Why this machine cannot run a GPU test (None when it can): the endpoint's own provider choice."""
    import onnxruntime as ort

    from shared.scoring.execution_provider import choose_providers, probe_gpu

    choice = choose_providers(ort.get_available_providers(), probe_gpu())
    return None if choice.on_gpu else choice.reason


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``gpu`` are skipped, with the reason, where no CUDA device serves (never silently)."""
    gpu_tests = [item for item in items if item.get_closest_marker(GPU_MARKER) is not None]
    if not gpu_tests:
        return
    why = cuda_unavailable()
    if why is None:
        return
    skip = pytest.mark.skip(reason=f"no CUDA device: {why}")
    for item in gpu_tests:
        item.add_marker(skip)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Where the browser tests saved their screenshots (tests/browser/harness.py's ``page``)."""
    shots = sorted(
        {
            str(value)
            for reports in terminalreporter.stats.values()
            for report in reports
            for key, value in getattr(report, "user_properties", ())
            if key == "screenshot"
        }
    )
    if shots:
        terminalreporter.write_sep("-", f"{len(shots)} browser screenshots")
        for shot in shots:
            terminalreporter.write_line(shot)
