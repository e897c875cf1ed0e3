"""The production runner: pipeline runs on Vertex AI Pipelines (`KFP_BOT_RUNNER=vertex`).

`submit_run` creates one pipeline job per run and returns at once (RUNNING, with the job's
console link); the job's state comes back later as a pipeline state event
(`decode_notification`, see `vertex_events`) or through `run_status` when reconcile asks. The job
id is derived from the run id (`vertex_job`), so creating is idempotent: a redelivered event, or
a retry after a lost answer, meets ALREADY_EXISTS and reports the existing job instead of
starting a second one. That is also why creating, unlike most writes, is retried on transient errors.

A refused job (bad argument, permission, precondition) ends the run as FAILED with Vertex AI's
own message and what to change. Vertex AI not answering even after retries raises
`VertexUnavailable`, a `RunError` that is also a `ConnectionError`, which the Pub/Sub push
endpoint treats as transient: the message is redelivered and the step tried again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from google.api_core import exceptions as api_exceptions
from google.api_core import retry as retries
from google.auth.credentials import Credentials
from google.cloud import aiplatform_v1
from google.cloud.aiplatform_v1.services.pipeline_service.transports import PipelineServiceGrpcTransport

from deploy.errors import RunError
from deploy.google_clients import CREDENTIALS_HINT, api_cause, first_line, google_client
from deploy.runners.vertex_events import parse_pipeline_event, run_state_of
from deploy.runners.vertex_job import RUN_LABEL, build_job, job_id_for, label_value, run_id_of
from deploy.runners.vertex_results import job_results
from handlers.models import Event, RunStatus
from handlers.ports.run import CollectedResults, RunRequest, RunSubmission
from handlers.run_models import Run, RunState

log = logging.getLogger(__name__)

USER_ROLE = "roles/aiplatform.user"
_TRANSIENT = (api_exceptions.ServiceUnavailable, api_exceptions.DeadlineExceeded,
              api_exceptions.InternalServerError, api_exceptions.Aborted)
# The library's own default retries for up to 600 s, the whole of a Pub/Sub push's deadline.
DEFAULT_RETRY = retries.Retry(predicate=retries.if_exception_type(*_TRANSIENT), initial=0.2, maximum=5.0,
                              multiplier=2.0, timeout=60.0)
_API_ERRORS = (api_exceptions.GoogleAPICallError, api_exceptions.RetryError)


class VertexUnavailable(RunError, ConnectionError):
    """Vertex AI did not answer, even after retrying: the step should be tried again later."""


class VertexRunner:
    """The `Runner` and `NotificationDecoder` ports on Vertex AI Pipelines, in one project and region."""

    def __init__(self, client: aiplatform_v1.PipelineServiceClient, project: str, region: str, *,
                 pipeline_root: str | None, service_account: str | None = None,
                 retry: retries.Retry = DEFAULT_RETRY, call_timeout: float = 30.0) -> None:
        self.client = client
        self.project = project
        self.region = region
        self.pipeline_root = pipeline_root
        self.service_account = service_account
        self.retry = retry
        self.call_timeout = call_timeout

    def submit_run(self, request: RunRequest) -> RunSubmission:
        """Create the run's pipeline job (or find the one already created for it)."""
        run = request.run
        try:
            job_id, job = build_job(request, pipeline_root=self.pipeline_root,
                                    service_account=self.service_account)
        except RunError as exc:
            return RunSubmission(RunState.FAILED, detail=str(exc))
        try:
            created = self.client.create_pipeline_job(
                request=aiplatform_v1.CreatePipelineJobRequest(parent=self.parent, pipeline_job=job,
                                                               pipeline_job_id=job_id),
                retry=self.retry, timeout=self.call_timeout)
        except api_exceptions.AlreadyExists:
            return self._existing(run, job_id)
        except _API_ERRORS as exc:
            if _is_transient(exc):
                raise VertexUnavailable(self._explain(exc, f"create the pipeline job {job_id}", job.service_account),
                                        hint="the step is tried again when the event is redelivered") from None
            return RunSubmission(RunState.FAILED, detail=self._explain(exc, f"create the pipeline job {job_id}",
                                                                       job.service_account))
        log.info("Vertex AI pipeline job %s created for run %s (%s)", created.name or job_id, run.id, run.pipeline)
        return RunSubmission(RunState.RUNNING, url=self.console_url(job_id),
                             detail=f"Vertex AI pipeline job {job_id}")

    def run_status(self, run: Run) -> RunSubmission | None:
        """The run's job as it is now; None when Vertex AI has no job for the run.

        Raises `VertexUnavailable` (or `RunError` when refused) when Vertex AI cannot be asked, so
        that reconcile counts an error and asks again instead of ending the run.
        """
        job_id = job_id_for(run)
        job = self._get(job_id)
        return None if job is None else self._submission(job_id, job)

    def run_results(self, run: Run) -> CollectedResults | None:
        """The metrics of the run's job from its task details (`vertex_results`); None when Vertex
        AI has no job for the run. Raises like `run_status` when it cannot be asked."""
        job = self._get(job_id_for(run))
        return None if job is None else job_results(job)

    def cancel_run(self, run: Run) -> None:
        """Cancel the run's job; a no-op when there is none or it has already finished."""
        job_id = job_id_for(run)
        try:
            self.client.cancel_pipeline_job(request=aiplatform_v1.CancelPipelineJobRequest(name=self.job_name(job_id)),
                                            retry=self.retry, timeout=self.call_timeout)
        except (api_exceptions.NotFound, api_exceptions.FailedPrecondition) as exc:
            log.info("Vertex AI pipeline job %s of run %s not cancelled: %s", job_id, run.id, first_line(exc))
            return
        except _API_ERRORS as exc:
            error = VertexUnavailable if _is_transient(exc) else RunError
            raise error(self._explain(exc, f"cancel the pipeline job {job_id}", self.service_account)) from None
        log.info("Vertex AI pipeline job %s of run %s cancelled", job_id, run.id)

    def decode_notification(self, attributes: Mapping[str, str], data: bytes) -> Event | None:
        """A pipeline state event (a log entry from the sink) → `RunStatus`; None when not for the bot."""
        event = parse_pipeline_event(attributes, data)
        if event is None:
            return None
        run_id = run_id_of(event.job_id)
        state = run_state_of(event.state)
        if run_id is None or state is None:
            log.info("pipeline state event for job %s (%s) is not for a kfp-bot run; ignored", event.job_id,
                     event.state.name)
            return None
        url = self.console_url(event.job_id, event.location)
        error = event.error
        if state is RunState.FAILED and not error:
            error = self._error_quietly(event.job_id, event.location)
        return RunStatus(run_id=run_id, state=state, detail=_detail(state, error), url=url)

    @property
    def parent(self) -> str:
        """Where the bot's jobs live: `projects/{project}/locations/{region}`."""
        return f"projects/{self.project}/locations/{self.region}"

    def job_name(self, job_id: str, location: str | None = None) -> str:
        """The resource name of a job (in the bot's region unless `location` says otherwise)."""
        return f"projects/{self.project}/locations/{location or self.region}/pipelineJobs/{job_id}"

    def console_url(self, job_id: str, location: str | None = None) -> str:
        """The job's page in the Google Cloud console."""
        return (f"https://console.cloud.google.com/vertex-ai/locations/{location or self.region}/pipelines/runs/"
                f"{job_id}?project={self.project}")

    def _existing(self, run: Run, job_id: str) -> RunSubmission:
        job = self._get(job_id)
        if job is None:
            return RunSubmission(RunState.FAILED, detail=(
                f"Vertex AI says the pipeline job {job_id} already exists in project {self.project} "
                f"({self.region}) but cannot find it; start the run again"))
        owner = job.labels.get(RUN_LABEL)
        if owner != label_value(run.id):
            return RunSubmission(RunState.FAILED, detail=(
                f"the Vertex AI job id {job_id} of run {run.id} is already used by another pipeline job "
                f"({job.display_name or 'no name'}, {RUN_LABEL}={owner or 'none'}) in project {self.project}; "
                "delete that job or start the run again"))
        log.info("Vertex AI pipeline job %s of run %s already exists (%s): not created again", job_id, run.id,
                 aiplatform_v1.PipelineState(job.state).name)
        submission = self._submission(job_id, job)
        if submission.state.terminal:
            return submission
        return RunSubmission(RunState.RUNNING, url=submission.url,
                             detail=f"Vertex AI pipeline job {job_id} (already submitted)")

    def _get(self, job_id: str, location: str | None = None) -> aiplatform_v1.PipelineJob | None:
        try:
            return self.client.get_pipeline_job(
                request=aiplatform_v1.GetPipelineJobRequest(name=self.job_name(job_id, location)),
                retry=self.retry, timeout=self.call_timeout)
        except api_exceptions.NotFound:
            return None
        except _API_ERRORS as exc:
            error = VertexUnavailable if _is_transient(exc) else RunError
            raise error(self._explain(exc, f"look up the pipeline job {job_id}", self.service_account)) from None

    def _error_quietly(self, job_id: str, location: str | None) -> str:
        """The error of a failed job, for events that do not carry it; empty when it cannot be had."""
        try:
            job = self.client.get_pipeline_job(
                request=aiplatform_v1.GetPipelineJobRequest(name=self.job_name(job_id, location)),
                retry=None, timeout=min(self.call_timeout, 10.0))
        except _API_ERRORS as exc:
            log.info("could not read the error of failed pipeline job %s: %s", job_id, first_line(exc))
            return ""
        return job.error.message

    def _submission(self, job_id: str, job: aiplatform_v1.PipelineJob) -> RunSubmission:
        state = run_state_of(aiplatform_v1.PipelineState(job.state)) or RunState.RUNNING
        return RunSubmission(state, url=self.console_url(job_id), detail=_detail(state, job.error.message))

    def _explain(self, exc: Exception, action: str, service_account: str | None) -> str:
        cause = api_cause(exc)
        said = first_line(cause)
        where = f"in project {self.project} ({self.region})"
        if isinstance(cause, api_exceptions.PermissionDenied):
            account = (f"; jobs run as {service_account}, so the bot also needs roles/iam.serviceAccountUser "
                       "on that account") if service_account else ""
            return (f"Vertex AI refused to {action} {where}: permission denied ({said}). Grant the bot's "
                    f"service account {USER_ROLE} on project {self.project}{account}")
        if isinstance(cause, api_exceptions.Unauthenticated):
            return (f"Vertex AI rejected the bot's credentials when asked to {action} {where} ({said}); "
                    "check the service account the bot runs as")
        if isinstance(cause, api_exceptions.InvalidArgument):
            return (f"Vertex AI rejected the pipeline job {where}: {said}. Check the pipeline's parameters and "
                    "its run options in settings.yaml (pipeline_root, service_account)")
        if isinstance(cause, api_exceptions.FailedPrecondition):
            return (f"Vertex AI could not {action} {where}: {said}. Check that the Vertex AI API is enabled and "
                    "that the pipeline root bucket exists and is writable by the job's service account")
        if isinstance(cause, api_exceptions.NotFound):
            return (f"Vertex AI could not {action} {where}: not found ({said}); check the project id, the region "
                    "and that the Vertex AI API is enabled")
        if isinstance(cause, api_exceptions.ResourceExhausted):
            return f"Vertex AI could not {action} {where}: quota exhausted ({said}); start the run again later"
        if _is_transient(exc):
            return f"Vertex AI did not answer when asked to {action} {where}, even after retrying ({said})"
        code = getattr(cause, "grpc_status_code", None) or getattr(cause, "code", None)
        return f"Vertex AI could not {action} {where}: {getattr(code, 'name', code) or 'error'} ({said})"


