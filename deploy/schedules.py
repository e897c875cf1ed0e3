"""Recurring runs of deployed pipelines: Vertex AI schedules (`ScheduleServiceClient`).

One schedule per pipeline, found by its display name `kfp-bot-<pipeline>`: a deploy whose
`settings.yaml` has a `schedule:` creates it, or updates it (cron, time zone, parameters, template)
and resumes it if it was paused; a deploy without one, or a deleted pipeline, pauses it (or
deletes it, `Removal.DELETE`). Applying the same settings twice changes nothing visible, so a
redelivered deploy is harmless.
"""

from __future__ import annotations

import enum
import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from google.api_core import exceptions as api_exceptions
from google.auth.credentials import Credentials
from google.cloud import aiplatform_v1
from google.cloud.aiplatform_v1.services.schedule_service.transports import ScheduleServiceGrpcTransport
from google.protobuf import field_mask_pb2, json_format, struct_pb2

from deploy.errors import DeployError
from deploy.google_clients import CREDENTIALS_HINT, api_cause, first_line, google_client
from deploy.runners.vertex import DEFAULT_RETRY
from pipeline_registry.settings import ScheduleOptions

log = logging.getLogger(__name__)

DISPLAY_PREFIX = "kfp-bot-"
_UPDATED_FIELDS = ("cron", "create_pipeline_job_request", "max_concurrent_run_count")


class Removal(enum.Enum):
    """What happens to the schedule of a pipeline that no longer asks for one."""

    PAUSE = "pause"
    DELETE = "delete"


def display_name_for(pipeline: str) -> str:
    """The schedule's display name, by which the bot finds it again."""
    return f"{DISPLAY_PREFIX}{pipeline}"


def cron_for(schedule: ScheduleOptions) -> str:
    """Vertex AI's cron with its time zone prefix: `TZ=Europe/Paris 0 6 * * *`."""
    return f"TZ={schedule.time_zone} {schedule.cron}"


