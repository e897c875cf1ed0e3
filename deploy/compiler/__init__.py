"""The compiler: a pipeline file of an untrusted repository to a compiled pipeline package.

Compilation runs the repository's own kfp SDK (a cached virtual environment when the repository
pins one, the bot's kfp 2 otherwise) in the sandbox, on a scratch copy of the repository whose
component specs carry the freshly built images. `load_package` reads a package compiled
elsewhere, in any of the formats kfp 1.8 and 2.x write.
"""

from deploy.compiler.compile import compile_pipeline, pipeline_file, resolve_mode
from deploy.compiler.environments import ensure_environment, environment_python
from deploy.compiler.failures import FailureKind
from deploy.compiler.images import substitute_images
from deploy.compiler.package import CompiledPipeline, PackageFormat, load_package

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