def _detail(state: RunState, error: str) -> str:
    if state is RunState.SUCCEEDED:
        return "the pipeline succeeded on Vertex AI"
    if state is RunState.FAILED:
        return f"the pipeline failed on Vertex AI: {error}" if error else \
            "the pipeline failed on Vertex AI (no error message; see the run's page)"
    if state is RunState.CANCELLED:
        return f"the pipeline was cancelled on Vertex AI{f': {error}' if error else ''}"
    return "running on Vertex AI"


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, api_exceptions.RetryError) or isinstance(api_cause(exc), _TRANSIENT)


def make_pipeline_client(region: str, endpoint: str | None = None, *,
                         credentials: Credentials | None = None) -> aiplatform_v1.PipelineServiceClient:
    """A Vertex AI pipeline client for `region` (endpoint `{region}-aiplatform.googleapis.com`).

    A loopback endpoint (fakes, emulators) gets an insecure channel and anonymous credentials;
    other endpoints use `credentials` or Application Default Credentials, and without any,
    `RunError` says how to provide them.
    """
    return google_client(aiplatform_v1.PipelineServiceClient, endpoint or f"{region}-aiplatform.googleapis.com",
                         transport=PipelineServiceGrpcTransport, credentials=credentials,
                         refuse=lambda why: RunError(f"no Google Cloud credentials for Vertex AI ({why})",
                                                     hint=CREDENTIALS_HINT))
