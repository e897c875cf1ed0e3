"""Headless Chromium driven over WebDriver (Debian's `chromium` and `chromium-driver`), for the
tests that look at the bot's pages as a person's browser does: scripts run, links are followed,
the content security policy is enforced.

Nothing is downloaded: the browser and its driver are the machine's own (`.ci/run` installs the
Debian packages when missing). Without them the tests skip themselves with the reason.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest

BROWSERS = ("chromium", "chromium-browser")
DRIVERS = ("chromedriver",)
T = TypeVar("T")


def _first(names: tuple[str, ...]) -> str | None:
    return next((path for path in map(shutil.which, names) if path), None)


def missing_browser() -> str | None:
    """Why this machine cannot run the browser tests, or None when it can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the Python package selenium is not installed (requirements-dev.txt)"
    if _first(BROWSERS) is None:
        return "Chromium is not installed (Debian package chromium; .ci/run installs it)"
    if _first(DRIVERS) is None:
        return "chromedriver is not installed (Debian package chromium-driver; .ci/run installs it)"
    return None


@contextmanager
def headless_chromium(width: int = 1280, height: int = 1000) -> Iterator[Any]:
    """A headless Chromium session (a selenium WebDriver); skips the test when there is none."""
    reason = missing_browser()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = _first(BROWSERS) or ""
    # --no-sandbox: Chromium's own sandbox needs a non-root user or user namespaces it may not have.
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--disable-extensions", "--no-first-run", f"--window-size={width},{height}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console, for `console_errors`
    driver = webdriver.Chrome(service=Service(executable_path=_first(DRIVERS)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def console_errors(driver: Any) -> list[str]:
    """Errors the pages logged to the console since the last call (a script or style the content
    security policy blocked, a failed fetch), except the favicon the bot does not serve."""
    return [entry["message"] for entry in driver.get_log("browser")
            if entry["level"] == "SEVERE" and "favicon.ico" not in entry["message"]]


def wait_until(driver: Any, condition: Callable[[Any], T], *, timeout: float, what: str) -> T:
    """The first truthy value of `condition(driver)` within `timeout` seconds; fails naming `what`."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.2).until(condition)
    except TimeoutException:
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what}") from None
