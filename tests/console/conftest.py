"""Fixtures of the console tests: a real headless Chromium (Debian's ``chromium``)
driven by Selenium through Debian's ``/usr/bin/chromedriver`` (never Selenium
Manager, which would download a browser), and the directory its screenshots go to."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
REPOSITORY = Path(__file__).resolve().parents[2]


def artifacts_dir() -> Path:
    """Where the screenshots go: ``$PUSHSTREAM_ARTIFACTS/console``, else
    ``tests-artifacts/console`` in the clone (ignored by git)."""
    base = os.environ.get("PUSHSTREAM_ARTIFACTS")
    return (Path(base) if base else REPOSITORY / "tests-artifacts") / "console"


@pytest.fixture
def screenshots(request: pytest.FixtureRequest) -> Path:
    """A directory of this test's screenshots, emptied first."""
    name = re.sub(r"[^0-9A-Za-z_.-]+", "_", request.node.name)
    directory = artifacts_dir() / name
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return directory


@pytest.fixture
def browser(screenshots: Path) -> Iterator[webdriver.Chrome]:
    """A headless Chromium with a 1280×1600 window; its last screen is kept as
    ``last.png`` (also when the test fails). Skipped when Chromium is missing
    (failed under CI, where ``./dev.sh setup`` installs it)."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        reason = f"the console tests need Debian's chromium and chromium-driver ({', '.join(missing)} missing)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # the tests run as root in CI
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1600",
        "--lang=en-US",
    ):
        options.add_argument(argument)
    # The page's console messages, read by the tests (no script error may happen).
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        try:
            driver.save_screenshot(str(screenshots / "last.png"))
        finally:
            driver.quit()
