"""Golden files: compare rendered text with a file under tests/golden/, or rewrite it on request.

Set KFP_BOT_UPDATE_GOLDEN=1 to (re)write the files from the current output, then review the
diff with git like any other change. Without it a missing or different file fails the test
with a unified diff, so a wording change is always a deliberate, reviewed edit.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

GOLDEN_DIR = Path(__file__).resolve().parent.parent / "golden"
UPDATE_VARIABLE = "KFP_BOT_UPDATE_GOLDEN"


def updating() -> bool:
    """True when the run was asked to rewrite golden files."""
    return os.environ.get(UPDATE_VARIABLE, "") not in ("", "0", "false", "no")


def assert_golden(actual: str, name: str) -> None:
    """`actual` must equal tests/golden/<name> (rewritten instead when updating)."""
    path = GOLDEN_DIR / name
    if updating():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    if not path.is_file():
        pytest.fail(f"golden file {path.relative_to(GOLDEN_DIR.parent)} is missing: run the tests with "
                    f"{UPDATE_VARIABLE}=1 to create it, then review it")
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(keepends=True), actual.splitlines(keepends=True),
                                            fromfile=f"golden/{name}", tofile="rendered"))
        pytest.fail(f"rendered text differs from golden/{name} (rerun with {UPDATE_VARIABLE}=1 to accept "
                    f"it if the change is intended):\n{diff}", pytrace=False)
