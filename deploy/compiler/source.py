"""The repository side of a compile: which file to compile, in which mode, on which import path.

Read from the repository's files (its scratch copy or its checkout) before anything runs: the
pipeline file (`.kfp-bot.yaml` may override it), whether the file compiles itself in a `__main__`
block (script mode) or is imported (import mode), and the folders the driver puts on `sys.path`.
Shared by the local compile, the batch compile and the Cloud Build compile step.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

from deploy.compiler.scratch import NOT_COPIED
from deploy.errors import CompileError
from pipeline_registry.models import Pipeline
from pipeline_registry.python_path import installed_packages, package_roots
from pipeline_registry.repo_config import CompileMode, RepoConfig


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
