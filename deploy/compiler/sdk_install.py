"""Installing a repository's kfp pin, falling back to the nearest patch release that installs.

An exact pin such as `kfp==1.8.12` may no longer install on a current Python (its PyYAML pin
does not build on 3.11). The releases of the same minor version are API-compatible, so the
nearest one that installs compiles the pipeline as the repository meant. The choice (newer
releases first, by bisection, then the two nearest older ones) lives here once: the bot's own
environment builder (`environments.py`) imports it, and Cloud Build's compile step runs this
file as a standalone script (it imports only the standard library):

    python sdk_install.py <out dir> <index of the kfp pin, or -> <requirement>...

The script installs the requirements into the running interpreter, appending pip's output to
`<out dir>/install.log`; when that fails and a pin index is given, it installs the nearest
release instead and records `{"pinned", "used", "python"}` in `<out dir>/environment.json`.
Exit status 0 when something installed, 1 otherwise.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
ENVIRONMENT_FILE = "environment.json"


def nearest_releases(pinned: str, versions: list[str]) -> tuple[list[str], list[str]]:
    """Other releases of the pin's minor version: (newer ones, nearest first; older ones, nearest first)."""
    major_minor, patch = pinned.rsplit(".", 1)
    same = sorted({int(v.rsplit(".", 1)[1]) for v in versions
                   if v.rsplit(".", 1)[0] == major_minor and v.rsplit(".", 1)[1].isdigit()})
    newer = [f"{major_minor}.{p}" for p in same if p > int(patch)]
    older = [f"{major_minor}.{p}" for p in reversed(same) if p < int(patch)]
    return newer, older


def first_that_installs(versions: list[str], attempt: Callable[[str], T | None]) -> tuple[str, T] | None:
    """The oldest of `versions` (ascending) that installs, by bisection: a release that installs
    is followed by releases that install too, so a few builds find it among a dozen."""
    low, high, best = 0, len(versions) - 1, None
    while low <= high:
        middle = (low + high) // 2
        target = attempt(versions[middle])
        if target is not None:
            best, high = (versions[middle], target), middle - 1
        else:
            low = middle + 1
    return best


def nearest_that_installs(pinned: str, versions: list[str],
                          attempt: Callable[[str], T | None]) -> tuple[str, T] | None:
    """The nearest newer release that installs, else one of the two nearest older ones."""
    newer, older = nearest_releases(pinned, versions)
    found = first_that_installs(newer, attempt)
    if found is not None:
        return found
    for version in older[:2]:
        target = attempt(version)
        if target is not None:
            return version, target
    return None


def parse_index_versions(output: str) -> list[str]:
    """The versions `pip index versions kfp` lists."""
    line = next((text for text in output.splitlines() if text.startswith("Available versions:")), "")
    return [v.strip() for v in line.split(":", 1)[-1].split(",") if v.strip()]


def _install(requirements: list[str], log_file: str) -> bool:
    with open(log_file, "a", encoding="utf-8") as log:
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-input",
                               "--disable-pip-version-check", *requirements], stdout=log, stderr=subprocess.STDOUT)
    return done.returncode == 0


def main(argv: list[str]) -> int:
    """Install `argv[2:]`, falling back for the pin at index `argv[1]`; see the module docstring."""
    out, index, requirements = argv[0], argv[1], list(argv[2:])
    log_file = os.path.join(out, "install.log")
    if _install(requirements, log_file):
        return 0
    if index == "-":
        return 1
    position = int(index)
    pinned = requirements[position].split("==", 1)[1].strip()
    listing = subprocess.run([sys.executable, "-m", "pip", "index", "versions", "kfp",
                              "--disable-pip-version-check"], capture_output=True, text=True)

    def attempt(version: str) -> bool | None:
        chosen = [*requirements[:position], f"kfp=={version}", *requirements[position + 1:]]
        return True if _install(chosen, log_file) else None

    found = nearest_that_installs(pinned, parse_index_versions(listing.stdout), attempt)
    if found is None:
        return 1
    with open(os.path.join(out, ENVIRONMENT_FILE), "w", encoding="utf-8") as handle:
        json.dump({"pinned": pinned, "used": found[0], "python": platform.python_version()}, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
