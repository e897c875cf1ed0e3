"""A fake Vertex AI ScheduleService (`google.cloud.aiplatform.v1.ScheduleService`), served on the
same gRPC server as the fake PipelineService (`tests.fakes.vertex.FakeVertexPipelines.schedules`).

It serves CreateSchedule, GetSchedule, ListSchedules (filter `display_name="..."`), UpdateSchedule
(honouring the update mask), PauseSchedule, ResumeSchedule and DeleteSchedule (a long-running
operation that is already done) with the client library's own message types, checks what Vertex
AI checks where a mistake would only show in production (a `TZ=` cron, a pipeline job with a spec
or template, a gs:// output directory), and records every request.
"""

from __future__ import annotations

import re
import uuid

import grpc
from google.cloud import aiplatform_v1
from google.longrunning import operations_pb2
from google.protobuf import any_pb2, empty_pb2, timestamp_pb2

from tests.fakes.grpc_fake import RecordingGrpcService
from tests.fakes.vertex_rules import Rejection

SERVICE = "google.cloud.aiplatform.v1.ScheduleService"
State = aiplatform_v1.Schedule.State
_CRON = re.compile(r"^(TZ=[A-Za-z_+\-/0-9]+ )?(\S+ ){4}\S+$")
_FILTER = re.compile(r'^display_name="([^"]*)"$')


class FakeVertexSchedules(RecordingGrpcService):
    """The schedules of a fake Vertex AI; `handler()` is registered on the fake's gRPC server."""

    def __init__(self, project_number: int) -> None:
        super().__init__()
        self.project_number = project_number
        self._schedules: dict[str, aiplatform_v1.Schedule] = {}

    def handler(self) -> grpc.GenericRpcHandler:
        """The gRPC handler of the ScheduleService methods."""
        schedule = aiplatform_v1.Schedule.serialize
        methods = {
            "CreateSchedule": self._unary("CreateSchedule", aiplatform_v1.CreateScheduleRequest, self._create,
                                          schedule),
            "GetSchedule": self._unary("GetSchedule", aiplatform_v1.GetScheduleRequest,
                                       lambda r: self._copy(self._find(r.name)), schedule),
            "ListSchedules": self._unary("ListSchedules", aiplatform_v1.ListSchedulesRequest, self._list,
                                         aiplatform_v1.ListSchedulesResponse.serialize),
            "UpdateSchedule": self._unary("UpdateSchedule", aiplatform_v1.UpdateScheduleRequest, self._update,
                                          schedule),
            "PauseSchedule": self._unary("PauseSchedule", aiplatform_v1.PauseScheduleRequest,
                                         lambda r: self._set_state(r.name, State.PAUSED),
                                         lambda e: e.SerializeToString()),
            "ResumeSchedule": self._unary("ResumeSchedule", aiplatform_v1.ResumeScheduleRequest,
                                          lambda r: self._set_state(r.name, State.ACTIVE),
                                          lambda e: e.SerializeToString()),
            "DeleteSchedule": self._unary("DeleteSchedule", aiplatform_v1.DeleteScheduleRequest, self._delete,
                                          lambda op: op.SerializeToString()),
        }
        return grpc.method_handlers_generic_handler(SERVICE, methods)

    # test view -----------------------------------------------------------------------------

    @property
    def schedules(self) -> list[aiplatform_v1.Schedule]:
        """Every schedule that exists (copies), by creation."""
        with self._lock:
            return [self._copy(s) for s in self._schedules.values()]

    def named(self, display_name: str) -> aiplatform_v1.Schedule | None:
        """The schedule with that display name, if any."""
        return next((s for s in self.schedules if s.display_name == display_name), None)

    # RPCs ----------------------------------------------------------------------------------

    def _create(self, request: aiplatform_v1.CreateScheduleRequest) -> aiplatform_v1.Schedule:
        parts = request.parent.split("/")
        if len(parts) != 4 or parts[0] != "projects" or parts[2] != "locations":
            raise Rejection(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid parent {request.parent!r}.")
        schedule = aiplatform_v1.Schedule(request.schedule)
        _validate(schedule)
        with self._lock:
            schedule.name = (f"projects/{self.project_number}/locations/{parts[3]}/schedules/"
                             f"{uuid.uuid4().int % 10**18}")
            schedule.state = State.ACTIVE
            schedule.create_time = schedule.update_time = _now()
            self._schedules[schedule.name] = schedule
            return self._copy(schedule)

    def _list(self, request: aiplatform_v1.ListSchedulesRequest) -> aiplatform_v1.ListSchedulesResponse:
        wanted = None
        if request.filter:
            match = _FILTER.match(request.filter)
            if match is None:
                raise Rejection(grpc.StatusCode.INVALID_ARGUMENT, f"Unsupported filter {request.filter!r}.")
            wanted = match.group(1)
        location = request.parent.split("/")[-1]
        with self._lock:
            found = [self._copy(s) for s in self._schedules.values()
                     if s.name.split("/")[3] == location and (wanted is None or s.display_name == wanted)]
        return aiplatform_v1.ListSchedulesResponse(schedules=found)

    def _update(self, request: aiplatform_v1.UpdateScheduleRequest) -> aiplatform_v1.Schedule:
        if not request.update_mask.paths:
            raise Rejection(grpc.StatusCode.INVALID_ARGUMENT, "update_mask is required.")
        with self._lock:
            stored = self._find(request.schedule.name)
            for path in request.update_mask.paths:
                if path not in ("display_name", "cron", "create_pipeline_job_request", "max_concurrent_run_count",
                                "max_run_count", "start_time", "end_time", "allow_queueing"):
                    raise Rejection(grpc.StatusCode.INVALID_ARGUMENT, f"Field {path!r} cannot be updated.")
                setattr(stored, path, getattr(request.schedule, path))
            _validate(stored)
            stored.update_time = _now()
            return self._copy(stored)

    def _set_state(self, name: str, state: State) -> empty_pb2.Empty:
        with self._lock:
            stored = self._find(name)
            if state == State.PAUSED and stored.state != State.ACTIVE:
                raise Rejection(grpc.StatusCode.FAILED_PRECONDITION, f"Schedule {name} is not active.")
            if state == State.ACTIVE and stored.state != State.PAUSED:
                raise Rejection(grpc.StatusCode.FAILED_PRECONDITION, f"Schedule {name} is not paused.")
            stored.state = state
            stored.update_time = _now()
        return empty_pb2.Empty()

    def _delete(self, request: aiplatform_v1.DeleteScheduleRequest) -> operations_pb2.Operation:
        with self._lock:
            self._find(request.name)
            del self._schedules[request.name]
        response = any_pb2.Any()
        response.Pack(empty_pb2.Empty())
        metadata = any_pb2.Any()
        metadata.Pack(aiplatform_v1.DeleteOperationMetadata.pb(aiplatform_v1.DeleteOperationMetadata()))
        return operations_pb2.Operation(name=f"{request.name}/operations/1", done=True, response=response,
                                        metadata=metadata)

    # plumbing ------------------------------------------------------------------------------

    def _find(self, name: str) -> aiplatform_v1.Schedule:
        stored = self._schedules.get(name)
        if stored is None:
            raise Rejection(grpc.StatusCode.NOT_FOUND, f'The Schedule "{name}" does not exist.')
        return stored

    @staticmethod
    def _copy(schedule: aiplatform_v1.Schedule) -> aiplatform_v1.Schedule:
        return aiplatform_v1.Schedule(schedule)


def _validate(schedule: aiplatform_v1.Schedule) -> None:
    if not _CRON.match(schedule.cron):
        raise Rejection(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid cron {schedule.cron!r}.")
    if schedule.max_concurrent_run_count < 1:
        raise Rejection(grpc.StatusCode.INVALID_ARGUMENT, "max_concurrent_run_count must be positive.")
    request = schedule.create_pipeline_job_request
    job = request.pipeline_job
    if not request.parent.startswith("projects/"):
        raise Rejection(grpc.StatusCode.INVALID_ARGUMENT, "create_pipeline_job_request.parent is required.")
    if not job.template_uri and not job.pipeline_spec:
        raise Rejection(grpc.StatusCode.INVALID_ARGUMENT, "The pipeline job needs a pipeline_spec or template_uri.")
    if not job.runtime_config.gcs_output_directory.startswith("gs://"):
        raise Rejection(grpc.StatusCode.INVALID_ARGUMENT, "runtime_config.gcs_output_directory must be gs://.")


def _now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp
