"""A fake Cloud Build: the `google.devtools.cloudbuild.v1.CloudBuild` gRPC service on 127.0.0.1.

It serves CreateBuild, GetBuild, ListBuilds (with `tags="…"` filters and paging) and
CancelBuild with the client library's own message types, so `CloudBuildClient` is exercised
over a real socket. It validates builds the way Cloud Build does where a mistake would only
show in production (tag rule, step ids, substitutions and `$` escaping, service account and
logging), records every request, can be told to fail, and lets a test move a build along and
get the `cloud-builds` Pub/Sub message Cloud Build would publish for it. Moving a build along
fetches its source and runs the steps it can run (`cloudbuild_worker`): a source it cannot fetch
fails the build with FETCH_SOURCE_FAILED whatever the test asked for, a failing step fails it at
that step, and a successful build's artifacts are uploaded to the fake GCS.
"""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import grpc
from google.cloud.devtools import cloudbuild_v1
from google.longrunning import operations_pb2
from google.protobuf import any_pb2, duration_pb2, json_format, timestamp_pb2

from tests.fakes.cloudbuild_rules import BUILT_INS, TERMINAL, Rejection, build_filter, expand, mark_failure, validate
from tests.fakes.cloudbuild_worker import StepFailure, fetch, new_workspace, run_steps, upload_artifacts
from tests.fakes.grpc_fake import Fault, RecordingGrpcService
from tests.fakes.template_stores import FakeGcs

SERVICE = "google.devtools.cloudbuild.v1.CloudBuild"
Status = cloudbuild_v1.Build.Status
FailureType = cloudbuild_v1.Build.FailureInfo.FailureType

_PERMISSIONS = {"CreateBuild": "create", "GetBuild": "get", "ListBuilds": "list", "CancelBuild": "update"}
DEFAULT_MESSAGES = {
    grpc.StatusCode.PERMISSION_DENIED: "Permission 'cloudbuild.builds.{permission}' denied on resource "
                                       "(or it may not exist).",
    grpc.StatusCode.UNAVAILABLE: "The service is currently unavailable.",
    grpc.StatusCode.DEADLINE_EXCEEDED: "Deadline Exceeded",
    grpc.StatusCode.ALREADY_EXISTS: "build already exists",
}


@dataclass(frozen=True)
class BuildNotification:
    """The `cloud-builds` Pub/Sub message of one build state: attributes and JSON data."""

    attributes: dict[str, str]
    data: bytes


@dataclass
class _Stored:
    build: cloudbuild_v1.Build
    location: str
    seq: int = 0


