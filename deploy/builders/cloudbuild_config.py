"""The Cloud Build `Build` of one run: source, one parallel step per image, tags, substitutions.

One build per run (one pipeline at one commit) builds every component image the plan marks
for rebuilding. Each step first asks the registry whether the image's content tag already
exists (`docker manifest inspect`): if so it pulls that image instead of building it, so an
image whose inputs were built before (by another PR, an earlier push, a retried run) is reused,
never rebuilt. Either way the step leaves both tags in the worker's Docker daemon, and the
build's `images:` list pushes them only after every step succeeded: the build's results record
each pushed digest, and a failed build pushes nothing. The existence check is an optimisation,
never a correctness risk: when it cannot answer (no such tag, no permission) the step builds.

The build is found again by its tags (`kfp-bot`, `run-…`), which is what makes a redelivered
event reuse the build instead of starting a second one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from google.cloud.devtools import cloudbuild_v1
from google.protobuf import duration_pb2

from handlers.ports.build import BuildRequest
from pipeline_registry.models import ComponentPlan
from pipeline_registry.repo_config import BuildContext

TOOL_TAG = "kfp-bot"
DOCKER_BUILDER = "gcr.io/cloud-builders/docker"
RUN_ID_KEY = "_KFP_BOT_RUN_ID"
COMPONENT_ENV = "KFP_BOT_COMPONENT"
IMAGE_ENV = "KFP_BOT_IMAGE"
COMPILE_STEP_ID = "kfp-bot-compile"

# Cloud Build substitutes `$NAME` in step arguments, so every `$` the shell must see is `$$`.
_STEP_SCRIPT = """\
set -eu
content="$$1"; commit="$$2"; dockerfile="$$3"; context="$$4"
if docker manifest inspect "$$content" > /dev/null 2>&1; then
  echo "kfp-bot: $$content exists: reusing it as $$commit instead of building it"
  docker pull --quiet "$$content"
  docker tag "$$content" "$$commit"
else
  echo "kfp-bot: building $$content"
  docker build --file "$$dockerfile" --tag "$$content" --tag "$$commit" "$$context"
fi
"""


class BuildSource(Protocol):
    """Where Cloud Build fetches the repository's code from; never carries a credential."""

    @property
    def location(self) -> str | None:
        """The region builds must run in to use this source (None: any, the global pool)."""

    def source_for(self, repo: str, sha: str) -> cloudbuild_v1.Source:
        """The `Build.source` for `repo` (owner/name) at commit `sha`."""

    def describe(self, repo: str, sha: str) -> str:
        """Where the code comes from, for error messages."""


@dataclass(frozen=True)
class GitUrlSource:
    """Public repositories: Cloud Build runs `git fetch` of the commit from the clone URL.

    The commit of a pull request from a fork is fetched from the base repository, which
    GitHub serves under `refs/pull/<n>/head`. `url_template` may point at GitHub Enterprise.
    """

    url_template: str = "https://github.com/{repo}.git"
    location: str | None = None

    def __post_init__(self) -> None:
        if "{repo}" not in self.url_template:
            raise ValueError(f"git URL template {self.url_template!r} must contain '{{repo}}'")
        parts = urlsplit(self.url_template)
        if parts.username or parts.password:
            raise ValueError("the git URL template must not carry credentials: Cloud Build build "
                             "configurations are readable by every project viewer; use a Cloud Build "
                             "GitHub connection (ConnectedRepositorySource) for private repositories")

    def source_for(self, repo: str, sha: str) -> cloudbuild_v1.Source:
        return cloudbuild_v1.Source(git_source=cloudbuild_v1.GitSource(
            url=self.url_template.format(repo=repo), revision=sha))

    def describe(self, repo: str, sha: str) -> str:
        return f"{self.url_template.format(repo=repo)} at {sha}"


@dataclass(frozen=True)
class ConnectedRepositorySource:
    """Private repositories through a Cloud Build (2nd gen) GitHub connection.

    The connection (`projects/P/locations/L/connections/C`) holds the GitHub App installation
    that can read the repository; builds must then run in the connection's region, which is why
    this source sets `location`. `repository_template` names the linked repository resource.
    """

    connection: str
    repository_template: str = "{owner}-{name}"

    def __post_init__(self) -> None:
        if not re.fullmatch(r"projects/[^/]+/locations/[^/]+/connections/[^/]+", self.connection):
            raise ValueError(f"Cloud Build connection {self.connection!r} must look like "
                             "projects/PROJECT/locations/REGION/connections/NAME")

    @property
    def location(self) -> str:
        return self.connection.split("/")[3]

    def repository(self, repo: str) -> str:
        owner, _, name = repo.partition("/")
        return f"{self.connection}/repositories/{self.repository_template.format(owner=owner, name=name)}"

    def source_for(self, repo: str, sha: str) -> cloudbuild_v1.Source:
        return cloudbuild_v1.Source(connected_repository=cloudbuild_v1.ConnectedRepository(
            repository=self.repository(repo), revision=sha))

    def describe(self, repo: str, sha: str) -> str:
        return f"{self.repository(repo)} at {sha}"


