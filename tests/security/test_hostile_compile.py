"""Hostile pipeline files, compiled directly: the compile sees nothing, writes nothing, leaves nothing.

Each pipeline file attacks at import time (`hostile.attack_statements`) and raises an exception
carrying what it found, so that everything it could read ends up in the error a user would see.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from deploy.compiler import compile_pipeline
from deploy.errors import CompileError
from deploy.sandbox import Isolation, Sandbox
from pipeline_registry.models import Pipeline
from pipeline_registry.repo_config import CompileConfig, CompileMode, RepoConfig
from tests.security.conftest import SANDBOX
from tests.security.hostile import (
    ENV_SECRET,
    FILE_SECRET,
    SERVICE_SECRET,
    Victim,
    attack_statements,
    leaked,
    spawner,
    survivors,
)
from tests.support.gitrepo import GitRepo

FILE = "pipelines/evil/evil.py"
TAIL = '''
from kfp import dsl


@dsl.pipeline(name="evil")
def evil():
    pass
'''


def small(timeout_seconds: float = 20, memory_mb: int = 1024, mode: CompileMode = CompileMode.IMPORT) -> RepoConfig:
    """Limits below what `.kfp-bot.yaml` accepts (2 s, 64 MB), so the attacks end fast."""
    return RepoConfig(compile=CompileConfig(timeout_seconds=timeout_seconds, memory_mb=memory_mb, mode=mode))


def compile_hostile(repo: GitRepo, tmp_path: Path, source: str, config: RepoConfig,
                    sandbox: Sandbox = SANDBOX) -> CompileError:
    repo.write(FILE, source)
    repo.commit("a hostile pipeline")
    pipeline = Pipeline(name="evil", path="pipelines/evil", pipeline_file=FILE, settings_file=None, components=())
    with pytest.raises(CompileError) as caught:
        compile_pipeline(repo.root, pipeline, config=config, images={}, out_dir=tmp_path / "out",
                         cache_dir=tmp_path / "cache", sandbox=sandbox)
    return caught.value


def stealing_pipeline(victim: Victim, write: bool = True) -> str:
    attack = attack_statements(victim.read_targets + ["etc-link/passwd", "data-link/kfp-bot.db", "data-link"],
                               [victim.service_port], victim.write_targets if write else [])
    return attack + "raise RuntimeError('stolen: ' + repr(found))\n" + TAIL


def with_symlinks(repo: GitRepo, victim: Victim) -> GitRepo:
    """Symlinks committed in the repository, pointing out of it: to /etc and to the data folder."""
    os.symlink("/etc", repo.root / "etc-link")
    os.symlink(victim.data_dir, repo.root / "data-link")
    return repo


def test_reading_proc_files_secrets_and_symlinks_gets_nothing(git_repo: GitRepo, tmp_path: Path,
                                                               victim: Victim) -> None:
    error = compile_hostile(with_symlinks(git_repo, victim), tmp_path, stealing_pipeline(victim), small())

    assert "failed while being imported: RuntimeError: stolen:" in error.message
    assert "/proc/1/environ = '" in error.output  # it ran, and found the launcher's empty environment
    assert f"port {victim.service_port} ! ConnectionRefusedError" in error.output
    assert leaked(error, error.output, error.hint) == []


def test_the_same_attack_without_the_wall_finds_the_secrets(git_repo: GitRepo, tmp_path: Path, victim: Victim,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The control: with isolation waived, the attack above does reach the secrets (the test can fail)."""
    monkeypatch.setattr("deploy.sandbox.isolation", lambda: Isolation(False, "waived for the control"))
    victim.clean = False
    error = compile_hostile(with_symlinks(git_repo, victim), tmp_path, stealing_pipeline(victim, write=False),
                            small(), sandbox=Sandbox(allow_unsandboxed=True, output_kb=1024))

    assert sorted(leaked(error.output)) == sorted([ENV_SECRET, FILE_SECRET, SERVICE_SECRET])


def test_forking_a_daemon_and_sleeping_forever_leaves_no_process(git_repo: GitRepo, tmp_path: Path,
                                                                  victim: Victim, marker: str) -> None:
    error = compile_hostile(git_repo, tmp_path, spawner(marker) + TAIL, small(timeout_seconds=2))

    assert error.message == f"{FILE}: did not finish within 2 s"
    assert survivors(marker) == []


def test_forking_is_limited(git_repo: GitRepo, tmp_path: Path, victim: Victim, marker: str) -> None:
    source = ("import os, time\nstarted = 0\ntry:\n    for _ in range(1000):\n        if os.fork() == 0:\n"
              "            time.sleep(3600)\n        started += 1\nexcept OSError as exc:\n"
              "    raise RuntimeError(f'fork refused after {started}: {exc}')\n" + TAIL)

    error = compile_hostile(git_repo, tmp_path, source, small(timeout_seconds=20))

    assert "RuntimeError: fork refused after" in error.message
    assert int(error.message.split("fork refused after ")[1].split(":")[0]) < SANDBOX.max_processes
    assert survivors(marker) == []


def test_allocating_10_gb_ends_in_a_memory_error(git_repo: GitRepo, tmp_path: Path, victim: Victim) -> None:
    error = compile_hostile(git_repo, tmp_path, "hoard = bytearray(10 * 1024 ** 3)\n" + TAIL, small(memory_mb=1024))

    assert error.message == f"{FILE}: ran out of memory (limit 1024 MB)"


def test_printing_1_gb_keeps_only_a_bounded_head_and_tail(git_repo: GitRepo, tmp_path: Path, victim: Victim) -> None:
    source = ("import os, sys\nchunk = b'y' * (1 << 20)\nfor _ in range(1024):\n    os.write(1, chunk)\n"
              "    os.write(2, chunk)\nraise SystemExit('printed 1 GB on each stream')\n" + TAIL)

    error = compile_hostile(git_repo, tmp_path, source, small(timeout_seconds=60))

    assert "printed 1 GB on each stream" in str(error) + error.output
    assert len(error.output) < 4 * SANDBOX.output_kb * 1024
