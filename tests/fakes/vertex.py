"""A fake Vertex AI Pipelines: the `google.cloud.aiplatform.v1.PipelineService` gRPC service on 127.0.0.1.

It serves CreatePipelineJob, GetPipelineJob, CancelPipelineJob and ListPipelineJobs with the
client library's own message types, so `PipelineServiceClient` is exercised over a real socket.
Jobs are checked the way Vertex AI checks them where a mistake would only show in production
(`vertex_rules`: job id and label rules, pipeline root, declared and typed parameters, service
account), a duplicate job id is answered ALREADY_EXISTS, every request is recorded, faults can
be injected, and a test moves a job along with `set_state`, getting the Pub/Sub message that the
Cloud Logging sink of `aiplatform.googleapis.com/pipeline_job_events` would deliver for it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc
from google.cloud import aiplatform_v1
from google.protobuf import empty_pb2, json_format, timestamp_pb2
from google.rpc import status_pb2

from tests.fakes.grpc_fake import Fault, RecordingGrpcService
from tests.fakes.vertex_rules import Rejection, job_filter, validate_job
from tests.fakes.vertex_schedules import FakeVertexSchedules
from tests.fakes.vertex_tasks import Logged, job_detail

SERVICE = "google.cloud.aiplatform.v1.PipelineService"
PipelineState = aiplatform_v1.PipelineState
TERMINAL = frozenset({PipelineState.PIPELINE_STATE_SUCCEEDED, PipelineState.PIPELINE_STATE_FAILED,
                      PipelineState.PIPELINE_STATE_CANCELLED})
_PERMISSIONS = {"CreatePipelineJob": "create", "GetPipelineJob": "get", "ListPipelineJobs": "list",
                "CancelPipelineJob": "cancel"}
DEFAULT_MESSAGES = {
    grpc.StatusCode.PERMISSION_DENIED: "Permission 'aiplatform.pipelineJobs.{permission}' denied on resource "
                                       "'//aiplatform.googleapis.com/projects/{project}/locations/{location}' "
                                       "(or it may not exist).",
    grpc.StatusCode.UNAVAILABLE: "The service is currently unavailable.",
    grpc.StatusCode.DEADLINE_EXCEEDED: "Deadline Exceeded",
    grpc.StatusCode.ALREADY_EXISTS: "PipelineJob already exists.",
    grpc.StatusCode.INVALID_ARGUMENT: "Request contains an invalid argument.",
    grpc.StatusCode.FAILED_PRECONDITION: "Precondition check failed.",
}


@dataclass(frozen=True)
class PipelineEventMessage:
    """The Pub/Sub message of one pipeline state event: attributes and LogEntry JSON data."""

    attributes: dict[str, str]
    data: bytes


@dataclass
class _Stored:
    job: aiplatform_v1.PipelineJob
    project: str
    location: str
    seq: int


class FakeVertexPipelines(RecordingGrpcService):
    """A running fake Vertex AI PipelineService (use as a context manager)."""

    def __init__(self, project_number: int = 123456789) -> None:
        super().__init__()
        self.project_number = project_number
        self._jobs: dict[tuple[str, str], _Stored] = {}
        self._seq = 0
        self.schedules = FakeVertexSchedules(project_number)

    # lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Serve on an ephemeral port of 127.0.0.1."""
        job = aiplatform_v1.PipelineJob.serialize
        handlers = {
            "CreatePipelineJob": self._unary("CreatePipelineJob", aiplatform_v1.CreatePipelineJobRequest,
                                             self._create, job),
            "GetPipelineJob": self._unary("GetPipelineJob", aiplatform_v1.GetPipelineJobRequest, self._get, job),
            "ListPipelineJobs": self._unary("ListPipelineJobs", aiplatform_v1.ListPipelineJobsRequest, self._list,
                                            aiplatform_v1.ListPipelineJobsResponse.serialize),
            "CancelPipelineJob": self._unary("CancelPipelineJob", aiplatform_v1.CancelPipelineJobRequest,
                                             self._cancel, lambda empty: empty.SerializeToString()),
        }
        self._serve(grpc.method_handlers_generic_handler(SERVICE, handlers),
                                         self.schedules.handler())

    # test controls -------------------------------------------------------------------------

    def fail(self, method: str, code: grpc.StatusCode, *, times: int | None = 1, message: str | None = None,
             after_processing: bool = False) -> None:
        """Answer the next `times` calls of `method` (None: every call) with `code`.

        `after_processing` does the work first and then fails, like an answer lost on the way.
        """
        default = DEFAULT_MESSAGES.get(code, code.name)
        text = message or default.format(permission=_PERMISSIONS.get(method, method), project="PROJECT",
                                         location="LOCATION")
        self._add_fault(method, Fault(code, text, times, after_processing))

    @property
    def jobs(self) -> list[aiplatform_v1.PipelineJob]:
        """Every job, oldest first (copies)."""
        with self._lock:
            return [aiplatform_v1.PipelineJob(s.job) for s in sorted(self._jobs.values(), key=lambda s: s.seq)]

    def job(self, job_id: str) -> aiplatform_v1.PipelineJob:
        """The job `job_id` (a copy); KeyError when there is none."""
        with self._lock:
            return aiplatform_v1.PipelineJob(self._by_id(job_id).job)

    def set_state(self, job_id: str, state: PipelineState | str, error: str | None = None, *,
                  code: int = 9, logged: Logged | None = None) -> PipelineEventMessage:
        """Move a job to `state` (with `error` as `job.error`); returns its pipeline state event.

        A final state fills the job's `job_detail.task_details` (`vertex_tasks`); `logged` (task →
        output → metadata) is what its components logged in their output artifacts."""
        state = PipelineState[state] if isinstance(state, str) else PipelineState(state)
        with self._lock:
            stored = self._by_id(job_id)
            job = stored.job
            if state in TERMINAL:
                job.job_detail = job_detail(job, self.project_number, stored.location, state.name, logged or {},
                                            _now())
            job.state = state
            job.update_time = _now()
            if state != PipelineState.PIPELINE_STATE_QUEUED and not job.start_time:
                job.start_time = _now()
            if state in TERMINAL:
                job.end_time = _now()
            if error is not None:
                job.error = status_pb2.Status(code=code, message=error)
        return self.pipeline_event(job_id, state)

    def pipeline_event(self, job_id: str, state: PipelineState | str | None = None) -> PipelineEventMessage:
        """The message the log sink publishes for the job's state change (default: its current state)."""
        with self._lock:
            stored = self._by_id(job_id)
            job = aiplatform_v1.PipelineJob(stored.job)
        state = PipelineState(job.state) if state is None else (
            PipelineState[state] if isinstance(state, str) else PipelineState(state))
        spec = json_format.MessageToDict(aiplatform_v1.PipelineJob.pb(job).pipeline_spec)
        pipeline_name = str((spec.get("pipelineInfo") or {}).get("name", ""))
        stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        billing_id = str(int(hashlib.sha256(job_id.encode()).hexdigest()[:12], 16))
        entry = {
            "insertId": f"{job_id}-{state.name.lower()}",
            "jsonPayload": {
                "@type": "type.googleapis.com/google.cloud.aiplatform.logging.PipelineJobLogEntry",
                "pipelineName": pipeline_name,
                "state": state.name,
            },
            "resource": {
                "type": "aiplatform.googleapis.com/PipelineJob",
                "labels": {"pipeline_job_id": job_id, "location": stored.location,
                           "resource_container": f"projects/{self.project_number}"},
            },
            "timestamp": stamp,
            "severity": "ERROR" if state == PipelineState.PIPELINE_STATE_FAILED else "INFO",
            "labels": {"pipeline_name": pipeline_name, "service_account": job.service_account,
                       "vertex-ai-pipelines-run-billing-id": billing_id},
            "logName": f"projects/{stored.project}/logs/aiplatform.googleapis.com%2Fpipeline_job_events",
            "receiveTimestamp": stamp,
        }
        return PipelineEventMessage(attributes={"logging.googleapis.com/timestamp": stamp},
                                    data=json.dumps(entry).encode())

    # RPCs ----------------------------------------------------------------------------------

    def _create(self, request: aiplatform_v1.CreatePipelineJobRequest) -> aiplatform_v1.PipelineJob:
        project, location = _parent(request.parent)
        job = aiplatform_v1.PipelineJob(request.pipeline_job)
        job_id = validate_job(job, request.pipeline_job_id)
        with self._lock:
            if (location, job_id) in self._jobs:
                raise Rejection(grpc.StatusCode.ALREADY_EXISTS, f"PipelineJob projects/{self.project_number}/"
                                f"locations/{location}/pipelineJobs/{job_id} already exists.")
            self._seq += 1
            job.name = f"projects/{self.project_number}/locations/{location}/pipelineJobs/{job_id}"
            job.state = PipelineState.PIPELINE_STATE_PENDING
            job.create_time = job.update_time = _now()
            self._jobs[(location, job_id)] = _Stored(job, project, location, self._seq)
            return aiplatform_v1.PipelineJob(job)

    def _get(self, request: aiplatform_v1.GetPipelineJobRequest) -> aiplatform_v1.PipelineJob:
        with self._lock:
            return aiplatform_v1.PipelineJob(self._find(request.name).job)

    def _list(self, request: aiplatform_v1.ListPipelineJobsRequest) -> aiplatform_v1.ListPipelineJobsResponse:
        project, location = _parent(request.parent)
        match = job_filter(request.filter)
        with self._lock:
            found = [s for s in self._jobs.values()
                     if s.location == location and self._owns(s, project) and match(s.job)]
            found.sort(key=lambda s: s.seq, reverse=True)
            jobs = [aiplatform_v1.PipelineJob(s.job) for s in found]
        start = int(request.page_token or 0)
        size = request.page_size or 100
        token = str(start + size) if start + size < len(jobs) else ""
        return aiplatform_v1.ListPipelineJobsResponse(pipeline_jobs=jobs[start:start + size], next_page_token=token)

    def _cancel(self, request: aiplatform_v1.CancelPipelineJobRequest) -> empty_pb2.Empty:
        with self._lock:
            job = self._find(request.name).job
            if job.state in TERMINAL:
                raise Rejection(grpc.StatusCode.FAILED_PRECONDITION, f"Cannot cancel pipeline job {job.name} in "
                                f"state {PipelineState(job.state).name}.")
            job.state = PipelineState.PIPELINE_STATE_CANCELLING
            job.update_time = _now()
        return empty_pb2.Empty()

    # plumbing ------------------------------------------------------------------------------

    def _find(self, name: str) -> _Stored:
        parts = name.split("/")
        if len(parts) != 6 or parts[0] != "projects" or parts[2] != "locations" or parts[4] != "pipelineJobs":
            raise Rejection(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid PipelineJob resource name {name!r}.")
        stored = self._jobs.get((parts[3], parts[5]))
        if stored is None or not self._owns(stored, parts[1]):
            raise Rejection(grpc.StatusCode.NOT_FOUND, f'The PipelineJob "{name}" does not exist.')
        return stored

    def _by_id(self, job_id: str) -> _Stored:
        found = [s for (_, jid), s in self._jobs.items() if jid == job_id]
        if not found:
            raise KeyError(f"no pipeline job {job_id!r}")
        return found[0]

    def _owns(self, stored: _Stored, project: str) -> bool:
        return project in (stored.project, str(self.project_number))


def _parent(parent: str) -> tuple[str, str]:
    parts = parent.split("/")
    if len(parts) != 4 or parts[0] != "projects" or parts[2] != "locations" or not parts[1] or not parts[3]:
        raise Rejection(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid parent {parent!r}: expected "
                        "projects/{project}/locations/{location}.")
    return parts[1], parts[3]


def _now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp
