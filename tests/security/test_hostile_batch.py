"""Hostile pipeline files inside a batch: each attack fails only its own pipeline.

One sandboxed driver compiles every pipeline of a batch in forked children of one interpreter.
A pipeline that exits, kills the driver, forks, sleeps forever, allocates 10 GB or prints 1 GB
must end with the error a single compile would give, while the pipelines before and after it
compile, and nothing it started survives.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.compiler import CompiledPipeline
from deploy.compiler.batch import compile_pipelines
from deploy.errors import CompileError
from pipeline_registry.models import Pipeline
from tests.security.conftest import SANDBOX
from tests.security.hostile import spawner, survivors
from tests.security.test_hostile_compile import TAIL, small
from tests.support.gitrepo import GitRepo

GOOD = '''
from kfp import dsl


@dsl.container_component
def hello():
    return dsl.ContainerSpec(image="alpine:3.20", command=["echo", "hi"])


@dsl.pipeline(name="good")
def good():
    hello()
'''
EVIL = "pipelines/evil/evil.py"


def compile_around(repo: GitRepo, tmp_path: Path, source: str, **limits) -> tuple[CompileError, list]:
    """Compile [first, evil, second, third] in one batch; the evil pipeline's error and the others."""
    names = ["first", "evil", "second", "third"]
    for name in names:
        repo.write(f"pipelines/{name}/{name}.py", source if name == "evil" else GOOD)
    repo.commit("a hostile pipeline among good ones")
    pipelines = [Pipeline(name=n, path=f"pipelines/{n}", pipeline_file=f"pipelines/{n}/{n}.py", settings_file=None,
                          components=()) for n in names]
    outcomes = compile_pipelines(repo.root, pipelines, config=small(**limits), images={}, out_dir=tmp_path / "out",
                                 cache_dir=tmp_path / "cache", sandbox=SANDBOX)
    assert isinstance(outcomes["evil"], CompileError), outcomes["evil"]
    return outcomes["evil"], [outcomes[n] for n in names if n != "evil"]


def assert_all_compiled(others: list) -> None:
    assert all(isinstance(o, CompiledPipeline) and o.name == "good" for o in others), others


def test_exiting_without_a_verdict_fails_only_itself(git_repo: GitRepo, tmp_path: Path) -> None:
    error, others = compile_around(git_repo, tmp_path, "import os\nos._exit(3)\n" + TAIL)

    assert error.message == f"{EVIL}: the compiler process ended without a result (exit status 3)"
    assert_all_compiled(others)


def test_killing_the_driver_fails_only_itself_and_the_rest_get_a_fresh_driver(git_repo: GitRepo,
                                                                              tmp_path: Path) -> None:
    error, others = compile_around(git_repo, tmp_path, "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n"
                                   "import time\ntime.sleep(30)\n" + TAIL)

    assert error.message.startswith(f"{EVIL}: the compiler process ended without a result (exit status ")
    assert_all_compiled(others)


def test_forking_a_daemon_and_sleeping_forever_fails_only_itself(git_repo: GitRepo, tmp_path: Path,
                                                                  marker: str) -> None:
    error, others = compile_around(git_repo, tmp_path, spawner(marker, processes=20) + TAIL, timeout_seconds=2)

    assert error.message == f"{EVIL}: did not finish within 2 s"
    assert_all_compiled(others)
    assert survivors(marker) == []


def test_using_up_the_processes_does_not_starve_the_next_pipeline(git_repo: GitRepo, tmp_path: Path,
                                                                  marker: str) -> None:
    source = ("import os, time\nstarted = 0\ntry:\n    for _ in range(1000):\n        if os.fork() == 0:\n"
              f"            os.setsid()\n            os.execvp('sh', ['sh', '-c', 'exec -a {marker} sleep 3600'])\n"
              "        started += 1\nexcept OSError as exc:\n"
              "    raise RuntimeError(f'fork refused after {started}: {exc}')\n" + TAIL)

    error, others = compile_around(git_repo, tmp_path, source)

    assert "RuntimeError: fork refused after" in error.message
    assert_all_compiled(others)
    assert survivors(marker) == []


def test_allocating_10_gb_fails_only_itself(git_repo: GitRepo, tmp_path: Path) -> None:
    error, others = compile_around(git_repo, tmp_path, "hoard = bytearray(10 * 1024 ** 3)\n" + TAIL)

    assert error.message == f"{EVIL}: ran out of memory (limit 1024 MB)"
    assert_all_compiled(others)


def test_printing_1_gb_keeps_a_bounded_output_and_fails_only_itself(git_repo: GitRepo, tmp_path: Path) -> None:
    source = ("import os\nchunk = b'y' * (1 << 20)\nfor _ in range(1024):\n    os.write(1, chunk)\n"
              "    os.write(2, chunk)\nraise SystemExit('printed 1 GB on each stream')\n" + TAIL)

    error, others = compile_around(git_repo, tmp_path, source, timeout_seconds=60)

    assert "printed 1 GB on each stream" in str(error) + error.output
    assert len(error.output) < 4 * SANDBOX.output_kb * 1024
    assert_all_compiled(others)


@pytest.mark.parametrize("where", ["import kfp_bot_batch_driver", "import kfp_bot_compile_driver"])
def test_the_drivers_cannot_be_imported_by_repository_code(git_repo: GitRepo, tmp_path: Path, where: str) -> None:
    error, others = compile_around(git_repo, tmp_path, where + "\n" + TAIL)

    assert error.message.endswith(f"import failed: ModuleNotFoundError: No module named '{where.split()[1]}'")
    assert_all_compiled(others)
