"""How the service and the command line choose isolation, and what they say about it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.cli import main
from bot.config import Settings
from bot.sandboxing import command_line_sandbox, service_sandbox
from deploy.sandbox import Isolation, isolation
from tests.support.gitrepo import GitRepo

MISSING = Isolation(False, "bubblewrap (bwrap) is not installed; install the 'bubblewrap' package")


@pytest.fixture
def no_isolation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("deploy.sandbox.isolation", lambda: MISSING)
    monkeypatch.setattr("bot.sandboxing.isolation", lambda: MISSING)


def test_the_service_says_at_start_up_that_pr_code_will_not_run(no_isolation: None, tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    sandbox = service_sandbox(Settings(data_dir=tmp_path))

    assert not sandbox.allow_unsandboxed
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert record.getMessage().startswith("pull-request code will not be executed: bubblewrap (bwrap) is not "
                                          "installed")


def test_the_unsafe_setting_runs_pr_code_without_isolation_and_warns(no_isolation: None, tmp_path: Path,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    sandbox = service_sandbox(Settings(data_dir=tmp_path, allow_unsandboxed=True))

    assert sandbox.allow_unsandboxed
    assert "UNSAFE" in caplog.records[0].getMessage()


def test_the_service_limits_come_from_the_settings(tmp_path: Path) -> None:
    sandbox = service_sandbox(Settings(data_dir=tmp_path, sandbox_max_processes=32, sandbox_output_kb=16))

    assert (sandbox.max_processes, sandbox.output_kb) == (32, 16)


def test_the_command_line_runs_ones_own_repository_without_isolation_saying_so_once(
        no_isolation: None, example_repo: GitRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("KFP_BOT_DATA_DIR", str(tmp_path / "data"))

    status = main(["check", "--repo", str(example_repo.root)])

    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert captured.out.count("ok  ") == 3
    assert captured.err.count("note: running your repository's code without isolation: bubblewrap") == 1


@pytest.mark.skipif(not isolation().available, reason="needs bubblewrap")
def test_the_command_line_sandbox_is_quiet_with_isolation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    command_line_sandbox(Settings(data_dir=tmp_path))

    assert capsys.readouterr().err == ""
