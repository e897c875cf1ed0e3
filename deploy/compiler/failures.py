"""Turning what went wrong inside the compile sandbox into a `CompileError` a user can act on.

The driver reports a failure as a JSON verdict with a `kind` (see `FailureKind`), the message of
the exception, and where in the repository it happened. Here that becomes one sentence naming the
pipeline file (and line), plus a hint: most often the hint that matters is that the file uses a
kfp 1.x API and the repository should declare the SDK it is written for.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from typing import Any

from deploy.errors import CompileError
from deploy.sandbox import SandboxResult
from pipeline_registry.compile_env import CompileEnvironment
from pipeline_registry.repo_config import CONFIG_FILE, RepoConfig


class FailureKind(enum.Enum):
    """The `kind` values that driver.py writes into a failed verdict."""

    SYNTAX = "syntax"
    IMPORT = "import"
    EXCEPTION = "exception"
    MEMORY = "memory"
    NO_PIPELINE = "no-pipeline"
    SEVERAL_PIPELINES = "several-pipelines"
    EXIT = "exit"
    NO_SDK = "no-sdk"
    UNREADABLE = "unreadable"
    INTERNAL = "internal"


_V1_API = re.compile(r"kfp\.(gcp|v2|dsl\.ContainerOp|compiler\.main)|ContainerOp|ComponentStore|"
                     r"has no attribute|cannot import name|create_component_from_func|func_to_container_op")
_CANNOT_IMPORT = re.compile(r"cannot import name '(\w+)' from '([\w.]+)'")
_MEMORY_SIGNS = ("MemoryError", "Cannot allocate memory", "bad_alloc", "out of memory")
_DECLARE_SDK = (f'declare the SDK this repository is written for, e.g. compile: {{requirements: ["kfp==1.8.22"]}} '
                f'in {CONFIG_FILE}, or kfp under [tool.poetry.dependencies] in pyproject.toml')


def timeout_failure(rel_file: str, seconds: float, output: str) -> CompileError:
    """The sandbox killed the compile after `seconds`."""
    return CompileError(rel_file, f"did not finish within {seconds:g} s",
                        hint="look for an endless loop or slow work at import time (data loading, network calls); "
                             f"raise compile.timeout_seconds in {CONFIG_FILE} if compiling really takes longer",
                        output=output)


def no_result_failure(rel_file: str, proc: SandboxResult, memory_mb: int) -> CompileError:
    """The sandboxed process ended without writing its verdict (killed, crashed, or os._exit)."""
    output = proc.tail(40)
    if any(sign in proc.stderr for sign in _MEMORY_SIGNS):
        return memory_failure(rel_file, memory_mb, output)
    return CompileError(rel_file, f"the compiler process ended without a result (exit status {proc.returncode})",
                        hint="see the compile output below", output=output)


def memory_failure(rel_file: str, memory_mb: int, output: str = "") -> CompileError:
    """The compile hit the address-space limit."""
    return CompileError(rel_file, f"ran out of memory (limit {memory_mb} MB)",
                        hint="avoid loading data or models when the pipeline file is imported; raise "
                             f"compile.memory_mb in {CONFIG_FILE} if compiling really needs more", output=output)


def describe_failure(rel_file: str, verdict: dict[str, Any], *, env: CompileEnvironment, config: RepoConfig,
                     output: str, local_package: Callable[[str], str | None] = lambda name: None) -> CompileError:
    """The `CompileError` for a failed verdict from driver.py."""
    try:
        kind = FailureKind(verdict.get("kind"))
    except ValueError:
        kind = FailureKind.INTERNAL
    message = str(verdict.get("message") or "failed")
    details = str(verdict.get("traceback") or "") or output
    where = _location(rel_file, verdict)
    sdk = str(verdict.get("sdk_version") or "")
    if kind is FailureKind.SYNTAX:
        return CompileError(rel_file, f"{where}{message}", hint="fix the Python syntax error",
                            output=str(verdict.get("text") or ""))
    if kind is FailureKind.IMPORT:
        return CompileError(rel_file, f"{where}import failed: {message}",
                            hint=_import_hint(str(verdict.get("module") or ""), message, env, sdk,
                                              local_package(str(verdict.get("module") or "").split(".")[0])),
                            output=details)
    if kind is FailureKind.EXCEPTION:
        phase = verdict.get("phase")
        text = {"import": f"failed while being imported: {message}",
                "compile": f"the kfp compiler failed: {message}"}.get(str(phase), f"raised {message}")
        hint = (_v1_hint(sdk) if env.is_default and _V1_API.search(message) and "kfp" in details
                else "fix the error shown; the full traceback is in the compile output")
        return CompileError(rel_file, f"{where}{text}", hint=hint, output=details)
    if kind is FailureKind.MEMORY:
        return memory_failure(rel_file, config.compile.memory_mb, output)
    if kind is FailureKind.NO_PIPELINE:
        how = ("decorate the pipeline function with @dsl.pipeline" if sdk.startswith("2")
               else "decorate the pipeline function with @dsl.pipeline, or name it `pipeline` or `<name>_pipeline`")
        return CompileError(rel_file, f"defines no pipeline function (compiled with kfp {sdk or '?'})",
                            hint=how, output=output)
    if kind is FailureKind.SEVERAL_PIPELINES:
        return CompileError(rel_file, message,
                            hint=f"choose the one to compile with `function:` in its pipeline_files entry of "
                                 f"{CONFIG_FILE} (each is a pipeline unless one is chosen), or keep one pipeline "
                                 "function per pipeline file", output=output)
    if kind is FailureKind.NO_SDK:
        return CompileError(rel_file, message, hint="add kfp to the compile requirements: " + _DECLARE_SDK,
                            output=output)
    if kind is FailureKind.EXIT:
        return CompileError(rel_file, message, hint="see the compile output below", output=output)
    return CompileError(rel_file, message, hint="see the compile output below", output=output)


def _location(rel_file: str, verdict: dict[str, Any]) -> str:
    where, line = verdict.get("where"), verdict.get("line")
    if not line:
        return ""
    if where and where != rel_file:
        return f"{where}, line {line}: "
    return f"line {line}: "


# Import names whose distribution on PyPI is named otherwise.
PYPI_NAMES = {"dotenv": "python-dotenv", "yaml": "PyYAML", "sklearn": "scikit-learn", "cv2": "opencv-python-headless",
              "PIL": "Pillow", "bs4": "beautifulsoup4", "dateutil": "python-dateutil", "jwt": "PyJWT",
              "google_cloud_pipeline_components": "google-cloud-pipeline-components", "attr": "attrs",
              "magic": "python-magic", "Crypto": "pycryptodome", "skimage": "scikit-image"}
# kfp 2 extensions living under the kfp namespace, installed as their own distributions.
KFP_EXTENSIONS = {"kfp.kubernetes": "kfp-kubernetes"}


def pypi_name(module: str) -> str:
    """The distribution to install for an import name (`dotenv` -> `python-dotenv`, `google.cloud.storage`
    -> `google-cloud-storage`)."""
    parts = module.split(".")
    if parts[:2] == ["google", "cloud"] and len(parts) > 2:
        return f"google-cloud-{parts[2].replace('_', '-')}"
    return PYPI_NAMES.get(parts[0], parts[0])


def _import_hint(module: str, message: str, env: CompileEnvironment, sdk: str,
                 local: str | None = None) -> str:
    named = _CANNOT_IMPORT.search(message)
    if named and named.group(2) == module:  # `from kfp import kubernetes`: the missing module is kfp.kubernetes
        module = f"{module}.{named.group(1)}"
    top = module.split(".")[0] if module else ""
    extension = next((dist for name, dist in KFP_EXTENSIONS.items()
                      if module == name or module.startswith(name + ".") or f"'{name}'" in message), None)
    if extension:
        return (f"'{module or 'kfp.kubernetes'}' comes from {extension}, a kfp 2 extension installed on its own: "
                f"add {extension} beside kfp in the compile requirements ({', '.join(env.source_files) or CONFIG_FILE})")
    if local:
        return (f"'{top}' is a package of this repository ({local}): add the folder that holds it to "
                f"compile.python_path in {CONFIG_FILE}")
    if top == "kfp" or (not module and "kfp" in message):
        if env.is_default:
            return _v1_hint(sdk)
        return (f"the compile environment ({', '.join(env.requirements)}, from {', '.join(env.source_files)}) "
                f"has kfp {sdk or '?'}, which does not provide '{module}': check the version pinned there")
    return (f"the compile environment holds the kfp SDK only (kfp {sdk or '?'}): import training libraries inside "
            f"components rather than at the top of the pipeline file, or add '{pypi_name(module) if module else top}' to "
            f"compile.requirements in {CONFIG_FILE}; repository modules are found from the repository root "
            f"and the pipeline folder")


def _v1_hint(sdk: str) -> str:
    return (f"this file uses a kfp 1.x API that the bot's default SDK (kfp {sdk or '2'}) does not have: "
            + _DECLARE_SDK)