class VertexSchedules:
    """The `Schedules` port on Vertex AI, in one project and region."""

    def __init__(self, client: aiplatform_v1.ScheduleServiceClient, project: str, region: str, *,
                 pipeline_root: str | None, service_account: str | None = None,
                 removal: Removal = Removal.PAUSE, call_timeout: float = 30.0) -> None:
        self.client = client
        self.project = project
        self.region = region
        self.pipeline_root = pipeline_root
        self.service_account = service_account
        self.removal = removal
        self.call_timeout = call_timeout

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"

    def apply(self, pipeline: str, template: str, schedule: ScheduleOptions, *,
              parameters: Mapping[str, Any]) -> str:
        """Create or update the pipeline's schedule (resuming it if paused); its resource name.

        `template` is an Artifact Registry template URL (used as the job's `template_uri`) or a
        compiled package file (its spec is embedded).
        """
        existing = self._find(pipeline)
        wanted = aiplatform_v1.Schedule(
            display_name=display_name_for(pipeline), cron=cron_for(schedule),
            max_concurrent_run_count=schedule.max_concurrent_runs,
            create_pipeline_job_request=self._job_request(pipeline, template, parameters))
        if existing is None:
            created = self._call("create the schedule of", pipeline, self.client.create_schedule,
                                 request=aiplatform_v1.CreateScheduleRequest(parent=self.parent, schedule=wanted))
            log.info("Vertex AI schedule %s created for %s (%s)", created.name, pipeline, wanted.cron)
            return created.name
        wanted.name = existing.name
        self._call("update the schedule of", pipeline, self.client.update_schedule,
                   request=aiplatform_v1.UpdateScheduleRequest(
                       schedule=wanted, update_mask=field_mask_pb2.FieldMask(paths=list(_UPDATED_FIELDS))))
        if existing.state == aiplatform_v1.Schedule.State.PAUSED:
            self._call("resume the schedule of", pipeline, self.client.resume_schedule,
                       request=aiplatform_v1.ResumeScheduleRequest(name=existing.name))
        log.info("Vertex AI schedule %s of %s updated (%s)", existing.name, pipeline, wanted.cron)
        return existing.name

    def _find(self, pipeline: str) -> aiplatform_v1.Schedule | None:
        name = display_name_for(pipeline)
        pages = self._call("list the schedules for", pipeline, self.client.list_schedules,
                           request=aiplatform_v1.ListSchedulesRequest(parent=self.parent,
                                                                      filter=f'display_name="{name}"'))
        found = [s for s in pages if s.display_name == name]
        return found[0] if found else None

    def remove(self, pipeline: str) -> None:
        """Pause (or delete, `Removal.DELETE`) the pipeline's schedule; nothing when it has none."""
        existing = self._find(pipeline)
        if existing is None:
            return
        if self.removal is Removal.DELETE:
            operation = self._call("delete the schedule of", pipeline, self.client.delete_schedule,
                                   request=aiplatform_v1.DeleteScheduleRequest(name=existing.name))
            operation.result(timeout=self.call_timeout)
            log.info("Vertex AI schedule %s of %s deleted", existing.name, pipeline)
        elif existing.state != aiplatform_v1.Schedule.State.PAUSED:
            self._call("pause the schedule of", pipeline, self.client.pause_schedule,
                       request=aiplatform_v1.PauseScheduleRequest(name=existing.name))
            log.info("Vertex AI schedule %s of %s paused", existing.name, pipeline)

    def _job_request(self, pipeline: str, template: str,
                     parameters: Mapping[str, Any]) -> aiplatform_v1.CreatePipelineJobRequest:
        if not self.pipeline_root or not self.pipeline_root.startswith("gs://"):
            raise DeployError(f"the schedule of '{pipeline}' needs a gs:// pipeline root, got {self.pipeline_root!r}",
                              hint="set KFP_BOT_PIPELINE_ROOT to a Cloud Storage URI")
        config = aiplatform_v1.PipelineJob.RuntimeConfig(gcs_output_directory=self.pipeline_root)
        for name, value in parameters.items():
            if value is not None:
                config.parameter_values[name] = json_format.ParseDict(value, struct_pb2.Value())
        job = aiplatform_v1.PipelineJob(display_name=f"{pipeline} (scheduled by kfp-bot)", runtime_config=config,
                                        labels={"kfp-bot-pipeline": _label(pipeline),
                                                "kfp-bot-trigger": "schedule"},
                                        service_account=self.service_account or "")
        if template.startswith("https://"):
            job.template_uri = template
        else:
            job.pipeline_spec = json_format.ParseDict(_read_spec(pipeline, Path(template)), struct_pb2.Struct())
        return aiplatform_v1.CreatePipelineJobRequest(parent=self.parent, pipeline_job=job)

    def _call(self, action: str, pipeline: str, method: Any, **kwargs: Any) -> Any:
        try:
            return method(**kwargs, retry=DEFAULT_RETRY, timeout=self.call_timeout)
        except (api_exceptions.GoogleAPICallError, api_exceptions.RetryError) as exc:
            cause = api_cause(exc)
            hint = ("grant the bot's service account roles/aiplatform.user on the project"
                    if isinstance(cause, api_exceptions.PermissionDenied) else None)
            raise DeployError(f"Vertex AI could not {action} '{pipeline}' in project {self.project} "
                              f"({self.region}): {first_line(cause)}", hint=hint) from None


def _read_spec(pipeline: str, path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else next(iter(yaml.safe_load_all(text)), None)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise DeployError(f"{path.name}: cannot read the compiled pipeline of '{pipeline}' for its schedule: {exc}"
                          ) from None
    if isinstance(data, dict) and isinstance(data.get("pipelineSpec"), dict):
        data = data["pipelineSpec"]
    if not isinstance(data, dict) or not ("root" in data or "pipelineInfo" in data):
        raise DeployError(f"{path.name}: not a compiled kfp 2 pipeline; Vertex AI schedules need one")
    return data


def _label(text: str) -> str:
    return re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-")[:63]


def make_schedule_client(region: str, endpoint: str | None = None, *,
                         credentials: Credentials | None = None) -> aiplatform_v1.ScheduleServiceClient:
    """A Vertex AI schedule client for `region`; a loopback endpoint (fakes) gets an insecure
    channel, any other `credentials` or Application Default Credentials (without any,
    `DeployError` says how to provide them)."""
    return google_client(aiplatform_v1.ScheduleServiceClient, endpoint or f"{region}-aiplatform.googleapis.com",
                         transport=ScheduleServiceGrpcTransport, credentials=credentials,
                         refuse=lambda why: DeployError(f"no Google Cloud credentials for Vertex AI schedules ({why})",
                                                        hint=CREDENTIALS_HINT))
