"""The browser tests' fixtures: one headless Chromium per module, and the embedded bot of
tests/handlers (served on a real socket, talking to a fake GitHub)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.handlers.conftest import bot  # noqa: F401  (the served bot fixture)
from tests.support.browser import headless_chromium


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium (selenium WebDriver); the test is skipped with the reason without one."""
    with headless_chromium() as driver:
        yield driver


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """The module's browser, left with one blank tab after the test."""
    yield browser
    for handle in browser.window_handles[1:]:
        browser.switch_to.window(handle)
        browser.close()
    browser.switch_to.window(browser.window_handles[0])
    browser.get("about:blank")
