"""The pipeline diff in production: the merge base compiled by the run's own Cloud Build build.

The service never compiles repository code, so the run's build compiles the pipeline twice: the
head (`kfp-bot-compile`) and, from the merge base's files uploaded beside it, the base
(`kfp-bot-compile-base`, allowed to fail). Both leave their verdict and package among the build's
artifacts, the base's named `base-*`. `CloudBuildDiffs` (the `PipelineDiffs` port with the Cloud
Build compiler) reads the base's back and compares it with the package the run compiled, and
the two `settings.yaml` files, read from git. A `/plan` has no build, so it has no diff here.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path

import yaml
from google.cloud.devtools import cloudbuild_v1

from deploy.builders.cloudbuild_compile import OUT_DIR, CloudBuildCompiler, CloudCompile, compile_step, head_commit
from deploy.compiler.failures import describe_failure
from deploy.compiler.source import pipeline_file
from deploy.pipeline_diffs import CompiledSide, compared, revision_checkout, settings_side
from pipeline_registry.compile_env import pipeline_environment
from pipeline_registry.repository import Repository
from pipeline_registry.snapshot import merge_base
from pipeline_registry.spec_diff import PipelineDiff

# The merge base's files in the build's source, and its compile's outputs among the head's.
BASE_DIR, BASE_PREFIX, BASE_STEP_ID = ".kfp-bot/base", "base-", "kfp-bot-compile-base"
# Run in BASE_DIR after the compile: its outputs move beside the head's, named base-*.
_BASE_COLLECT = """mkdir -p ../out
for f in """ + OUT_DIR + """/*; do if [ -e "$$f" ]; then mv "$$f" "../out/""" + BASE_PREFIX + """$${f##*/}"; fi; done
"""
# Why a /plan reply has no diff on this path.
NO_BUILD = ("No pipeline diff: with the Cloud Build compiler the diff comes from a run's build, and /plan "
            "starts none; the pipeline's check shows it once the pipeline runs.")
NO_BASE_COMPILE = ("No pipeline diff: the run's build left no compile of the merge base "
                   "(its `kfp-bot-compile-base` step failed or did not run; see the build's log).")


class CloudBuildDiffs:
    """The `PipelineDiffs` port on the Cloud Build path: reads what the run's build compiled."""

    def __init__(self, cloud: CloudCompile) -> None:
        self.cloud = cloud
        self.compiler = CloudBuildCompiler(cloud)

    def diff_against_base(self, repo_dir: Path, pipeline: str, base_sha: str, *,
                          head_package: Path | None = None) -> PipelineDiff:
        """The run's package against the merge base its build compiled; a note when there is none.
        A base compile that failed raises its `CompileError`, as a local compile would."""
        if head_package is None:
            return PipelineDiff(pipeline, note=NO_BUILD)
        repository = Repository.open(repo_dir)
        head = CompiledSide(yaml.safe_load(Path(head_package).read_text(encoding="utf-8")),
                            settings_side(repository, pipeline))
        folder = self.cloud.folder(head_commit(Path(repo_dir)), pipeline,
                                   repository.component_images(pipeline)) + BASE_PREFIX
        base = merge_base(repo_dir, base_sha, "HEAD")
        with revision_checkout(Path(repo_dir), base) as checkout:
            at_base = Repository.open(checkout)
            if pipeline not in at_base.pipelines():
                return compared(pipeline, CompiledSide(None, {}), head)
            config = at_base.config
            rel_file = pipeline_file(at_base.root, at_base.pipeline(pipeline), config)
            verdict = self.compiler.verdict_in(folder, rel_file)
            if verdict is None:
                return PipelineDiff(pipeline, note=NO_BASE_COMPILE)
            if not verdict.get("ok"):
                env = pipeline_environment(at_base.snapshot.read, config, at_base.pipeline(pipeline))
                raise describe_failure(rel_file, verdict, env=env, config=config, output="")
            with tempfile.TemporaryDirectory(prefix="kfp-bot-base-") as tmp:
                package = self.compiler.package_in(folder, at_base, pipeline, config, Path(tmp))
                document = yaml.safe_load(package.package_path.read_text(encoding="utf-8"))
            return compared(pipeline, CompiledSide(document, settings_side(at_base, pipeline)), head)


def base_compile_step(repository: Repository, pipeline: str, images: Mapping[str, str], *,
                      image: str, max_timeout_seconds: int | None = None) -> cloudbuild_v1.BuildStep:
    """The step that compiles `pipeline` at the run's merge base, for its pipeline diff: the base's
    files are in the source under `BASE_DIR` (`repository` is the base's checkout), compiled by
    the same script and image as the head; its outputs join the head's as `base-*` artifacts. It
    may fail without failing the build (`allowFailure`,
    https://cloud.google.com/build/docs/build-config-file-schema#allow_failure): a base that
    does not compile costs the run its diff, never the run."""
    step = compile_step(repository, pipeline, images, wait_for=["-"], image=image,
                        max_timeout_seconds=max_timeout_seconds, then=_BASE_COLLECT)
    step.id, step.dir_, step.allow_failure = BASE_STEP_ID, BASE_DIR, True  # `dir`: relative to /workspace
    return step
