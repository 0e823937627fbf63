"""A real browser for the tests: Playwright driving Debian's ``chromium`` headless.

A pytest plugin (``pytest_plugins`` in tests/conftest.py), so that the browser tests and the e2e tests that open
what the embedded cloud wrote share one ``browser`` and ``page`` fixture.

``make test`` installs the ``chromium`` package (the Makefile's ``browser`` target) and the pinned ``playwright``
package (requirements.txt); nothing is downloaded at run time (no ``playwright install``): Playwright launches
``/usr/bin/chromium`` by its path. Each launch gets a fresh temporary profile (Playwright passes its own
``--user-data-dir``), each test a fresh context and page.

``page`` saves a full-page screenshot when its test ends, passed or failed, under ``test-artifacts/screenshots/``
(git-ignored); the path is printed in the test's report sections and in the run's summary. A browser that cannot
start fails the test with the reason: a browser test is never skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
VIEWPORT = {"width": 1100, "height": 900}
SCREENSHOT_PROPERTY = "screenshot"
"""``user_properties`` key of a test's screenshot path (read by tests/conftest.py's run summary)."""


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless chromium per worker; fails (never skips) with the reason when it cannot start."""
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        pytest.fail(f"the playwright package is missing ({exc}): `make venv` installs requirements.txt", False)
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (apt-get install chromium)", False)
    playwright = sync_playwright().start()
    try:
        try:
            instance = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=list(CHROMIUM_FLAGS), timeout=60_000
            )
        except PlaywrightError as exc:
            pytest.fail(f"chromium ({CHROMIUM}) did not start: {exc}", False)
        yield instance
        instance.close()
    finally:
        playwright.stop()


def screenshot_path(nodeid: str) -> Path:
    """``tests/browser/test_x.py::test_y[z]`` → ``test-artifacts/screenshots/test_x__test_y_z.png``."""
    module, _, name = nodeid.partition("::")
    stem = f"{Path(module).stem}__{name}" if name else Path(module).stem
    return SCREENSHOTS / (re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("_") + ".png")


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A page in a fresh context; its full-page screenshot is saved when the test ends."""
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    opened = context.new_page()
    try:
        yield opened
    finally:
        path = screenshot_path(request.node.nodeid)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            opened.screenshot(path=str(path), full_page=True)
            shown = str(path.relative_to(ROOT))
            request.node.user_properties.append((SCREENSHOT_PROPERTY, shown))
            request.node.add_report_section("teardown", "screenshot", shown)
        finally:
            context.close()
