"""Sandboxed drivers started ahead of their work (`deploy/compiler/warm.py`, `start_drivers`)."""

import json
import sys
import time
from pathlib import Path

import pytest

from deploy.compiler import CompiledPipeline
from deploy.compiler.batch import compile_pipelines, start_drivers
from deploy.compiler.scratch import ScratchTree
from deploy.compiler.warm import HINTS_DIR, DriverKey, DriverPool, remember, remembered, start_remembered
from deploy.sandbox import Sandbox
from pipeline_registry.compile_env import CompileEnvironment
from pipeline_registry.repo_config import RepoConfig, load_repo_config
from tests.deploy.conftest import KFP18, pipeline_model
from tests.deploy.test_compile_batch import IMAGES, CountingSandbox
from tests.deploy.test_compiler import SEED_PIPELINE, seed_repo
from tests.security.hostile import survivors
from tests.support.gitrepo import GitRepo

# A pipeline that says, in its compiled name, what the interpreter held when it was imported.
TELLS = """\
import os
import sys
from kfp import dsl

LEFT = sorted(m for m in sys.modules if m.startswith("telltale"))
SEEN = "-".join(["x", *LEFT, os.environ.get("STAGE", "unset")]).replace("_", "-")
import telltale_{name}


@dsl.container_component
def hello():
    return dsl.ContainerSpec(image="alpine:3.20", command=["echo", "hi"])


@dsl.pipeline(name=SEEN)
def tells():
    hello()
"""


def tells_repo(repo: GitRepo, names: list[str], kfp_bot_yaml: str = "") -> list:
    for name in names:
        repo.write(f"pipelines/{name}/{name}.py", TELLS.format(name=name))
        repo.write(f"pipelines/{name}/telltale_{name}.py", "VALUE = 1\n")
    if kfp_bot_yaml:
        repo.write(".kfp-bot.yaml", kfp_bot_yaml)
    repo.commit("pipelines that tell what they saw")
    return [pipeline_model(name, f"pipelines/{name}/{name}.py") for name in names]


def test_a_driver_started_ahead_compiles_the_batch_and_none_other_starts(git_repo: GitRepo, tmp_path: Path) -> None:
    pipelines = tells_repo(git_repo, ["one", "two"])
    sandbox = CountingSandbox()
    with ScratchTree(git_repo.root) as scratch:
        pool = start_drivers(git_repo.root, pipelines, config=RepoConfig(), cache_dir=tmp_path / "cache",
                             sandbox=sandbox, scratch=scratch)
        try:
            outcomes = compile_pipelines(git_repo.root, pipelines, config=RepoConfig(), images={},
                                         out_dir=tmp_path / "out", cache_dir=tmp_path / "cache", scratch=scratch,
                                         sandbox=sandbox, drivers=pool)
        finally:
            pool.close()

    assert len(sandbox.started) == 1
    # Each pipeline found nothing of the repository in the interpreter it was imported in.
    assert [o.name for o in outcomes.values()] == ["x-unset", "x-unset"], outcomes


def test_a_driver_nobody_takes_ends_with_its_pool(tmp_path: Path) -> None:
    pool = DriverPool(CountingSandbox())
    key = DriverKey(python=sys.executable, environment=None)
    pool.start(key, seconds=60)
    [driver] = pool._drivers
    assert driver.ready.wait(60)
    marker = str(driver.work)
    assert survivors(marker)

    pool.close()

    assert survivors(marker) == []
    assert not driver.work.exists()


def test_a_driver_compiles_one_batch_only(kfp2_repo: GitRepo, tmp_path: Path) -> None:
    """A driver that has run a repository's code is never handed to another compile."""
    sandbox = CountingSandbox()
    pool = DriverPool(sandbox)
    key = DriverKey(python=sys.executable, environment=None, memory_mb=RepoConfig().compile.memory_mb)
    pool.start(key, seconds=3600)
    pool.start(key, seconds=3600)  # one unused driver per key is enough
    pipelines = [pipeline_model("demo", "pipelines/demo/demo.py")]
    try:
        for round_ in ("first", "second"):
            outcomes = compile_pipelines(kfp2_repo.root, pipelines, config=RepoConfig(), images={"demo": IMAGES},
                                         out_dir=tmp_path / round_, cache_dir=tmp_path / "cache", sandbox=sandbox,
                                         drivers=pool)
            assert isinstance(outcomes["demo"], CompiledPipeline), outcomes
            assert pool.take(key, seconds=1, scratch=None) is None
    finally:
        pool.close()
    assert len(sandbox.started) == 2  # the one started ahead, then a fresh one


def test_the_drivers_of_the_last_compile_start_before_the_repository_is_read(git_repo: GitRepo,
                                                                            tmp_path: Path) -> None:
    pipelines = tells_repo(git_repo, ["one"], "compile:\n  env:\n    STAGE: first\n")
    cache = tmp_path / "cache"
    config = load_repo_config((git_repo.root / ".kfp-bot.yaml").read_text())
    start_drivers(git_repo.root, pipelines, config=config, cache_dir=cache, sandbox=Sandbox()).close()

    # The configuration changed since: the guess is started, the right driver too, and the guess ends unused.
    git_repo.write(".kfp-bot.yaml", "compile:\n  env:\n    STAGE: second\n")
    git_repo.commit("another stage")
    config = load_repo_config((git_repo.root / ".kfp-bot.yaml").read_text())
    pool = start_remembered(cache, git_repo.root, allow_unsandboxed=False, writable=[])
    assert pool is not None and pool.sandbox == Sandbox()
    [guess] = pool._drivers
    assert guess.key.env == (("STAGE", "first"),)
    start_drivers(git_repo.root, pipelines, config=config, cache_dir=cache, sandbox=pool.sandbox, pool=pool)
    assert len(pool._drivers) == 2
    try:
        outcomes = compile_pipelines(git_repo.root, pipelines, config=config, images={}, out_dir=tmp_path / "out",
                                     cache_dir=cache, sandbox=pool.sandbox, drivers=pool)
        assert pool._drivers == [guess]  # the right one was taken
    finally:
        pool.close()

    assert outcomes["one"].name == "x-second", outcomes
    assert survivors(str(guess.work)) == []


def test_a_remembered_interpreter_is_started_only_if_the_bot_knows_it(git_repo: GitRepo, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    start_drivers(git_repo.root, tells_repo(git_repo, ["one"]), config=RepoConfig(), cache_dir=cache,
                  sandbox=CountingSandbox()).close()
    [hints] = (cache / HINTS_DIR).iterdir()
    remembered = json.loads(hints.read_text())
    [item] = remembered["drivers"]
    assert item["python"] == sys.executable and item["environment"] is None
    for python, environment in (("/bin/sh", None), (str(tmp_path / "envs/x/bin/python"), str(tmp_path / "envs/x"))):
        hints.write_text(json.dumps({**remembered, "drivers": [{**item, "python": python, "environment": environment}]}))
        pool = start_remembered(cache, git_repo.root, allow_unsandboxed=False, writable=[])
        assert pool is not None and pool._drivers == []
        pool.close()


def test_a_compile_takes_the_interpreter_warmed_up_for_it(kfp2_repo: GitRepo, tmp_path: Path) -> None:
    """The service warms up when a pull request's head arrives; its run's compile then starts nothing.
    A repository never compiled gets the bot's own kfp 2."""
    from deploy.pipelines import RepositoryCompiler

    sandbox = CountingSandbox()
    compiler = RepositoryCompiler(tmp_path / "cache", sandbox=sandbox)
    compiler.warm_up("acme/demo")
    compiler.warm_up("acme/demo")  # a second head of the same moment finds it waiting
    [warm] = compiler.drivers._drivers
    try:
        compiled = compiler.compile(kfp2_repo.root, "demo", IMAGES, tmp_path / "out", repo="acme/demo")
    finally:
        compiler.close()

    assert warm.key.python == sys.executable and warm.key.environment is None
    assert compiled.name == "demo-pipeline" and compiled.package_path.parent == tmp_path / "out"
    assert len(sandbox.started) == 1
    assert not compiler.drivers.waiting()


@pytest.mark.slow
def test_a_repository_pinning_its_kfp_gets_a_warm_driver_of_that_environment(
        git_repo: GitRepo, tmp_path: Path, kfp18_env: CompileEnvironment, compile_cache: Path) -> None:
    from deploy.pipelines import RepositoryCompiler

    name = f"acme/{tmp_path.name}"  # the cache is shared by test runs: a repository of its own
    repo = seed_repo(git_repo, SEED_PIPELINE.format(name="demo"),
                     kfp_bot_yaml=f"compile:\n  requirements: [\"{KFP18}\"]\n")
    first = RepositoryCompiler(compile_cache, sandbox=CountingSandbox())
    first.warm_up(name)  # never compiled: the bot's own kfp 2, which this compile does not take
    try:
        compiled = first.compile(repo.root, "demo", None, tmp_path / "first", repo=name)
    finally:
        first.close()
    assert compiled.sdk_version == "1.8.22"

    # The next head (here: after a restart of the service) warms kfp 1.8 up, and no kfp 2.
    repo.write("pipelines/demo/demo.py", SEED_PIPELINE.format(name="demo").replace('name="demo"', 'name="next"'))
    repo.commit("the next head")
    sandbox = CountingSandbox()
    compiler = RepositoryCompiler(compile_cache, sandbox=sandbox)
    compiler.warm_up(name)
    [warm] = compiler.drivers._drivers
    try:
        assert warm.key.environment == compile_cache / "envs" / kfp18_env.key
        assert warm.ready.wait(60)  # kfp 1.8 imported before the compile asks for it
        compiled = compiler.compile(repo.root, "demo", None, tmp_path / "next", repo=name)
    finally:
        compiler.close()

    assert compiled.sdk_version == "1.8.22" and compiled.name == "next", compiled
    assert len(sandbox.started) == 1  # the warm driver compiled it: nothing else started
    assert survivors(str(warm.work)) == []


def test_a_compile_with_no_interpreter_waiting_is_remembered_too(kfp2_repo: GitRepo, tmp_path: Path) -> None:
    """A run compiled long after its head arrived (its warm interpreter ended) still tells the next head."""
    from deploy.pipelines import RepositoryCompiler

    cache = tmp_path / "cache"
    compiler = RepositoryCompiler(cache, sandbox=CountingSandbox())
    compiler.compile(kfp2_repo.root, "demo", IMAGES, tmp_path / "out", repo="acme/demo")
    compiler.compile(kfp2_repo.root, "demo", IMAGES, tmp_path / "again")  # no repository named: nothing noted
    compiler.close()

    hints = remembered(cache, "acme/demo")
    assert hints is not None and [(key.python, key.environment) for key, _ in hints.drivers] == [(sys.executable, None)]
    assert len(list((cache / HINTS_DIR).iterdir())) == 1


def test_a_remembered_environment_no_longer_cached_is_not_warmed(kfp2_repo: GitRepo, tmp_path: Path) -> None:
    """The service never builds an environment for a guess: the default interpreter is warmed instead."""
    from deploy.pipelines import RepositoryCompiler

    cache = tmp_path / "cache"
    gone = cache / "envs" / "gone"
    remember(cache, "acme/demo", Sandbox(), {DriverKey(python=str(gone / "bin" / "python"), environment=gone): 600})
    compiler = RepositoryCompiler(cache, sandbox=CountingSandbox())
    compiler.warm_up("acme/demo")
    try:
        [warm] = compiler.drivers._drivers
        assert warm.key.environment is None and warm.key.python == sys.executable
    finally:
        compiler.close()
    assert not gone.exists()


def test_a_warmed_up_interpreter_nobody_takes_ends_when_idle(tmp_path: Path) -> None:
    sandbox = CountingSandbox()
    pool = DriverPool(sandbox)
    pool.start(DriverKey(python=sys.executable, environment=None), seconds=600, idle_seconds=1)
    [driver] = pool._drivers
    marker = str(driver.work)

    deadline = time.monotonic() + 30
    while (pool.waiting() or survivors(marker) or driver.work.exists()) and time.monotonic() < deadline:
        time.sleep(0.05)

    assert len(sandbox.started) == 1
    assert not pool.waiting() and pool._drivers == []
    assert survivors(marker) == [] and not driver.work.exists()
    pool.close()
