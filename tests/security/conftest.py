"""Fixtures of the hostile suite: the victim's secrets, a marker for process scans, small limits.

Every test here needs a working bubblewrap (`.ci/run` installs it); without one the suite is
skipped with the reason, and `.ci/run` prints it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.sandbox import Sandbox, isolation
from tests.handlers.conftest import bot, token_bot  # noqa: F401 (fixtures of the end-to-end security tests)
from tests.handlers.test_production_path import cloud_bot  # noqa: F401 (fixture)
from tests.security.hostile import SecretService, Victim, make_victim, secret_process

# Small limits keep the attacks fast: 64 KB of output kept per stream, 64 processes.
SANDBOX = Sandbox(max_processes=64, output_kb=64)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    status = isolation()
    if status.available:
        return
    skip = pytest.mark.skip(reason=f"the hostile suite needs bubblewrap: {status.reason}")
    for item in items:
        if "tests/security/" in str(item.fspath):
            item.add_marker(skip)


@pytest.fixture
def victim(tmp_path: Path) -> Iterator[Victim]:
    """Secret files in a data folder, a process whose environment holds the secret, and a local
    service that answers with it; all checked untouched after the test."""
    victim = make_victim(tmp_path)
    process = secret_process()
    service = SecretService()
    victim.service_port = service.port
    try:
        yield victim
    finally:
        process.kill()
        process.wait()
        service.close()
    if victim.clean:
        assert service.connections == 0, "the attack reached a service on 127.0.0.1"
        assert victim.written() == [], "the attack wrote outside its scratch folder"


@pytest.fixture
def marker() -> str:
    """A distinctive name for the attack's processes, to scan /proc for survivors."""
    return f"kfp-bot-hostile-{uuid.uuid4().hex[:10]}"
