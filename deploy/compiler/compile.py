"""Compiling one pipeline of an untrusted repository, safely, with its own kfp SDK.

The steps: find the pipeline file, pick the compile environment (the repository's pinned kfp in
a cached virtual environment, or the bot's own kfp 2), copy the repository to a scratch folder
(the user's working tree and the bot's checkout are never modified), put the freshly built
images into the copied component specs, then run `driver.py` in the sandbox with the
configured time and memory limits. The driver's JSON verdict becomes either a
`CompiledPipeline` or a `CompileError` that names the pipeline file and says what to do.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from deploy.compiler.environments import ResolvedEnvironment, resolve_environment
from deploy.compiler.failures import describe_failure, no_result_failure, timeout_failure
from deploy.compiler.images import substitute_images
from deploy.compiler.package import PACKAGE_SUFFIXES, CompiledPipeline, load_package
from deploy.compiler.scratch import NOT_COPIED, ScratchTree, copy_tree
from deploy.errors import CompileError
from deploy.sandbox import Sandbox, SandboxResult
from pipeline_registry.compile_env import CompileEnvironment, pipeline_environment
from pipeline_registry.models import Pipeline
from pipeline_registry.python_path import installed_packages, package_roots
from pipeline_registry.repo_config import CompileMode, RepoConfig

DRIVER = Path(__file__).with_name("driver.py")

def compile_pipeline(repo_dir: Path, pipeline: Pipeline, *, config: RepoConfig, images: Mapping[str, str],
                     out_dir: Path, cache_dir: Path, python: str = sys.executable,
                     on_line: Callable[[str], None] | None = None,
                     scratch: ScratchTree | None = None, sandbox: Sandbox | None = None) -> CompiledPipeline:
    """Compile `pipeline` of the repository at `repo_dir` into `out_dir`, with `images`
    (component folder -> image reference) substituted into the component specs first.

    `scratch` is a copy of the repository shared by the compiles of one check (reset after this
    one); without it the repository is copied for this compile alone. The repository's code runs
    in `sandbox` (strict by default): it sees its scratch copy and its work folder (writable) and
    the compile environment (read-only), nothing else of this machine."""
    sandbox = sandbox or Sandbox()
    sandbox.check()  # refuse before building anything when repository code may not run
    repo_dir = Path(repo_dir).resolve()
    rel_file = pipeline_file(repo_dir, pipeline, config)
    source = (repo_dir / rel_file).read_text(encoding="utf-8", errors="replace")
    mode = resolve_mode(config.compile.mode, source, rel_file)
    env = pipeline_environment(lambda path: read_repo_file(repo_dir, path), config, pipeline)
    resolved = resolve_environment(env, cache_dir=Path(cache_dir), python=python, on_line=on_line,
                                   fallback=config.compile.fallback_to_nearest_patch, sandbox=sandbox)
    interpreter = resolved.python
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shared = scratch
    with tempfile.TemporaryDirectory(prefix="kfp-bot-compile-", ignore_cleanup_errors=True) as tmp, \
            _resetting(shared):
        work = Path(tmp)
        scratch_dir = work / "repo" if shared is None else shared.root
        if shared is None:
            copy_tree(repo_dir, scratch_dir)
        substitute_images(scratch_dir, images)
        driver = work / "driver" / "kfp_bot_compile_driver.py"
        driver.parent.mkdir()
        shutil.copyfile(DRIVER, driver)
        before = _snapshot(scratch_dir)
        result_file = work / "result.json"
        argv = [interpreter, str(driver), "--mode", mode.value, "--file", rel_file,
                "--result", str(result_file), "--output", str(work / "out"),
                *driver_options(pipeline, config, scratch_dir)]
        limits = sandbox.limits(config.compile.timeout_seconds, config.compile.memory_mb)
        environment = [Path(interpreter).parent.parent] if not env.is_default else []
        writable = [work] if shared is None else [work, scratch_dir]
        proc = sandbox.run(argv, cwd=scratch_dir, limits=limits, writable=writable, read_only=environment,
                           env=dict(config.compile.env), on_line=on_line)
        produced_in = work / "out" if mode is CompileMode.IMPORT else scratch_dir
        return finish_compile(pipeline.name, rel_file, mode, proc, _read_verdict(result_file), produced_in=produced_in,
                              before=before, out_dir=out_dir, env=env, resolved=resolved, config=config,
                              images=images, repo_dir=repo_dir)


def finish_compile(name: str, rel_file: str, mode: CompileMode, proc: SandboxResult, verdict: dict[str, Any] | None,
                   *, produced_in: Path, before: dict[str, tuple[int, int]], out_dir: Path, env: CompileEnvironment,
                   resolved: ResolvedEnvironment, config: RepoConfig, images: Mapping[str, str],
                   repo_dir: Path) -> CompiledPipeline:
    """A sandboxed compile's outcome (its process and the driver's verdict) as the package stored in
    `out_dir`, or the `CompileError` a user can act on. The package is found on disk, never taken
    from the verdict: in `produced_in` (import mode), or among the package files that changed
    there since `before` (script mode). Shared by the single and the batch compile."""
    if proc.timed_out:
        raise timeout_failure(rel_file, config.compile.timeout_seconds, proc.tail())
    if verdict is None:
        raise no_result_failure(rel_file, proc, config.compile.memory_mb)
    if not verdict.get("ok"):
        raise describe_failure(rel_file, verdict, env=env, config=config, output=proc.tail(40),
                               local_package=lambda package: local_package(repo_dir, package))
    if mode is CompileMode.IMPORT:
        produced = _driver_package(produced_in, rel_file)
    else:
        produced = _written_package(produced_in, before, rel_file, name)
    compiled = _store(produced, out_dir, name, rel_file)
    if not compiled.sdk_version and verdict.get("sdk_version"):
        compiled = dataclasses.replace(compiled, sdk_version=str(verdict["sdk_version"]))
    if resolved.note:
        compiled = dataclasses.replace(compiled, notes=(*compiled.notes, resolved.note))
    check_images(compiled, images, rel_file)
    return compiled


@contextlib.contextmanager
def _resetting(scratch: ScratchTree | None) -> Iterator[None]:
    try:
        yield
    finally:
        if scratch is not None:
            scratch.reset()


def driver_options(pipeline: Pipeline, config: RepoConfig, root: Path) -> list[str]:
    """The chosen pipeline function and the repository's import path (`compile.python_path`)."""
    options = ["--function", pipeline.function] if pipeline.function else []
    for folder in python_path_folders(config, root):
        options += ["--python-path", folder]
    return options


