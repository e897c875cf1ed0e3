"""The compiler: a pipeline file of an untrusted repository to a compiled pipeline package.

Compilation runs the repository's own kfp SDK (a cached virtual environment when the repository
pins one, the bot's kfp 2 otherwise) in the sandbox, on a scratch copy of the repository whose
component specs carry the freshly built images. `load_package` reads a package compiled
elsewhere, in any of the formats kfp 1.8 and 2.x write.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deploy.compiler.compile import compile_pipeline
    from deploy.compiler.environments import ensure_environment, environment_python
    from deploy.compiler.failures import FailureKind
    from deploy.compiler.images import substitute_images
    from deploy.compiler.package import CompiledPipeline, PackageFormat, load_package
    from deploy.compiler.source import pipeline_file, resolve_mode

# Loaded on first use: `kfp-bot check` starts its sandboxed drivers (`warm.py`) before the
# compiler's models (pydantic) are imported, so that kfp's import overlaps theirs.
_HOMES = {"compile_pipeline": "compile", "pipeline_file": "source", "resolve_mode": "source",
          "ensure_environment": "environments", "environment_python": "environments", "FailureKind": "failures",
          "substitute_images": "images", "CompiledPipeline": "package", "PackageFormat": "package",
          "load_package": "package"}

__all__ = [
    "CompiledPipeline",
    "FailureKind",
    "PackageFormat",
    "compile_pipeline",
    "ensure_environment",
    "environment_python",
    "load_package",
    "pipeline_file",
    "resolve_mode",
    "substitute_images",
]


def __getattr__(name: str) -> Any:
    """The public names, imported from their modules when first asked for."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'deploy.compiler' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"deploy.compiler.{home}"), name)
    globals()[name] = value
    return value
