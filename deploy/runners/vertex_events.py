"""Vertex AI pipeline state events, as a Cloud Logging sink delivers them on Pub/Sub.

Vertex AI Pipelines writes one entry to the log `aiplatform.googleapis.com/pipeline_job_events`
each time a pipeline job changes state. A log sink routes those entries to a Pub/Sub topic whose
push subscription reaches the bot; the message data is the LogEntry as JSON. The sink's filter
(`log_sink_filter`, used by the deploy scripts):

    logName="projects/PROJECT/logs/aiplatform.googleapis.com%2Fpipeline_job_events"

Only terminal states matter to the bot; adding
`AND jsonPayload.state=("PIPELINE_STATE_SUCCEEDED" OR "PIPELINE_STATE_FAILED" OR "PIPELINE_STATE_CANCELLED")`
to the filter saves messages, and other states are harmless (a run already running stays so).

What an entry carries (as documented for the log and seen in the wild):

    {"logName": "projects/PROJECT/logs/aiplatform.googleapis.com%2Fpipeline_job_events",
     "resource": {"type": "aiplatform.googleapis.com/PipelineJob",
                  "labels": {"pipeline_job_id": "JOB_ID", "location": "REGION",
                             "resource_container": "projects/PROJECT_NUMBER"}},
     "jsonPayload": {"@type": "type.googleapis.com/google.cloud.aiplatform.logging.PipelineJobLogEntry",
                     "state": "PIPELINE_STATE_SUCCEEDED", "pipelineName": "PIPELINE"},
     "labels": {"pipeline_name": ..., "service_account": ..., ...},
     "severity": "INFO", "timestamp": ..., "insertId": ...}

The job's own labels are not in the entry, so the run is found from the job id (see
`vertex_job.run_id_of`). The format is not a versioned API: everything is read defensively, and an
entry that cannot be understood is logged and left to the reconcile pass, which asks Vertex AI.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from google.cloud import aiplatform_v1

from handlers.run_models import RunState

log = logging.getLogger(__name__)

PipelineState = aiplatform_v1.PipelineState

LOG_ID = "aiplatform.googleapis.com/pipeline_job_events"
RESOURCE_TYPE = "aiplatform.googleapis.com/PipelineJob"
PAYLOAD_TYPE = "type.googleapis.com/google.cloud.aiplatform.logging.PipelineJobLogEntry"
LOG_SINK_FILTER = 'logName="projects/{project}/logs/aiplatform.googleapis.com%2Fpipeline_job_events"'
"""The log sink filter, with `{project}` to fill in (see `log_sink_filter`)."""

_TASK_LOG = "pipeline_job_task_events"
_JOB_NAME = re.compile(r"pipelineJobs/([a-z][-a-z0-9]{0,127})\b")

STATE_TO_RUN = {
    PipelineState.PIPELINE_STATE_SUCCEEDED: RunState.SUCCEEDED,
    PipelineState.PIPELINE_STATE_FAILED: RunState.FAILED,
    PipelineState.PIPELINE_STATE_CANCELLED: RunState.CANCELLED,
    PipelineState.PIPELINE_STATE_QUEUED: RunState.RUNNING,
    PipelineState.PIPELINE_STATE_PENDING: RunState.RUNNING,
    PipelineState.PIPELINE_STATE_RUNNING: RunState.RUNNING,
    # Cancelling may still end as succeeded or failed; paused jobs can be resumed.
    PipelineState.PIPELINE_STATE_CANCELLING: RunState.RUNNING,
    PipelineState.PIPELINE_STATE_PAUSED: RunState.RUNNING,
}


@dataclass(frozen=True)
class PipelineJobEvent:
    """What the bot reads from one pipeline state event."""

    job_id: str
    state: PipelineState
    error: str = ""
    location: str | None = None


def log_sink_filter(project: str) -> str:
    """The Cloud Logging sink filter that selects the pipeline state events of `project`."""
    return LOG_SINK_FILTER.format(project=project)


def parse_pipeline_event(attributes: Mapping[str, str], data: bytes) -> PipelineJobEvent | None:
    """The job id and state of a pipeline state event; None for other messages.

    Messages that are not pipeline job events (other topics, task events) are None without a
    word; a pipeline job event without a readable job id or state is None with a warning.
    """
    entry = _json(data)
    if entry is None or not _is_job_event(entry):
        return None
    raw_payload = entry.get("jsonPayload")
    payload: dict[str, Any] = raw_payload if isinstance(raw_payload, dict) else {}
    where = f"pipeline event {entry.get('insertId') or '(no insertId)'}"
    job_id = _job_id(entry, payload)
    if job_id is None:
        log.warning("%s has no pipeline job id; ignored, reconcile will catch up (keys: %s)", where,
                    ", ".join(sorted(entry)))
        return None
    state = _state(payload.get("state"))
    if state is None:
        log.warning("%s for job %s has no known state (%r); ignored, reconcile will catch up", where, job_id,
                    payload.get("state"))
        return None
    labels = _mapping(_mapping(entry.get("resource")).get("labels"))
    location = labels.get("location")
    return PipelineJobEvent(job_id, state, _error(payload), str(location) if location else None)


def run_state_of(state: PipelineState) -> RunState | None:
    """The run state of a Vertex AI pipeline state; None for an unspecified one."""
    return STATE_TO_RUN.get(state)


def _json(data: bytes) -> dict[str, Any] | None:
    try:
        entry = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    return entry if isinstance(entry, dict) else None


def _is_job_event(entry: Mapping[str, Any]) -> bool:
    log_name = unquote(str(entry.get("logName") or ""))
    payload_type = str(_mapping(entry.get("jsonPayload")).get("@type") or "")
    if _TASK_LOG in log_name or payload_type.endswith("PipelineJobTaskLogEntry"):
        return False
    return (log_name.endswith(LOG_ID) or payload_type == PAYLOAD_TYPE
            or (_mapping(entry.get("resource")).get("type") == RESOURCE_TYPE and "jsonPayload" in entry))


def _job_id(entry: Mapping[str, Any], payload: Mapping[str, Any]) -> str | None:
    labels = _mapping(_mapping(entry.get("resource")).get("labels"))
    candidate = labels.get("pipeline_job_id") or payload.get("pipelineJobId")
    if isinstance(candidate, str) and candidate:
        return candidate
    for key in ("pipelineJob", "pipelineJobName", "name", "resourceName"):
        match = _JOB_NAME.search(str(payload.get(key) or ""))
        if match:
            return match.group(1)
    return None


def _state(raw: Any) -> PipelineState | None:
    try:
        if isinstance(raw, int) and not isinstance(raw, bool):
            state = PipelineState(raw)
        elif isinstance(raw, str) and raw.strip():
            name = raw.strip().upper()
            state = PipelineState.__members__[name if name.startswith("PIPELINE_STATE_") else f"PIPELINE_STATE_{name}"]
        else:
            return None
    except (KeyError, ValueError):
        return None
    return None if state == PipelineState.PIPELINE_STATE_UNSPECIFIED else state


def _error(payload: Mapping[str, Any]) -> str:
    error = payload.get("error")
    if isinstance(error, dict):
        return str(error.get("message") or "")
    return str(error) if isinstance(error, str) else ""


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}
