"""The production builder: component images built by Cloud Build, one build per run.

`build` never waits for a build: it starts one (or finds the one a previous delivery of the
same event started, by the run's tag) and answers STARTED with the build's log link; Cloud
Build's `cloud-builds` notification later becomes a `BuildStatus` event (`decode_notification`)
and `build_status` answers the same question for reconcile. What the build contains (source,
steps, reuse of images that already exist, tags) is in `cloudbuild_config`; the source is the
run's build context uploaded from the bot's checkout (`cloudbuild_source`) unless a source such
as a repository connection is given, and with `compile` the build also compiles the pipeline
(`cloudbuild_compile`).

Every failure of the API ends as a FAILED outcome that names the project and what to grant or
retry, never a traceback. Look-ups retry transient errors for at most a minute
(`DEFAULT_RETRY`), well inside a Pub/Sub push's deadline; creating a build is not retried blindly (it is not
idempotent), but after a transient error the run's build is looked up once more.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path

from google.api_core import exceptions as api_exceptions
from google.api_core import retry as retries
from google.cloud.devtools import cloudbuild_v1
from google.cloud.devtools.cloudbuild_v1.services.cloud_build.transports import CloudBuildGrpcTransport

from deploy.builders.cloudbuild_compile import CloudCompile, compile_artifacts, compile_step
from deploy.builders.cloudbuild_config import BuildSource, GitUrlSource, build_for, images_to_build, run_filter
from deploy.builders.cloudbuild_diffs import BASE_DIR, base_compile_step
from deploy.builders.cloudbuild_notifications import FAILED_STATUSES, Status, decode_build_notification, log, outcome_of
from deploy.builders.cloudbuild_source import StorageUpload, compile_files, image_files, pack
from deploy.errors import BuildError
from deploy.google_clients import CREDENTIALS_HINT, api_cause, first_line, google_client
from deploy.pipeline_diffs import revision_checkout
from handlers.models import Event
from handlers.ports.build import BuildOutcome, BuildRequest, BuildState
from handlers.ports.events import Ignored
from handlers.run_models import Run
from kfp_bot_errors import KfpBotError
from pipeline_registry.models import ComponentPlan
from pipeline_registry.repository import Repository
from pipeline_registry.snapshot import merge_base

EDITOR_ROLE = "roles/cloudbuild.builds.editor"
_TRANSIENT = (api_exceptions.ServiceUnavailable, api_exceptions.DeadlineExceeded)
# The library's own default retries reads for 600 s, the whole of a Pub/Sub push's deadline.
DEFAULT_RETRY = retries.Retry(predicate=retries.if_exception_type(*_TRANSIENT), initial=0.2, maximum=5.0,
                              multiplier=2.0, timeout=60.0)


class CloudBuildBuilder:
    """The `Builder` and `NotificationDecoder` ports on Cloud Build."""

    def __init__(self, client: cloudbuild_v1.CloudBuildClient, project: str, *,
                 service_account: str | None = None, source: BuildSource | None = None,
                 upload: StorageUpload | None = None, compile: CloudCompile | None = None,
                 location: str | None = None, timeout_seconds: int = 3600,
                 retry: retries.Retry = DEFAULT_RETRY, call_timeout: float = 30.0) -> None:
        self.client = client
        self.project = project
        self.service_account = service_account
        # Where the code comes from: the uploaded context (`upload`) unless a source is given.
        self.upload = upload if source is None else None
        self.source = source or GitUrlSource()
        self.compile = compile
        self.location = location or self.source.location or "global"
        if self.source.location and self.source.location != self.location:
            raise ValueError(f"builds must run in {self.source.location}, the region of the source's "
                             f"Cloud Build connection, not in {self.location}")
        self.timeout_seconds = timeout_seconds
        self.call_timeout = call_timeout
        self.retry = retry

    def build(self, request: BuildRequest) -> BuildOutcome:
        """Start the run's build, or report the one already started for it."""
        plans = images_to_build(request)
        if not plans and self.compile is None:
            return BuildOutcome(BuildState.SUCCEEDED, "no image to build: every image is up to date")
        try:
            existing = self._find(request.run_id)
        except (api_exceptions.GoogleAPICallError, api_exceptions.RetryError) as exc:
            return BuildOutcome(BuildState.FAILED, self._explain(exc, "look up the run's build"))
        if existing is not None:
            return outcome_of(existing)
        try:
            with Repository.open(request.repo_dir) as repository, self._base(request) as base:
                context = repository.config.build_context
                step, artifacts = self._compile_parts(request, repository)
                base_step = self._base_step(request, base)
                source = self._source(request, repository, plans, base if base_step else None)
        except KfpBotError as exc:
            return BuildOutcome(BuildState.FAILED, str(exc))
        config = build_for(request, plans, source=source, context=context,
                           service_account=self.service_account, project=self.project,
                           timeout_seconds=self.timeout_seconds, compile_step=step, artifacts=artifacts,
                           base_step=base_step)
        try:
            operation = self.client.create_build(request=cloudbuild_v1.CreateBuildRequest(
                project_id=self.project, build=config, parent=self._parent()), timeout=self.call_timeout)
        except (api_exceptions.GoogleAPICallError, api_exceptions.RetryError) as exc:
            return self._after_failed_create(request.run_id, exc)
        created = operation.metadata.build if operation.metadata is not None else None
        if created is None or not created.id:
            found = self._find_quietly(request.run_id)
            if found is None:
                return BuildOutcome(BuildState.FAILED,
                                    f"Cloud Build accepted the build of run {request.run_id} in project "
                                    f"{self.project} but did not say which build it is; start the run again")
            created = found
        names = ", ".join([p.component.name for p in plans] + (["the pipeline (compile)"] if step else []))
        log.info("Cloud Build %s started for run %s: %s", created.id, request.run_id, names)
        return BuildOutcome(BuildState.STARTED, f"Cloud Build {created.id} is building {names}",
                            created.log_url or None)

    def _compile_parts(self, request: BuildRequest, repository: Repository
                       ) -> tuple[cloudbuild_v1.BuildStep | None, cloudbuild_v1.Artifacts | None]:
        """The compile step and its artifacts, when this builder compiles (production)."""
        if self.compile is None:
            return None, None
        images = repository.component_images(request.pipeline)
        step = compile_step(repository, request.pipeline, images, wait_for=[], image=self.compile.python_image,
                            max_timeout_seconds=self.compile.max_timeout_seconds)
        return step, compile_artifacts(self.compile.location(request.sha, request.pipeline, images))

    @contextmanager
    def _base(self, request: BuildRequest) -> Iterator[Repository | None]:
        """The run's merge base checked out (files only, nothing runs here) when this build also
        compiles it for the run's pipeline diff: with `compile`, an uploaded source and a base
        that has the pipeline. A base that cannot be had costs the diff, never the build."""
        if self.compile is None or self.upload is None or not request.base_sha:
            yield None
            return
        with ExitStack() as stack:
            found = None
            try:
                base = merge_base(request.repo_dir, request.base_sha, request.sha)
                repository = Repository.open(stack.enter_context(revision_checkout(Path(request.repo_dir), base)))
                found = repository if request.pipeline in repository.pipelines() else None
            except KfpBotError as exc:
                log.warning("run %s: the merge base is not compiled for its diff: %s", request.run_id, exc)
            yield found

    def _base_step(self, request: BuildRequest, base: Repository | None) -> cloudbuild_v1.BuildStep | None:
        """The step compiling the merge base (its own images' content tags), when there is a base."""
        if base is None or self.compile is None:
            return None
        try:
            return base_compile_step(base, request.pipeline, base.component_images(request.pipeline),
                                     image=self.compile.python_image,
                                     max_timeout_seconds=self.compile.max_timeout_seconds)
        except KfpBotError as exc:
            log.warning("run %s: the merge base is not compiled for its diff: %s", request.run_id, exc)
            return None

    def _source(self, request: BuildRequest, repository: Repository,
                plans: tuple[ComponentPlan, ...], base: Repository | None = None) -> cloudbuild_v1.Source:
        """The configured source, or the run's build context uploaded from the bot's checkout (with
        the merge base's compile files under `BASE_DIR` when the base is compiled too)."""
        if self.upload is None:
            return self.source.source_for(request.repo, request.sha)
        files = image_files(repository, plans)
        if self.compile is not None:
            files |= compile_files(repository, request.pipeline)
        also = (base.root, BASE_DIR, compile_files(base, request.pipeline)) if base is not None else None
        return self.upload.upload(request.run_id, pack(request.repo_dir, files, also=also))

    def build_status(self, run: Run) -> BuildOutcome | None:
        """The run's build as it is now, for reconcile; None when there is none.

        Raises `BuildError` when Cloud Build cannot be asked: a transient error must not fail
        the run, reconcile asks again next time.
        """
        try:
            build = self._find(run.id)
        except (api_exceptions.GoogleAPICallError, api_exceptions.RetryError) as exc:
            raise BuildError(self._explain(exc, "look up the run's build")) from None
        return outcome_of(build) if build is not None else None

    def cancel(self, run: Run) -> bool:
        """Cancel the run's build if it is still going (a superseded head); True when one was."""
        try:
            build = self._find(run.id)
            if build is None or build.status == Status.SUCCESS or build.status in FAILED_STATUSES:
                return False
            self.client.cancel_build(request=cloudbuild_v1.CancelBuildRequest(
                project_id=self.project, id=build.id, name=self._name(build.id)),
                retry=self.retry, timeout=self.call_timeout)
        except (api_exceptions.GoogleAPICallError, api_exceptions.RetryError) as exc:
            raise BuildError(self._explain(exc, "cancel the run's build")) from None
        return True

    def decode_notification(self, attributes: Mapping[str, str], data: bytes) -> Event | Ignored | None:
        """A `cloud-builds` message → `BuildStatus` of the run; `Ignored` when it is not for the bot."""
        return decode_build_notification(attributes, data)

    def _find(self, run_id: str) -> cloudbuild_v1.Build | None:
        """The newest build tagged for the run (Cloud Build lists newest first)."""
        pager = self.client.list_builds(request=cloudbuild_v1.ListBuildsRequest(
            project_id=self.project, parent=self._parent(), filter=run_filter(run_id), page_size=5),
            retry=self.retry, timeout=self.call_timeout)
        return next(iter(pager), None)

    def _find_quietly(self, run_id: str) -> cloudbuild_v1.Build | None:
        try:
            return self._find(run_id)
        except (api_exceptions.GoogleAPICallError, api_exceptions.RetryError):
            return None

    def _after_failed_create(self, run_id: str, exc: Exception) -> BuildOutcome:
        # A transient error or a conflict may hide a build that was created after all.
        cause = api_cause(exc)
        if isinstance(cause, (*_TRANSIENT, api_exceptions.AlreadyExists)):
            found = self._find_quietly(run_id)
            if found is not None:
                return outcome_of(found)
        return BuildOutcome(BuildState.FAILED, self._explain(exc, "start a build"))

    def _explain(self, exc: Exception, action: str) -> str:
        cause = api_cause(exc)
        said = first_line(cause)
        where = f"in project {self.project}"
        if isinstance(cause, api_exceptions.PermissionDenied):
            account = (f"; builds run as {self.service_account}, so it also needs "
                       "roles/iam.serviceAccountUser on that account") if self.service_account else ""
            return (f"Cloud Build refused to {action} {where}: permission denied ({said}). Grant the bot's "
                    f"service account {EDITOR_ROLE} on project {self.project}{account}")
        if isinstance(cause, api_exceptions.Unauthenticated):
            return (f"Cloud Build rejected the bot's credentials when asked to {action} {where} ({said}); "
                    "check the service account the bot runs as")
        if isinstance(cause, _TRANSIENT) or isinstance(exc, api_exceptions.RetryError):
            return (f"Cloud Build did not answer when asked to {action} {where}, even after retrying "
                    f"({said}); start the run again")
        if isinstance(cause, api_exceptions.InvalidArgument):
            return f"Cloud Build rejected the build of this run {where}: {said}"
        if isinstance(cause, api_exceptions.NotFound):
            return (f"Cloud Build could not {action} {where}: not found ({said}); check the project "
                    "id and that the Cloud Build API is enabled")
        if isinstance(cause, api_exceptions.AlreadyExists):
            return (f"Cloud Build could not {action} {where}: it says the build already exists, yet no build "
                    f"of this run can be found ({said}); start the run again")
        code = getattr(cause, "grpc_status_code", None) or getattr(cause, "code", None)
        return f"Cloud Build could not {action} {where}: {getattr(code, 'name', code) or 'error'} ({said})"

    def _parent(self) -> str:
        return "" if self.location == "global" else f"projects/{self.project}/locations/{self.location}"

    def _name(self, build_id: str) -> str:
        return "" if self.location == "global" else f"{self._parent()}/builds/{build_id}"


def make_cloudbuild_client(endpoint: str | None = None) -> cloudbuild_v1.CloudBuildClient:
    """A Cloud Build client: insecure and anonymous for a loopback endpoint (fakes, emulators).

    Other endpoints and the default one use Application Default Credentials; without any,
    `BuildError` says how to provide them.
    """
    return google_client(cloudbuild_v1.CloudBuildClient, endpoint, transport=CloudBuildGrpcTransport,
                         refuse=lambda why: BuildError(f"no Google Cloud credentials for Cloud Build ({why})",
                                                       hint=CREDENTIALS_HINT))