class FakeCloudBuild(RecordingGrpcService):
    """A running fake Cloud Build for one or more projects (use as a context manager)."""

    def __init__(self, project_number: int = 123456789, *, gcs: FakeGcs | None = None) -> None:
        super().__init__()
        self.project_number = project_number
        self.gcs = gcs
        self.private_repos: set[str] = set()  # owner/name of repositories git cannot fetch anonymously
        self.linked: dict[str, Path] = {}  # connection repository resource -> local git repository
        # Cloud Build's steps reach PyPI; here a test may give a folder of real distributions that
        # pip in a Python step finds instead (its find-links), else pip only finds what is installed.
        self.package_folder: Path | None = None
        self.step_failures: dict[str, StepFailure] = {}
        self.workspaces: dict[str, Path] = {}
        self._builds: dict[str, _Stored] = {}
        self._seq = 0

    # lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Serve on an ephemeral port of 127.0.0.1."""
        handlers = {
            "CreateBuild": self._unary("CreateBuild", cloudbuild_v1.CreateBuildRequest, self._create,
                                       lambda op: op.SerializeToString()),
            "GetBuild": self._unary("GetBuild", cloudbuild_v1.GetBuildRequest, self._get,
                                    cloudbuild_v1.Build.serialize),
            "ListBuilds": self._unary("ListBuilds", cloudbuild_v1.ListBuildsRequest, self._list,
                                      cloudbuild_v1.ListBuildsResponse.serialize),
            "CancelBuild": self._unary("CancelBuild", cloudbuild_v1.CancelBuildRequest, self._cancel,
                                       cloudbuild_v1.Build.serialize),
        }
        self._serve(grpc.method_handlers_generic_handler(SERVICE, handlers))

    def stop(self) -> None:
        """Stop serving and remove the build workspaces."""
        super().stop()
        for workspace in self.workspaces.values():
            shutil.rmtree(workspace, ignore_errors=True)

    # test controls -------------------------------------------------------------------------

    def fail(self, method: str, code: grpc.StatusCode, *, times: int | None = 1, message: str | None = None,
             after_processing: bool = False) -> None:
        """Answer the next `times` calls of `method` (None: every call) with `code`.

        `after_processing` does the work first and then fails, like a response lost on the way.
        """
        default = DEFAULT_MESSAGES.get(code, code.name).format(permission=_PERMISSIONS.get(method, method))
        fault = Fault(code, message or default, times, after_processing)
        self._add_fault(method, fault)

    @property
    def builds(self) -> list[cloudbuild_v1.Build]:
        """Every build, oldest first (copies)."""
        with self._lock:
            return [cloudbuild_v1.Build(s.build) for s in sorted(self._builds.values(), key=lambda s: s.seq)]

    def get(self, build_id: str) -> cloudbuild_v1.Build:
        with self._lock:
            return cloudbuild_v1.Build(self._builds[build_id].build)

    def notification(self, build_id: str) -> BuildNotification:
        """The message Cloud Build publishes on `cloud-builds` for the build's current state."""
        build = self.get(build_id)
        return BuildNotification(attributes={"buildId": build.id, "status": Status(build.status).name},
                                 data=json_format.MessageToJson(cloudbuild_v1.Build.pb(build)).encode())

    def start_working(self, build_id: str) -> BuildNotification:
        """QUEUED → WORKING, after fetching the source (FAILURE when it cannot be fetched)."""
        if not self._fetched(build_id):
            return self.notification(build_id)
        with self._lock:
            build = self._builds[build_id].build
            build.status = Status.WORKING
            build.start_time = _now()
            for step in build.steps:
                step.status = Status.WORKING
        return self.notification(build_id)

    def _fetched(self, build_id: str) -> bool:
        """Fetch the source into the build's workspace once; False (and the build FAILURE) when it cannot."""
        if build_id in self.workspaces:
            return True
        workspace = new_workspace(build_id)
        with self._lock:
            build = cloudbuild_v1.Build(self._builds[build_id].build)
        problem = fetch(build, self.gcs, self.private_repos, workspace, self.linked)
        if problem is None:
            self.workspaces[build_id] = workspace
            return True
        with self._lock:
            stored = self._builds[build_id].build
            stored.status = Status.FAILURE
            stored.finish_time = _now()
            stored.failure_info = cloudbuild_v1.Build.FailureInfo(type_=FailureType.FETCH_SOURCE_FAILED,
                                                                   detail=problem)
            stored.status_detail = problem
        return False

    def finish(self, build_id: str, status: Status | str, failing_step: str | None = None, *,
               failure_type: FailureType | None = None, detail: str | None = None) -> BuildNotification:
        """End a build as Cloud Build would report it; returns its `cloud-builds` message.

        For FAILURE (and TIMEOUT) the step `failing_step` (default: the first) carries the
        status and the other steps end CANCELLED; `failure_type` without a step models a
        failure outside the steps (fetching the source, pushing the images).
        """
        status = Status[status] if isinstance(status, str) else Status(status)
        if self.get(build_id).failure_info.type_ == FailureType.FETCH_SOURCE_FAILED:
            return self.notification(build_id)  # it never got its source: nothing else can happen
        if status == Status.SUCCESS and self.get(build_id).status not in TERMINAL:
            if not self._fetched(build_id):
                return self.notification(build_id)
            failed = run_steps(self.expanded_steps(build_id), self.workspaces[build_id], self.package_folder)
            if failed is not None:
                self.step_failures[build_id] = failed  # the step's log tail, as Cloud Logging keeps it
                status, failing_step = Status.FAILURE, failed.step_id
                detail = (f'Build step failure: build step "{failed.step_id}" failed: step exited with '
                          f"non-zero status: {failed.exit_code}")
        with self._lock:
            build = self._builds[build_id].build
            if not build.start_time:
                build.start_time = _now()
            build.finish_time = _now()
            build.status = status
            if status == Status.SUCCESS:
                for step in build.steps:
                    step.status = Status.SUCCESS
                build.results = cloudbuild_v1.Results(images=[
                    cloudbuild_v1.BuiltImage(name=image, digest=_digest(image)) for image in build.images])
                if build_id in self.workspaces:
                    upload_artifacts(build, self.gcs, self.workspaces[build_id])
            elif failure_type is not None:
                for step in build.steps:
                    step.status = Status.SUCCESS
                build.failure_info = cloudbuild_v1.Build.FailureInfo(type_=failure_type, detail=detail or "")
                build.status_detail = detail or ""
            else:
                mark_failure(build, status, failing_step, detail)
        return self.notification(build_id)

    def expanded_steps(self, build_id: str) -> list[cloudbuild_v1.BuildStep]:
        """The build's steps with substitutions applied, as a worker would run them."""
        with self._lock:
            stored = self._builds[build_id]
            values = self._values(stored)
            steps = []
            for step in stored.build.steps:
                expanded = cloudbuild_v1.BuildStep(step)
                expanded.name = expand(step.name, values)
                expanded.entrypoint = expand(step.entrypoint, values)
                expanded.dir_ = expand(step.dir_, values)
                expanded.args = [expand(a, values) for a in step.args]
                expanded.env = [expand(e, values) for e in step.env]
                steps.append(expanded)
            return steps

    # RPCs ----------------------------------------------------------------------------------

    def _create(self, request: cloudbuild_v1.CreateBuildRequest) -> operations_pb2.Operation:
        project = request.project_id
        if not project:
            raise Rejection(grpc.StatusCode.INVALID_ARGUMENT, "project_id is required")
        location = self._location(request.parent, project)
        build = cloudbuild_v1.Build(request.build)
        validate(build, location)
        build_id = str(uuid.uuid4())
        build.id = build_id
        build.project_id = project
        build.name = f"projects/{project}/locations/{location}/builds/{build_id}"
        build.status = Status.QUEUED
        build.create_time = _now()
        if not build.timeout:
            build.timeout = duration_pb2.Duration(seconds=600)
        region = "" if location == "global" else f";region={location}"
        build.log_url = (f"https://console.cloud.google.com/cloud-build/builds{region}/{build_id}"
                         f"?project={self.project_number}")
        with self._lock:
            self._seq += 1
            self._builds[build_id] = _Stored(build, location, self._seq)
        metadata = any_pb2.Any()
        metadata.Pack(cloudbuild_v1.BuildOperationMetadata.pb(cloudbuild_v1.BuildOperationMetadata(build=build)))
        name = base64.b64encode(build_id.encode()).decode()
        return operations_pb2.Operation(name=f"operations/build/{project}/{name}", metadata=metadata, done=False)

    def _get(self, request: cloudbuild_v1.GetBuildRequest) -> cloudbuild_v1.Build:
        return cloudbuild_v1.Build(self._find(request.project_id, request.id, request.name).build)

    def _list(self, request: cloudbuild_v1.ListBuildsRequest) -> cloudbuild_v1.ListBuildsResponse:
        location = self._location(request.parent, request.project_id)
        match = build_filter(request.filter)
        with self._lock:
            found = [s for s in self._builds.values()
                     if s.build.project_id == request.project_id and s.location == location and match(s.build)]
            found.sort(key=lambda s: s.seq, reverse=True)
            builds = [cloudbuild_v1.Build(s.build) for s in found]
        start = int(request.page_token or 0)
        size = request.page_size or 50
        page = builds[start:start + size]
        token = str(start + size) if start + size < len(builds) else ""
        return cloudbuild_v1.ListBuildsResponse(builds=page, next_page_token=token)

    def _cancel(self, request: cloudbuild_v1.CancelBuildRequest) -> cloudbuild_v1.Build:
        stored = self._find(request.project_id, request.id, request.name)
        with self._lock:
            if stored.build.status not in TERMINAL:
                stored.build.status = Status.CANCELLED
                stored.build.finish_time = _now()
                for step in stored.build.steps:
                    step.status = Status.CANCELLED
            return cloudbuild_v1.Build(stored.build)

    # plumbing ------------------------------------------------------------------------------

    def _find(self, project: str, build_id: str, name: str) -> _Stored:
        if name:
            build_id = name.rsplit("/", 1)[-1]
        with self._lock:
            stored = self._builds.get(build_id)
        if stored is None or (project and stored.build.project_id != project):
            raise Rejection(grpc.StatusCode.NOT_FOUND, f'build "{build_id}" not found')
        return stored

    def _location(self, parent: str, project: str) -> str:
        if not parent:
            return "global"
        match = re.fullmatch(r"projects/([^/]+)/locations/([^/]+)", parent)
        if match is None or match.group(1) != project:
            raise Rejection(grpc.StatusCode.INVALID_ARGUMENT, f"invalid parent {parent!r} for project {project!r}")
        return match.group(2)

    def _values(self, stored: _Stored) -> dict[str, str]:
        build = stored.build
        values = {name: "" for name in BUILT_INS}
        values.update(PROJECT_ID=build.project_id, PROJECT_NUMBER=str(self.project_number), BUILD_ID=build.id,
                      LOCATION=stored.location)
        values.update(build.substitutions)
        return values


def _now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp


def _digest(image: str) -> str:
    return "sha256:" + hashlib.sha256(image.encode()).hexdigest()
