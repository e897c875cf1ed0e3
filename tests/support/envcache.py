"""Test environments cached by content in a folder reused across test runs (and CI runs) on a machine.

Installing kfp 1.8 into a virtual environment takes over a minute; the suite needs it on every run
but its content only changes with the requirements or the Python. So such environments live under
`~/.cache/kfp-bot-tests/` (or `$KFP_BOT_TEST_CACHE`), in a folder named by the Python that built
them and the hash of what is installed; the builds are serialised by a file lock, so concurrent
pytest processes build each one once. Where the network is missing and nothing is cached yet, the
tests that need it are skipped with the reason instead of failing.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import platform
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

INDEX_HOST = "pypi.org"


def cache_root() -> Path:
    """The folder kept across runs: `$KFP_BOT_TEST_CACHE`, else `~/.cache/kfp-bot-tests`."""
    configured = os.environ.get("KFP_BOT_TEST_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "kfp-bot-tests"


def python_tag() -> str:
    """Which interpreter built a cached environment: its version and where it lives (a virtual
    environment links to its base interpreter, so a different one cannot reuse it)."""
    where = hashlib.sha256(str(Path(sys.base_prefix).resolve()).encode()).hexdigest()[:8]
    return f"py{platform.python_version()}-{where}"


def keyed_folder(kind: str, *content: str) -> Path:
    """`<cache root>/<kind>-<python tag>-<hash of content>`, created."""
    digest = hashlib.sha256("\n".join(content).encode()).hexdigest()[:16]
    folder = cache_root() / f"{kind}-{python_tag()}-{digest}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold `<folder>.lock` exclusively: one pytest process at a time fills `folder`."""
    with open(folder.with_name(folder.name + ".lock"), "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def index_unreachable() -> str | None:
    """Why the package index cannot be reached from here, or None when it can."""
    try:
        socket.create_connection((INDEX_HOST, 443), timeout=5).close()
    except OSError as exc:
        return f"the package index ({INDEX_HOST}) is unreachable: {exc}"
    return None