def build_tag(prefix: str, value: str) -> str:
    """`<prefix>-<value>` within Cloud Build's tag rule `^[\\w][\\w.-]{0,127}$`."""
    return re.sub(r"[^\w.-]", "_", f"{prefix}-{value}", flags=re.ASCII)[:128]


def run_tag(run_id: str) -> str:
    """The tag that finds a run's build again (`run-<id>`; run ids already start with `run-`)."""
    return build_tag("run", run_id.removeprefix("run-"))


def run_filter(run_id: str) -> str:
    """The `ListBuilds` filter for a run's builds."""
    return f'tags="{run_tag(run_id)}"'


def commit_image(plan: ComponentPlan, sha: str) -> str:
    """The image reference with the commit tag (the full SHA, like Cloud Build's `$COMMIT_SHA`)."""
    return f"{plan.component.image_repository}:{sha}"


def images_to_build(request: BuildRequest) -> tuple[ComponentPlan, ...]:
    """The components of the request whose image the plan marks for rebuilding."""
    return tuple(c for c in request.components
                 if c.rebuild and c.image and c.component.dockerfile and c.component.image_repository)


def build_for(request: BuildRequest, plans: tuple[ComponentPlan, ...], *, source: cloudbuild_v1.Source,
              context: BuildContext, service_account: str | None, project: str,
              timeout_seconds: int, compile_step: cloudbuild_v1.BuildStep | None = None,
              artifacts: cloudbuild_v1.Artifacts | None = None,
              base_step: cloudbuild_v1.BuildStep | None = None) -> cloudbuild_v1.Build:
    """The whole `Build` of one run: one parallel step per image, both tags pushed after all steps,
    then the compile step (waiting for every image step) when there is one, and the merge base's
    compile (waiting for nothing) when there is one."""
    substitutions = {RUN_ID_KEY: request.run_id, "_KFP_BOT_REPO": request.repo,
                     "_KFP_BOT_COMMIT": request.sha, "_KFP_BOT_PIPELINE": request.pipeline}
    if request.pr is not None:
        substitutions["_KFP_BOT_PR"] = str(request.pr)
    shared_env = [f"{key.removeprefix('_')}=${key}" for key in substitutions]
    steps: list[cloudbuild_v1.BuildStep] = []
    images: list[str] = []
    ids: set[str] = set()
    for plan in plans:
        component = plan.component
        step_id = _unique(str(component.image_repository).rsplit("/", 1)[-1], ids)
        content, commit = str(plan.image), commit_image(plan, request.sha)
        folder = "." if context is BuildContext.REPOSITORY else component.path
        steps.append(cloudbuild_v1.BuildStep(
            id=step_id, name=DOCKER_BUILDER, entrypoint="bash", wait_for=["-"],
            args=["-c", _STEP_SCRIPT, "kfp-bot-image",
                  *(_literal(v) for v in (content, commit, str(component.dockerfile), folder))],
            env=[f"{COMPONENT_ENV}={_literal(component.path)}", f"{IMAGE_ENV}={_literal(content)}",
                 *shared_env]))
        images.extend(_literal(v) for v in (content, commit))
    if compile_step is not None:
        compile_step.wait_for = [step.id for step in steps] or ["-"]
        compile_step.env = list(shared_env)
        steps.append(compile_step)
    if base_step is not None:
        base_step.env = list(shared_env)
        steps.append(base_step)
    # Cloud Build refuses a user-chosen service account with the legacy logs bucket.
    options = (cloudbuild_v1.BuildOptions(logging=cloudbuild_v1.BuildOptions.LoggingMode.CLOUD_LOGGING_ONLY)
               if service_account else cloudbuild_v1.BuildOptions())
    return cloudbuild_v1.Build(
        source=source, steps=steps, images=images, artifacts=artifacts,
        tags=build_tags(request), substitutions=substitutions, options=options,
        service_account=service_account_name(service_account, project) if service_account else "",
        timeout=duration_pb2.Duration(seconds=timeout_seconds))


def build_tags(request: BuildRequest) -> list[str]:
    """Tags naming the tool, run, pipeline, commit, PR and repository of a build."""
    tags = [TOOL_TAG, run_tag(request.run_id), build_tag("pipeline", request.pipeline),
            build_tag("commit", request.sha), build_tag("repo", request.repo.replace("/", "_"))]
    if request.pr is not None:
        tags.append(build_tag("pr", str(request.pr)))
    return tags


def service_account_name(account: str, project: str) -> str:
    """`projects/<project>/serviceAccounts/<email>`, the form `Build.service_account` requires."""
    return account if account.startswith("projects/") else f"projects/{project}/serviceAccounts/{account}"


def _unique(name: str, seen: set[str]) -> str:
    candidate, n = name, 1
    while candidate in seen:
        n += 1
        candidate = f"{name}-{n}"
    seen.add(candidate)
    return candidate


def _literal(value: str) -> str:
    return value.replace("$", "$$")
