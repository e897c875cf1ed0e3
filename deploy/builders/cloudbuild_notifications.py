"""A Cloud Build build as the bot sees it: its run, its outcome, why it failed.

Cloud Build publishes every state change of every build of the project on the `cloud-builds`
Pub/Sub topic: the message data is the `Build` resource as JSON (camelCase), the attributes
carry `buildId` and `status`. Only finished builds that kfp-bot started (tag `kfp-bot`) become
`BuildStatus` events; everything else is someone else's build or a state the bot does not act
on. The same reading of a `Build` answers `build_status` for reconcile, so an event that never
arrives and one that does end in the same state.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from google.cloud.devtools import cloudbuild_v1
from google.protobuf import json_format

from deploy.builders.cloudbuild_config import COMPILE_STEP_ID, COMPONENT_ENV, IMAGE_ENV, RUN_ID_KEY, TOOL_TAG
from handlers.models import BuildStatus
from handlers.ports.build import BuildOutcome, BuildState
from handlers.ports.events import Ignored
from handlers.run_models import RunState

log = logging.getLogger("kfp_bot.cloudbuild")

Status = cloudbuild_v1.Build.Status
FailureType = cloudbuild_v1.Build.FailureInfo.FailureType

FAILED_STATUSES = frozenset({Status.FAILURE, Status.INTERNAL_ERROR, Status.TIMEOUT, Status.CANCELLED,
                             Status.EXPIRED})
_STEP_FAILURES = (Status.FAILURE, Status.TIMEOUT, Status.INTERNAL_ERROR)


def is_kfp_bot_build(build: cloudbuild_v1.Build) -> bool:
    """True for builds kfp-bot started (they carry the `kfp-bot` tag)."""
    return TOOL_TAG in build.tags


def run_id_of(build: cloudbuild_v1.Build) -> str | None:
    """The run a build belongs to: its substitution, else its `run-…` tag."""
    exact = build.substitutions.get(RUN_ID_KEY)
    if exact:
        return exact
    return next((tag for tag in build.tags if tag.startswith("run-")), None)


def outcome_of(build: cloudbuild_v1.Build) -> BuildOutcome:
    """The build's state as a `BuildOutcome` (SUCCEEDED, FAILED with the reason, or STARTED)."""
    url = build.log_url or None
    if build.status == Status.SUCCESS:
        return BuildOutcome(BuildState.SUCCEEDED, f"images built by Cloud Build {build.id}", url)
    if build.status in FAILED_STATUSES:
        return BuildOutcome(BuildState.FAILED, failure_detail(build), url)
    return BuildOutcome(BuildState.STARTED, f"Cloud Build {build.id} is {Status(build.status).name.lower()}",
                        url)


def failing_step(build: cloudbuild_v1.Build) -> cloudbuild_v1.BuildStep | None:
    """The step that failed the build; steps stopped because of it end CANCELLED, not FAILURE."""
    return next((step for step in build.steps if step.status in _STEP_FAILURES), None)


def failure_detail(build: cloudbuild_v1.Build) -> str:
    """One paragraph a user can act on: what failed, where, why, and the build's log link."""
    step = failing_step(build)
    reason = (build.failure_info.detail or build.status_detail).strip()
    status = Status(build.status)
    if step is not None and step.id == COMPILE_STEP_ID:
        text = (f"the compile step timed out in Cloud Build (step {step.id})" if step.status == Status.TIMEOUT
                else f"the compile step failed in Cloud Build (step {step.id}) before compiling: the compile "
                     "environment (the repository's kfp pin) could not be installed")
    elif step is not None:
        component = _env(step, COMPONENT_ENV)
        where = f"step {step.id or step.name}" + (f" ({component})" if component else "")
        verb = "timed out" if step.status == Status.TIMEOUT else "failed"
        text = f"the image build {verb} at {where}"
    elif status == Status.TIMEOUT:
        text = f"the image build timed out after {build.timeout.seconds} s"
    elif status == Status.CANCELLED:
        text = "the image build was cancelled on Cloud Build"
    elif status == Status.EXPIRED:
        text = "the image build waited in Cloud Build's queue longer than its queue TTL and expired"
    elif status == Status.INTERNAL_ERROR:
        text = "Cloud Build had an internal error; start the run again"
    elif build.failure_info.type_ == FailureType.FETCH_SOURCE_FAILED:
        text = ("Cloud Build could not fetch the repository's code; a private repository needs a "
                "Cloud Build GitHub connection")
    elif build.failure_info.type_ in (FailureType.PUSH_FAILED, FailureType.PUSH_NOT_AUTHORIZED,
                                      FailureType.PUSH_IMAGE_NOT_FOUND):
        text = ("Cloud Build could not push the images; grant the build's service account "
                "roles/artifactregistry.writer on the image registry")
    else:
        text = "the image build failed"
    if reason:
        text += f": {reason}"
    if build.log_url:
        text += f". Build log: {build.log_url}"
    return text


def built_images(build: cloudbuild_v1.Build) -> dict[str, str]:
    """Component folder -> image (content tag) for every step of a kfp-bot build."""
    images = {}
    for step in build.steps:
        component, image = _env(step, COMPONENT_ENV), _env(step, IMAGE_ENV)
        if component and image:
            images[component] = image
    return images


def decode_build_notification(attributes: Mapping[str, str], data: bytes) -> BuildStatus | Ignored | None:
    """A `cloud-builds` message as a `BuildStatus` of a kfp-bot run; `Ignored` for builds that are
    not the bot's (the topic carries every build of the project) and states it does not act on;
    None (logged) when the message is not a Build at all."""
    if "buildId" not in attributes:
        # Every cloud-builds message carries `buildId` and `status` attributes
        # (https://cloud.google.com/build/docs/subscribe-build-notifications): this one is not Cloud Build's.
        return None
    build_id = attributes["buildId"]
    try:
        build = cloudbuild_v1.Build.from_json(data.decode("utf-8"), ignore_unknown_fields=True)
    except (ValueError, TypeError, json_format.ParseError) as exc:
        log.warning("cloud-builds message for build %s ignored: its data is not a Build (%s)",
                    build_id, str(exc)[:200])
        return None
    if build.status == Status.STATUS_UNKNOWN and attributes.get("status") in Status.__members__:
        build.status = Status.__members__[attributes["status"]]
    if not is_kfp_bot_build(build):
        return Ignored(f"cloud-builds message for build {build_id}: not a kfp-bot build")
    run_id = run_id_of(build)
    if run_id is None:
        log.warning("cloud-builds message for kfp-bot build %s ignored: it names no run", build_id)
        return None
    if build.status == Status.SUCCESS:
        return BuildStatus(run_id=run_id, state=RunState.COMPILING,
                           detail=f"images built by Cloud Build {build.id}", url=build.log_url or None,
                           images=built_images(build))
    if build.status in FAILED_STATUSES:
        return BuildStatus(run_id=run_id, state=RunState.FAILED, detail=failure_detail(build),
                           url=build.log_url or None)
    return Ignored(f"cloud-builds message for kfp-bot build {build_id}: {Status(build.status).name} needs nothing")


def _env(step: cloudbuild_v1.BuildStep, name: str) -> str | None:
    prefix = f"{name}="
    value = next((item.removeprefix(prefix) for item in step.env if item.startswith(prefix)), None)
    return value.replace("$$", "$") if value is not None else None
