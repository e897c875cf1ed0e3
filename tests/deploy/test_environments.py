"""Cached compile environments: built once, atomically, with a readable error when pip fails."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.compiler.environments import MARKER, ensure_environment, environment_info, environment_python
from deploy.errors import EnvironmentBuildError
from pipeline_registry.compile_env import CompileEnvironment
from tests.deploy.conftest import EnvironmentBuild
from tests.support.envcache import index_unreachable


def test_default_environment_is_the_bots_own_interpreter(tmp_path: Path) -> None:
    python = environment_python(CompileEnvironment(), cache_dir=tmp_path, python="/opt/bot/python")

    assert python == "/opt/bot/python"
    assert list(tmp_path.iterdir()) == []


def test_options_are_not_accepted_as_requirements(tmp_path: Path) -> None:
    env = CompileEnvironment(("kfp==1.8.22", "--index-url=https://evil.example/simple"), (".kfp-bot.yaml",))

    with pytest.raises(EnvironmentBuildError) as caught:
        ensure_environment(env, cache_dir=tmp_path, python=sys.executable)

    assert "'--index-url=https://evil.example/simple' is not a requirement" in caught.value.message
    assert not (tmp_path / "envs" / env.key).exists()


def test_requirement_that_cannot_be_installed_shows_the_installer_output(tmp_path: Path) -> None:
    env = CompileEnvironment(("kfp==0.0.0-does-not-exist",), (".kfp-bot.yaml",))

    with pytest.raises(EnvironmentBuildError) as caught:
        ensure_environment(env, cache_dir=tmp_path, python=sys.executable)

    error = caught.value
    assert error.message.startswith("could not install the compile environment (kfp==0.0.0-does-not-exist) "
                                    "declared in .kfp-bot.yaml")
    assert "No matching distribution found for kfp==0.0.0-does-not-exist" in error.installer_tail
    assert "--- installer output (last lines) ---" in str(error)
    assert "compile requirements" in (error.hint or "")
    # Nothing half-built is left to be mistaken for an environment; the failure is remembered.
    assert sorted(p.name for p in (tmp_path / "envs").iterdir()) == [f"{env.key}.failed.json", f"{env.key}.lock"]


def test_a_failed_build_is_remembered_by_its_requirements(tmp_path: Path) -> None:
    env = CompileEnvironment(("kfp==0.0.0-does-not-exist",), ("pipelines/Pipfile",))
    with pytest.raises(EnvironmentBuildError):
        ensure_environment(env, cache_dir=tmp_path, python=sys.executable)
    record = tmp_path / "envs" / f"{env.key}.failed.json"
    stamp = record.stat().st_mtime_ns

    with pytest.raises(EnvironmentBuildError) as again:
        ensure_environment(env, cache_dir=tmp_path, python="/nonexistent/python")  # never run: not installed again

    assert again.value.message.startswith("could not install the compile environment (kfp==0.0.0-does-not-exist) "
                                          "declared in pipelines/Pipfile (remembered from an earlier attempt")
    assert "No matching distribution found" in again.value.installer_tail
    assert record.stat().st_mtime_ns == stamp


def test_build_that_runs_out_of_time_is_abandoned(tmp_path: Path) -> None:
    env = CompileEnvironment(("kfp==1.8.22",), ("pyproject.toml",))

    with pytest.raises(EnvironmentBuildError) as caught:
        ensure_environment(env, cache_dir=tmp_path, python=sys.executable, timeout_seconds=1)

    assert "did not finish within 1 s" in caught.value.message
    assert sorted(p.name for p in (tmp_path / "envs").iterdir()) == [f"{env.key}.lock"]


@pytest.mark.slow
def test_concurrent_compiles_build_the_environment_once(concurrent_kfp18_build: EnvironmentBuild) -> None:
    build = concurrent_kfp18_build
    target = build.cache / "envs" / build.env.key

    assert build.paths == (target, target)
    assert sorted(build.installs_seen) == [0, 1]  # pip ran in one thread only
    assert environment_info(target)["kfp_version"] == "1.8.22"
    assert (target / MARKER).is_file()
    # The crashed build's staging folder and the half-built environment were thrown away.
    assert not build.leftovers_before[0].exists()
    assert not [p for p in (build.cache / "envs").iterdir() if p.name.startswith(".building-")]


@pytest.mark.slow
def test_finished_environment_is_reused_without_installing(kfp18_env: CompileEnvironment, compile_cache: Path) -> None:
    lines: list[str] = []

    python = environment_python(kfp18_env, cache_dir=compile_cache, python=sys.executable, on_line=lines.append)

    assert lines == []
    assert python == str(compile_cache / "envs" / kfp18_env.key / "bin" / "python")
    version = subprocess.run([python, "-c", "import kfp; print(kfp.__version__)"], capture_output=True,
                             text=True, check=True).stdout.strip()
    assert version == "1.8.22"


@pytest.mark.slow
def test_a_kfp_patch_pin_that_does_not_install_falls_back_to_the_nearest_that_does(compile_cache: Path) -> None:
    offline = index_unreachable()
    if offline:
        pytest.skip(f"the fallback installs real kfp 1.8 releases: {offline}")
    from deploy.compiler.environments import resolve_environment

    env = CompileEnvironment(("kfp==1.8.12",), ("pyproject.toml",))  # needs PyYAML<6: no longer builds

    resolved = resolve_environment(env, cache_dir=compile_cache, python=sys.executable)

    used = subprocess.run([resolved.python, "-c", "import kfp; print(kfp.__version__)"], capture_output=True,
                          text=True, check=True).stdout.strip()
    assert used.startswith("1.8.") and int(used.split(".")[2]) > 12
    assert resolved.note == (f"kfp==1.8.12 (pinned in pyproject.toml) does not install on the bot's Python "
                             f"{platform.python_version()}: compiled with kfp {used}, the nearest 1.8 release that installs")
    assert (compile_cache / "envs" / f"{env.key}.failed.json").is_file()
    with pytest.raises(EnvironmentBuildError, match="pinned|declared in pyproject.toml"):
        resolve_environment(env, cache_dir=compile_cache, python=sys.executable, fallback=False)
