"""Hostile lightweight components, run with kfp.local: the same wall holds at run time.

The driver and every component process run in one sandbox per run: the run's folder (under the
data folder, next to the database and other runs) is all they can write, and all of them end
with the run.
"""

from __future__ import annotations

from pathlib import Path

from deploy.compiler import compile_pipeline
from deploy.runners.local import LocalRunResult, TaskState, run_locally
from pipeline_registry.models import Pipeline
from pipeline_registry.repo_config import RepoConfig
from tests.security.conftest import SANDBOX
from tests.security.hostile import Victim, attack_statements, leaked, spawner, survivors
from tests.support.gitrepo import GitRepo

FILE = "pipelines/evil/evil.py"


def pipeline_source(body: str, *, returns: str = "str", result: str = "return 'done'") -> str:
    """A pipeline whose one component runs `body` (statements) and then `result`."""
    indented = "\n".join("    " + line if line else "" for line in body.splitlines())
    return f'''
from kfp import dsl


@dsl.component(base_image="python:3.11-slim")
def evil_step() -> {returns}:
{indented}
    {result}


@dsl.component(base_image="python:3.11-slim")
def report(loot: str):
    raise RuntimeError("stolen: " + loot)


@dsl.pipeline(name="evil")
def evil():
    report(loot=evil_step().output)
'''


def run_hostile(repo: GitRepo, tmp_path: Path, victim: Victim, source: str, *, timeout_seconds: float = 120,
                memory_mb: int = 1024) -> LocalRunResult:
    repo.write(FILE, source)
    repo.commit("a hostile component")
    pipeline = Pipeline(name="evil", path="pipelines/evil", pipeline_file=FILE, settings_file=None, components=())
    compiled = compile_pipeline(repo.root, pipeline, config=RepoConfig(), images={}, out_dir=tmp_path / "out",
                                cache_dir=tmp_path / "cache", sandbox=SANDBOX)
    # Where the service runs it: a folder under the data folder, next to the database and the key.
    return run_locally(compiled.package_path, {}, workdir=victim.data_dir / "runs" / "run-1",
                       timeout_seconds=timeout_seconds, memory_mb=memory_mb, sandbox=SANDBOX)


def test_a_component_stealing_at_run_time_gets_nothing(git_repo: GitRepo, tmp_path: Path, victim: Victim) -> None:
    attack = attack_statements(victim.read_targets, [victim.service_port], victim.write_targets)
    result = run_hostile(git_repo, tmp_path, victim, pipeline_source(attack, result="return repr(found)"))

    assert not result.succeeded
    states = {t.task: t.state for t in result.tasks}
    assert states == {"evil-step": TaskState.SUCCEEDED, "report": TaskState.FAILED}
    report = next(t for t in result.tasks if t.task == "report")
    assert "RuntimeError: stolen:" in report.detail
    assert "/proc/1/environ = '" in report.detail  # it ran and found only the launcher's empty environment
    assert leaked(result, report.detail, result.log_tail, result.error) == []


def test_a_component_that_detaches_a_daemon_and_sleeps_forever_leaves_no_process(
        git_repo: GitRepo, tmp_path: Path, victim: Victim, marker: str) -> None:
    result = run_hostile(git_repo, tmp_path, victim, pipeline_source(spawner(marker)), timeout_seconds=20)

    assert not result.succeeded
    assert "did not finish within the time limit of 20 seconds" in (result.error or "")
    assert survivors(marker) == []


def test_a_component_allocating_10_gb_fails_the_run(git_repo: GitRepo, tmp_path: Path, victim: Victim) -> None:
    result = run_hostile(git_repo, tmp_path, victim, pipeline_source("hoard = bytearray(10 * 1024 ** 3)"))

    assert not result.succeeded
    assert "MemoryError" in result.log_tail


def test_a_component_printing_256_mb_keeps_the_log_bounded(git_repo: GitRepo, tmp_path: Path, victim: Victim) -> None:
    """256 MB here (kfp.local logs every line again, which makes 1 GB slow); the compile test prints 1 GB."""
    body = "import sys\nline = 'z' * (1 << 20) + '\\n'\nfor _ in range(256):\n    sys.stdout.write(line)"
    result = run_hostile(git_repo, tmp_path, victim, pipeline_source(body))

    assert {t.task: t.state for t in result.tasks}["evil-step"] is TaskState.SUCCEEDED, result.log_tail[-2000:]
    assert len(result.log_tail) < 2 * SANDBOX.output_kb * 1024
    assert all(len(t.detail) < 100_000 for t in result.tasks)