def local_package(root: Path, name: str) -> str | None:
    """Where the repository holds a package or module named `name` (None when it does not)."""
    if not name.isidentifier():
        return None
    for pattern in (f"**/{name}/__init__.py", f"**/{name}.py"):
        for match in root.glob(pattern):
            relative = match.relative_to(root)
            if not any(part.startswith(".") or part in NOT_COPIED for part in relative.parts):
                return relative.parent.as_posix() if match.name == "__init__.py" else relative.as_posix()
    return None


def python_path_folders(config: RepoConfig, root: Path) -> list[str]:
    """`compile.python_path` patterns expanded to the repository folders they name, in order, then
    the import roots of packages the repository installs from itself (`-e components/x`, path
    dependencies): the repository runs with them installed, and the dependency rule counts them."""
    found: list[str] = []
    for pattern in config.compile.python_path:
        for match in sorted(root.glob(pattern)):
            relative = match.relative_to(root).as_posix()
            if match.is_dir() and _inside(root, relative) and relative not in found:
                found.append(relative)
    return found + [folder for folder in _installed_roots(root) if folder not in found]


def _installed_roots(root: Path) -> tuple[str, ...]:
    paths: set[str] = set()
    dirs: set[str] = set()
    for current, subdirs, files in os.walk(root):
        subdirs[:] = [d for d in subdirs if not d.startswith(".") and d not in NOT_COPIED]
        relative = Path(current).relative_to(root).as_posix()
        prefix = "" if relative == "." else f"{relative}/"
        if prefix:
            dirs.add(relative)
        paths.update(prefix + name for name in files)

    def read_many(files: list[str]) -> dict[str, bytes]:
        return {path: (root / path).read_bytes() for path in files
                if _inside(root, path) and not (root / path).is_symlink() and (root / path).is_file()}

    return package_roots(installed_packages(frozenset(paths), read_many), frozenset(dirs))


def pipeline_file(repo_dir: Path, pipeline: Pipeline, config: RepoConfig) -> str:
    """The repository-relative pipeline file to compile (the `.kfp-bot.yaml` override wins)."""
    override = config.override(pipeline.name).pipeline_file
    candidates = [override, f"{pipeline.path}/{override}"] if override else [pipeline.pipeline_file]
    for candidate in candidates:
        if candidate and _inside(repo_dir, candidate) and (repo_dir / candidate).is_file():
            return Path(candidate).as_posix()
    where = override or pipeline.path
    raise CompileError(where, f"no pipeline file to compile for pipeline '{pipeline.name}'",
                       hint=f"add {pipeline.path}/{pipeline.name}.py (or pipeline.py), or set "
                            f"pipelines.{pipeline.name}.pipeline_file in .kfp-bot.yaml")


def resolve_mode(mode: CompileMode, source: str, rel_file: str) -> CompileMode:
    """AUTO becomes SCRIPT when the file compiles itself in an `if __name__ == "__main__":` block."""
    try:
        tree = ast.parse(source, filename=rel_file)
    except SyntaxError as exc:
        raise CompileError(rel_file, f"line {exc.lineno}: invalid syntax: {exc.msg}",
                           hint="fix the Python syntax error", output=(exc.text or "").rstrip()) from None
    except (ValueError, RecursionError, MemoryError):
        return CompileMode.IMPORT if mode is CompileMode.AUTO else mode
    if mode is not CompileMode.AUTO:
        return mode
    compilers = {node.name for node in tree.body
                 if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _calls_compiler(node, set())}
    for node in tree.body:
        if isinstance(node, ast.If) and _is_main_guard(node.test) and _calls_compiler(node, compilers):
            return CompileMode.SCRIPT
    return CompileMode.IMPORT


