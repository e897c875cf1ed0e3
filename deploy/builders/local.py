"""The embedded builder: component images built with the local container engine, if any.

Without a container engine the build is reported as skipped, with the reason and the images
that were not built, so the run goes on (lightweight pipelines need no image) and the user
sees why a container pipeline could not run.
"""

from __future__ import annotations

import subprocess

from handlers.ports.build import BuildOutcome, BuildRequest, BuildState
from handlers.run_models import Run
from pipeline_registry.repo_config import BuildContext
from pipeline_registry.repository import Repository


class LocalBuilder:
    """The `Builder` port on `docker build` / `podman build`."""

    def __init__(self, engine: str | None, *, timeout_seconds: float = 1800.0) -> None:
        self.engine = engine
        self.timeout_seconds = timeout_seconds

    def build(self, request: BuildRequest) -> BuildOutcome:
        """Build every component image the plan marks for rebuilding (content tag and commit tag)."""
        wanted = [c for c in request.components if c.rebuild and c.image and c.component.dockerfile]
        if not wanted:
            return BuildOutcome(BuildState.SUCCEEDED, "no image to build: every image is up to date")
        names = ", ".join(c.component.name for c in wanted)
        if self.engine is None:
            return BuildOutcome(BuildState.SKIPPED,
                                f"no container engine (docker or podman) on this machine: "
                                f"images of {names} were not built")
        build_context = Repository.open(request.repo_dir).config.build_context
        for plan in wanted:
            component = plan.component
            if plan.image is None or component.dockerfile is None:
                continue  # not wanted (see above); says so to the type checker
            context = request.repo_dir
            if build_context is BuildContext.COMPONENT:
                context = request.repo_dir / component.path
            argv = [self.engine, "build", "-q", "-f", str(request.repo_dir / component.dockerfile),
                    "-t", plan.image, "-t", f"{plan.image.rsplit(':', 1)[0]}:{request.sha}", str(context)]
            try:
                result = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout_seconds)
            except subprocess.TimeoutExpired:
                return BuildOutcome(BuildState.FAILED, f"image of {component.name} did not build within "
                                                       f"{self.timeout_seconds:.0f} s")
            if result.returncode != 0:
                tail = "\n".join(result.stderr.strip().splitlines()[-10:])
                return BuildOutcome(BuildState.FAILED, f"image of {component.name} failed to build:\n{tail}")
        return BuildOutcome(BuildState.SUCCEEDED, f"built {names}")

    def build_status(self, run: Run) -> BuildOutcome | None:
        """Local builds finish inside `build`: there is never one to look up later."""
        return None
