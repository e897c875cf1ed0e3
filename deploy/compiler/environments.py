"""Cached virtual environments holding a repository's own kfp SDK, built once per requirement set.

A repository that pins `kfp==1.8.22` must be compiled by kfp 1.8.22, not by the bot's kfp 2.
Installing it takes tens of seconds, so each distinct requirement set (`CompileEnvironment.key`)
gets one virtual environment under `<cache_dir>/envs/<key>`, reused by every later compile.
The build is serialised by a file lock (two compiles never build the same environment twice)
and atomic: it happens in a staging folder that is renamed into place only when the SDK
imports, so a half-built environment is never used. pip runs in the sandbox, because installing
from source distributions executes their code: it alone gets the network, writes only into the
staging folder, and keeps no cache shared between repositories (a setup.py could poison it).
Once built, an environment is mounted read-only into the compiles that use it.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import platform
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from deploy.compiler.sdk_install import nearest_that_installs, parse_index_versions
from deploy.errors import EnvironmentBuildError
from deploy.sandbox import Sandbox, SandboxResult
from pipeline_registry.compile_env import CompileEnvironment

BUILD_TIMEOUT_SECONDS = 900.0
MARKER = "kfp-bot-environment.json"
_STAGING_PREFIX = ".building-"
FAILED_SUFFIX = ".failed.json"
REMEMBER_FAILURE_SECONDS = 3600.0
_KFP_PIN = re.compile(r"kfp\s*==\s*(\d+\.\d+\.\d+)")


def environment_python(env: CompileEnvironment, *, cache_dir: Path, python: str,
                       timeout_seconds: float = BUILD_TIMEOUT_SECONDS,
                       on_line: Callable[[str], None] | None = None, sandbox: Sandbox | None = None) -> str:
    """The interpreter to compile with: `python` itself for the default environment, else the
    cached virtual environment's (built now if it does not exist yet)."""
    return resolve_environment(env, cache_dir=cache_dir, python=python, timeout_seconds=timeout_seconds,
                               on_line=on_line, fallback=False, sandbox=sandbox).python


@dataclass(frozen=True)
class ResolvedEnvironment:
    """The interpreter to compile with, and what to tell the user about how it was chosen."""

    python: str
    note: str | None = None


def resolve_environment(env: CompileEnvironment, *, cache_dir: Path, python: str,
                        timeout_seconds: float = BUILD_TIMEOUT_SECONDS,
                        on_line: Callable[[str], None] | None = None, fallback: bool = True,
                        sandbox: Sandbox | None = None) -> ResolvedEnvironment:
    """Like `environment_python`; when an exact kfp pin cannot be installed here (kfp 1.8.12 needs a
    PyYAML that no longer builds on Python 3.11) and `fallback` allows, the nearest release of the
    same minor version that installs is used instead, with a note saying so."""
    if env.is_default:
        return ResolvedEnvironment(python)
    sandbox = sandbox or Sandbox()
    build = functools.partial(ensure_environment, cache_dir=cache_dir, python=python,
                              timeout_seconds=timeout_seconds, on_line=on_line, sandbox=sandbox)
    try:
        return ResolvedEnvironment(str(build(env) / "bin" / "python"))
    except EnvironmentBuildError as failure:
        pin = kfp_pin(env)
        if not fallback or failure.transient or pin is None:
            raise
        first = failure
    index, pinned = pin

    def attempt(version: str) -> Path | None:
        candidate = CompileEnvironment((*env.requirements[:index], f"kfp=={version}", *env.requirements[index + 1:]),
                                       env.source_files)
        try:
            return build(candidate)
        except EnvironmentBuildError as exc:
            if exc.transient:
                raise first from None
            return None

    found = nearest_that_installs(pinned, available_versions(python, Path(cache_dir), sandbox), attempt)
    if found is None:
        raise first
    version, target = found
    return ResolvedEnvironment(str(target / "bin" / "python"),
                               fallback_note(pinned, version, env.source_files,
                                             f"the bot's Python {platform.python_version()}"))


def fallback_note(pinned: str, used: str, source_files: tuple[str, ...], where: str) -> str:
    """What the check says when an exact kfp pin was replaced by the nearest release that installs."""
    minor = ".".join(pinned.split(".")[:2])
    return (f"kfp=={pinned} (pinned in {', '.join(source_files) or 'the configuration'}) does not install on "
            f"{where}: compiled with kfp {used}, the nearest {minor} release that installs")


def kfp_pin(env: CompileEnvironment) -> tuple[int, str] | None:
    """(index, version) of an exact `kfp==A.B.C` requirement, the only pin a fallback replaces."""
    for index, requirement in enumerate(env.requirements):
        match = _KFP_PIN.fullmatch(requirement.strip())
        if match:
            return index, match.group(1)
    return None


def available_versions(python: str, cache_dir: Path, sandbox: Sandbox | None = None) -> list[str]:
    """The kfp releases on the package index (`pip index versions`), cached for an hour."""
    record = Path(cache_dir) / "envs" / "kfp-versions.json"
    try:
        if time.time() - record.stat().st_mtime < REMEMBER_FAILURE_SECONDS:
            return list(json.loads(record.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        pass
    with tempfile.TemporaryDirectory(prefix="kfp-bot-index-") as tmp:
        sandbox = sandbox or Sandbox()  # pip asks the package index: the network, nothing writable but tmp
        result = sandbox.run([python, "-m", "pip", "index", "versions", "kfp", "--disable-pip-version-check"],
                             cwd=Path(tmp), limits=sandbox.limits(60, None), writable=[Path(tmp)], network=True)
    versions = parse_index_versions(result.stdout)
    if versions:
        record.write_text(json.dumps(versions), encoding="utf-8")
    return versions


def ensure_environment(env: CompileEnvironment, *, cache_dir: Path, python: str,
                       timeout_seconds: float = BUILD_TIMEOUT_SECONDS,
                       on_line: Callable[[str], None] | None = None, sandbox: Sandbox | None = None) -> Path:
    """The folder of the virtual environment for `env`, building it first when needed."""
    envs = Path(cache_dir) / "envs"
    envs.mkdir(parents=True, exist_ok=True)
    target = envs / env.key
    if is_complete(target):
        return target
    with _locked(envs / f"{env.key}.lock"):
        if is_complete(target):  # another process built it while we waited for the lock
            return target
        remembered = remembered_failure(envs, env)
        if remembered is not None:  # the same requirements failed moments ago: do not install again
            raise remembered
        _remove_leftovers(envs, env.key)
        staging = Path(tempfile.mkdtemp(prefix=f"{_STAGING_PREFIX}{env.key}-", dir=envs))
        try:
            _build(staging, env, python, sandbox or Sandbox(), timeout_seconds, on_line)
            staging.rename(target)
        except EnvironmentBuildError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if not exc.transient:
                _remember(envs, env, exc)
            raise
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return target


def remembered_failure(envs: Path, env: CompileEnvironment) -> EnvironmentBuildError | None:
    """The failure of an earlier build of the same requirements, if recent: every pipeline of a
    check (and every push) would otherwise install the same broken pins again."""
    record = envs / f"{env.key}{FAILED_SUFFIX}"
    try:
        if time.time() - record.stat().st_mtime > REMEMBER_FAILURE_SECONDS:
            return None
        data = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    minutes = max(1, int(REMEMBER_FAILURE_SECONDS // 60))
    return EnvironmentBuildError(f"{data.get('message', 'the compile environment could not be installed')} "
                                 f"(remembered from an earlier attempt; it is tried again after {minutes} minutes "
                                 "or when the pins change)", installer_tail=str(data.get("installer_tail", "")))


def _remember(envs: Path, env: CompileEnvironment, exc: EnvironmentBuildError) -> None:
    message = exc.message.split("\n--- installer output", 1)[0]
    record = envs / f"{env.key}{FAILED_SUFFIX}"
    record.write_text(json.dumps({"message": message, "installer_tail": exc.installer_tail,
                                  "requirements": list(env.requirements)}), encoding="utf-8")


def is_complete(target: Path) -> bool:
    """True when `target` is a finished environment (its marker is written last, before the rename)."""
    return (target / MARKER).is_file() and (target / "bin" / "python").exists()


def environment_info(target: Path) -> dict:
    """What the marker of a finished environment records: requirements and kfp version."""
    return json.loads((target / MARKER).read_text(encoding="utf-8"))


@contextlib.contextmanager
def _locked(lock_file: Path) -> Iterator[None]:
    with open(lock_file, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove_leftovers(envs: Path, key: str) -> None:
    """Staging folders of builds that crashed, and an incomplete target, are never reused."""
    for stale in envs.glob(f"{_STAGING_PREFIX}{key}-*"):
        shutil.rmtree(stale, ignore_errors=True)
    target = envs / key
    if target.exists():
        shutil.rmtree(target, ignore_errors=True)


def _build(staging: Path, env: CompileEnvironment, python: str, sandbox: Sandbox,
           timeout_seconds: float, on_line: Callable[[str], None] | None) -> None:
    declared_in = ", ".join(env.source_files) or "the configuration"
    what = f"the compile environment ({', '.join(env.requirements)}) declared in {declared_in}"
    bad = [r for r in env.requirements if r.strip().startswith("-") or not r.strip()]
    if bad:
        raise EnvironmentBuildError(f"cannot install {what}: {', '.join(map(repr, bad))} is not a requirement "
                                    "(options such as --index-url are not accepted)")
    deadline = time.monotonic() + timeout_seconds

    def step(argv: list[str], env_vars: dict[str, str] | None = None, network: bool = False) -> SandboxResult:
        remaining = max(deadline - time.monotonic(), 1.0)
        result = sandbox.run(argv, cwd=staging, limits=sandbox.limits(remaining, None), writable=[staging],
                             network=network, env=env_vars, on_line=on_line)
        if result.timed_out:
            raise EnvironmentBuildError(f"installing {what} did not finish within {timeout_seconds:g} s",
                                        installer_tail=result.tail(20), transient=True)
        return result

    created = step([python, "-m", "venv", str(staging)])
    if not created.ok:
        raise EnvironmentBuildError(f"could not create a virtual environment for {what}",
                                    installer_tail=created.tail(20))
    venv_python = str(staging / "bin" / "python")
    installed = step([venv_python, "-m", "pip", "install", "--no-input", "--disable-pip-version-check",
                      *env.requirements], {"PIP_NO_CACHE_DIR": "1"}, network=True)
    if not installed.ok:
        raise EnvironmentBuildError(f"could not install {what}", installer_tail=installed.tail(20))
    probe = step([venv_python, "-c", "import kfp; print(kfp.__version__)"])
    if not probe.ok:
        raise EnvironmentBuildError(f"installed {what}, but the kfp SDK cannot be imported from it",
                                    installer_tail=probe.tail(20))
    marker = {"requirements": list(env.requirements), "source_files": list(env.source_files),
              "kfp_version": probe.stdout.strip().splitlines()[-1] if probe.stdout.strip() else ""}
    (staging / MARKER).write_text(json.dumps(marker, indent=2), encoding="utf-8")