def _is_main_guard(test: ast.expr) -> bool:
    if not isinstance(test, ast.Compare) or len(test.comparators) != 1:
        return False
    sides = [test.left, test.comparators[0]]
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    mains = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    return bool(names and mains)


def _calls_compiler(node: ast.AST, helpers: set[str]) -> bool:
    for sub in ast.walk(node):
        if not isinstance(sub, ast.Call):
            continue
        func = sub.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if (name == "compile" and isinstance(func, ast.Attribute)) or "Compiler" in name or name in helpers:
            return True
    return False


def _inside(root: Path, relative: str) -> bool:
    return (root / relative).resolve().is_relative_to(root)


def read_repo_file(repo_dir: Path, relative: str) -> bytes | None:
    """The bytes of a repository file (None when missing or outside the repository)."""
    path = repo_dir / relative
    if not _inside(repo_dir, relative) or not path.is_file():
        return None
    return path.read_bytes()


def _read_verdict(result_file: Path) -> dict[str, Any] | None:
    try:
        verdict = json.loads(result_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return verdict if isinstance(verdict, dict) else None


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Package-like files under `root` with their modification time and size."""
    found = {}
    for path in root.rglob("*"):
        if path.name.endswith(PACKAGE_SUFFIXES) and path.is_file() and not path.is_symlink():
            stat = path.stat()
            found[path.relative_to(root).as_posix()] = (stat.st_mtime_ns, stat.st_size)
    return found


def _written_package(scratch: Path, before: dict[str, tuple[int, int]], rel_file: str, name: str) -> Path:
    """The package a script wrote: the new or changed file that parses as a pipeline package."""
    after = _snapshot(scratch)
    changed = sorted(p for p, stamp in after.items() if before.get(p) != stamp)
    packages = []
    for relative in changed:
        try:
            load_package(scratch / relative, name)
        except CompileError:
            continue
        packages.append(relative)
    if len(packages) > 1:
        stems = {name, Path(rel_file).stem}
        preferred = [p for p in packages if _stem(p) in stems]
        packages = preferred if len(preferred) == 1 else packages
    if not packages:
        wrote = f" (it wrote {', '.join(changed)}, none of them a pipeline package)" if changed else ""
        raise CompileError(rel_file, f"ran as a script but wrote no pipeline package{wrote}",
                           hint=f"make its __main__ block compile into the working directory, e.g. "
                                f"Compiler().compile(pipeline_func=..., package_path=\"{name}.yaml\"), "
                                f"or set compile.mode: import in .kfp-bot.yaml")
    if len(packages) > 1:
        raise CompileError(rel_file, f"ran as a script and wrote several pipeline packages: {', '.join(packages)}",
                           hint=f"write one package, named after the pipeline ({name}.yaml or {name}.json)")
    return scratch / packages[0]


def _driver_package(out: Path, rel_file: str) -> Path:
    """The package the driver compiled in import mode (found on disk: the verdict is not trusted)."""
    found = [p for p in (out / "pipeline.yaml", out / "pipeline.json") if p.is_file() and not p.is_symlink()]
    if len(found) != 1:
        raise CompileError(rel_file, "the compiler reported success but wrote no pipeline package",
                           hint="see the compile output")
    return found[0]


def _stem(relative: str) -> str:
    name = Path(relative).name
    for suffix in sorted(PACKAGE_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _store(produced: Path, out_dir: Path, name: str, rel_file: str) -> CompiledPipeline:
    suffix = next(s for s in sorted(PACKAGE_SUFFIXES, key=len, reverse=True) if produced.name.endswith(s))
    target = out_dir / f"{name}{suffix}"
    shutil.copyfile(produced, target)
    try:
        return load_package(target, name)
    except CompileError as exc:
        raise CompileError(rel_file, f"the compiler wrote an unreadable package: {exc.message}") from None


def check_images(compiled: CompiledPipeline, images: Mapping[str, str], rel_file: str) -> None:
    """Fail when none of the bot's images reached the package: the components are not loaded
    from their component.yaml, so a run would silently use stale images. A component folder
    the pipeline does not use (yet) is fine as long as some image made it in."""
    missing = sorted(f"{ref} ({folder})" for folder, ref in images.items() if ref not in compiled.images)
    if images and len(missing) == len(images):
        raise CompileError(rel_file, f"the compiled pipeline does not use the built image(s) {', '.join(missing)}",
                           hint="load each component from its component.yaml (load_component_from_file or "
                                "ComponentStore) so that the built image can be put into the pipeline")

