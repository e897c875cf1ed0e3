"""Which kfp SDK a repository compiles with: its declared compile environment.

Repositories pin their own SDK (the seed pins kfp 1.8 in `pyproject.toml`). In order of
precedence the environment comes from `.kfp-bot.yaml` (`compile.requirements` or
`compile.requirements_file`), then from the root `pyproject.toml` (PEP 621 or Poetry) or
`requirements.txt` when they declare `kfp`. From project files only the pipeline SDK's own
requirements are taken (kfp and its companions), not the whole project: compiling needs the
SDK, not the training stack. With nothing declared the bot's own kfp 2.x is used.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass

from pipeline_registry.errors import ConfigError
from pipeline_registry.models import Pipeline
from pipeline_registry.repo_config import CONFIG_FILE, RepoConfig

# Distributions that pipeline files import at compile time.
SDK_DISTRIBUTIONS = ("kfp", "kfp-pipeline-spec", "kfp-server-api", "kfp-kubernetes",
                     "google-cloud-pipeline-components")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


@dataclass(frozen=True)
class CompileEnvironment:
    """Requirements to install for compiling, and the files they were read from."""

    requirements: tuple[str, ...] = ()
    source_files: tuple[str, ...] = ()

    @property
    def is_default(self) -> bool:
        """True when nothing is declared and the bot's own kfp is used."""
        return not self.requirements

    @property
    def key(self) -> str:
        """Content key of the environment, for the cached virtual environment's folder."""
        digest = hashlib.sha256("\n".join(sorted(self.requirements)).encode()).hexdigest()
        return digest[:20]


def compile_environment(read: Callable[[str], bytes | None], config: RepoConfig,
                        folder: str = "") -> CompileEnvironment:
    """Work out the compile environment from repository files read through `read(path)`.

    `folder` is where the pipeline file is: the project files of its nearest folder that declares
    the SDK win (a sub-project pinning its own kfp), up to the repository root.
    """
    settings = config.compile
    if settings.requirements:
        return CompileEnvironment(tuple(settings.requirements), (CONFIG_FILE,))
    if settings.requirements_file:
        text = read(settings.requirements_file)
        if text is None:
            raise ConfigError(CONFIG_FILE, f"file '{settings.requirements_file}' does not exist",
                              field="compile.requirements_file", hint="fix the path or remove the key")
        return CompileEnvironment(_requirement_lines(text.decode(errors="replace")),
                                  (CONFIG_FILE, settings.requirements_file))
    if not settings.use_project_files:
        return CompileEnvironment()
    folders = [folder.strip("/")]
    while folders[-1]:
        folders.append(posixpath.dirname(folders[-1]))
    for current in folders:
        found = _project_environment(read, current)
        if found is not None:
            return found
    return CompileEnvironment()


def pipeline_environment(read: Callable[[str], bytes | None], config: RepoConfig,
                         pipeline: Pipeline) -> CompileEnvironment:
    """The compile environment of one pipeline: the nearest folder above its file (its own folder
    first, for the template's `pipelines/<name>/`) whose project files pin the SDK, else the
    repository's. Sub-projects pinning their own kfp keep it, whatever the layout."""
    folder = posixpath.dirname(pipeline.pipeline_file) if pipeline.pipeline_file else pipeline.path
    return compile_environment(read, config, folder)


def _project_environment(read: Callable[[str], bytes | None], folder: str) -> CompileEnvironment | None:
    """The SDK requirements the project files of one folder declare (None: they declare none)."""
    def at(name: str) -> str:
        return f"{folder}/{name}" if folder else name

    pyproject = read(at("pyproject.toml"))
    if pyproject is not None:
        found = _from_pyproject(pyproject, at("pyproject.toml"))
        if found:
            lock = read(at("poetry.lock"))
            locked = _locked_versions(lock, at("poetry.lock")) if lock is not None else {}
            pinned = tuple(_pin(r, locked) for r in found)
            files = (at("pyproject.toml"), at("poetry.lock")) if locked else (at("pyproject.toml"),)
            return CompileEnvironment(pinned, files)
    pipfile = read(at("Pipfile"))
    if pipfile is not None:
        found = _from_pipfile(pipfile, at("Pipfile"))
        if found:
            lock = read(at("Pipfile.lock"))
            locked = _pipfile_locked(lock) if lock is not None else {}
            pinned = tuple(_pin(r, locked) for r in found)
            files = (at("Pipfile"), at("Pipfile.lock")) if locked else (at("Pipfile"),)
            return CompileEnvironment(pinned, files)
    requirements = read(at("requirements.txt"))
    if requirements is not None:
        found = tuple(r for r in _requirement_lines(requirements.decode(errors="replace")) if _is_sdk(r))
        if found:
            return CompileEnvironment(found, (at("requirements.txt"),))
    return None


def _requirement_lines(text: str) -> tuple[str, ...]:
    lines = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith(("#", "-")):
            lines.append(line)
    return tuple(lines)


def _is_sdk(requirement: str) -> bool:
    match = _NAME.match(requirement)
    return match is not None and _normalise(match.group(1)) in SDK_DISTRIBUTIONS


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _from_pyproject(data: bytes, file: str = "pyproject.toml") -> tuple[str, ...]:
    import tomllib  # only for repositories that have these files: `plan` starts without it

    try:
        doc = tomllib.loads(data.decode(errors="replace"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, f"invalid TOML: {exc}", hint="fix the TOML syntax") from None
    pep621 = doc.get("project", {}).get("dependencies", []) or []
    found = [r for r in pep621 if isinstance(r, str) and _is_sdk(r)]
    poetry = doc.get("tool", {}).get("poetry", {}).get("dependencies", {}) or {}
    for name, spec in poetry.items():
        if _normalise(name) in SDK_DISTRIBUTIONS:
            version = spec.get("version", "*") if isinstance(spec, dict) else str(spec)
            found.append(f"{name}{poetry_constraint(version)}")
    return tuple(found)


def _from_pipfile(data: bytes, file: str) -> tuple[str, ...]:
    """SDK requirements of a Pipfile's `[packages]` (`kfp = "==1.8.22"`, `{version = "*"}`)."""
    import tomllib  # only for repositories that have these files: `plan` starts without it

    try:
        doc = tomllib.loads(data.decode(errors="replace"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, f"invalid TOML: {exc}", hint="fix the TOML syntax") from None
    found = []
    for name, spec in (doc.get("packages", {}) or {}).items():
        if _normalise(name) in SDK_DISTRIBUTIONS:
            version = spec.get("version", "*") if isinstance(spec, dict) else str(spec)
            found.append(name if version.strip() in ("", "*") else f"{name}{version.strip()}")
    return tuple(found)


def _pipfile_locked(lock: bytes) -> dict[str, str]:
    """SDK versions pinned by `Pipfile.lock` (JSON: `default.<name>.version` = `==1.8.22`)."""
    try:
        doc = json.loads(lock.decode(errors="replace"))
    except ValueError:
        return {}
    default = doc.get("default", {}) if isinstance(doc, dict) else {}
    return {_normalise(name): str(spec["version"]).lstrip("=") for name, spec in default.items()
            if isinstance(spec, dict) and str(spec.get("version", "")).startswith("==")
            and _normalise(name) in SDK_DISTRIBUTIONS}


def _locked_versions(lock: bytes, file: str = "poetry.lock") -> dict[str, str]:
    """SDK versions pinned by `poetry.lock`: a caret range alone may pick a release the
    repository never used (kfp 1.8.24 dropped `kfp.v2`)."""
    import tomllib  # only for repositories that have these files: `plan` starts without it

    try:
        doc = tomllib.loads(lock.decode(errors="replace"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, f"invalid TOML: {exc}", hint="regenerate it with `poetry lock`") from None
    return {_normalise(str(p.get("name", ""))): str(p["version"]) for p in doc.get("package", [])
            if isinstance(p, dict) and "version" in p and _normalise(str(p.get("name", ""))) in SDK_DISTRIBUTIONS}


def _pin(requirement: str, locked: dict[str, str]) -> str:
    match = _NAME.match(requirement)
    if match is None:
        return requirement
    version = locked.get(_normalise(match.group(1)))
    return f"{match.group(1)}=={version}" if version else requirement


def poetry_constraint(spec: str) -> str:
    """Translate a Poetry version constraint (`^1.8.0`, `~1.8`, `1.8.*`, `>=1,<2`) to pip syntax."""
    spec = spec.strip()
    if spec in ("", "*"):
        return ""
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    return ",".join(_one_constraint(p) for p in parts)


def _one_constraint(part: str) -> str:
    if part.startswith("^"):
        numbers = _numbers(part[1:])
        first_nonzero = next((i for i, n in enumerate(numbers) if n != 0), len(numbers) - 1)
        upper = numbers[: first_nonzero + 1]
        upper[-1] += 1
        return f">={part[1:]},<{'.'.join(map(str, upper))}"
    if part.startswith("~") and not part.startswith("~="):
        numbers = _numbers(part[1:])
        upper = numbers[:2] if len(numbers) >= 2 else numbers[:1]
        upper[-1] += 1
        return f">={part[1:]},<{'.'.join(map(str, upper))}"
    if part[0].isdigit():
        return f"=={part}"
    return part


def _numbers(version: str) -> list[int]:
    numbers = [int(n) for n in re.findall(r"\d+", version)[:3]]
    return numbers or [0]
