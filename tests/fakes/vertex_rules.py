"""What the fake Vertex AI Pipelines checks the way Vertex AI does.

The rules a pipeline job must pass before Vertex AI accepts it (job id rule, label rules,
display name length, a `gs://` pipeline root, a PipelineSpec rather than a whole job file,
parameters declared by the spec and of its declared types, the old `parameters` map for
schema 2.0.0 and `parameter_values` after it, a service account email), and the
`ListPipelineJobs` filter subset (`labels.key="v"`, `display_name="…"`, `state="…"`, joined by
AND). A mistake here would otherwise only show in production, so the fake refuses what Vertex AI
refuses, with INVALID_ARGUMENT.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import grpc
from google.cloud import aiplatform_v1
from google.protobuf import json_format

from tests.fakes.grpc_fake import Rejection

# "This value should be less than 128 characters, and valid characters are /[a-z][0-9]-/."
# https://cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.pipelineJobs/create
JOB_ID_RULE = re.compile(r"[a-z][-a-z0-9]{0,126}")
LABEL_KEY_RULE = re.compile(r"[a-z][a-z0-9_-]{0,62}")
LABEL_VALUE_RULE = re.compile(r"[a-z0-9_-]{0,63}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[a-z]+")
_FILTER_TERM = re.compile(r'^\s*(labels\.[a-z0-9_-]+|display_name|state)\s*=\s*"([^"]*)"\s*$')
# The `kind` of a protobuf Value each declared type takes (schema 2.1.0 and later).
_VALUE_KINDS = {"STRING": "string_value", "NUMBER_INTEGER": "number_value", "NUMBER_DOUBLE": "number_value",
                "BOOLEAN": "bool_value", "LIST": "list_value", "STRUCT": "struct_value"}
# The field of an aiplatform Value each declared type takes (schema 2.0.0).
_LEGACY_KINDS = {"INT": "int_value", "DOUBLE": "double_value", "STRING": "string_value"}


def invalid(message: str) -> Rejection:
    """The INVALID_ARGUMENT answer with `message`."""
    return Rejection(grpc.StatusCode.INVALID_ARGUMENT, message)


def validate_job(job: aiplatform_v1.PipelineJob, job_id: str) -> str:
    """Check a job as CreatePipelineJob does; the job id it gets (generated when none was given)."""
    pb = aiplatform_v1.PipelineJob.pb(job)
    spec = json_format.MessageToDict(pb.pipeline_spec)
    if not spec:
        raise invalid("pipeline_spec is required.")
    if "pipelineSpec" in spec:
        raise invalid("pipeline_spec must be a PipelineSpec, but it holds a whole pipeline job "
                      "(pipelineSpec, runtimeConfig).")
    name = str((spec.get("pipelineInfo") or {}).get("name") or "")
    if not name or "root" not in spec or "schemaVersion" not in spec:
        raise invalid("pipeline_spec is not a valid PipelineSpec: pipelineInfo.name, root and schemaVersion "
                      "are required.")
    if job_id and not JOB_ID_RULE.fullmatch(job_id):
        raise invalid(f'Invalid pipeline job id "{job_id}". The id must match the regular expression '
                      f'"{JOB_ID_RULE.pattern}".')
    if len(job.display_name) > 128:
        raise invalid("display_name must be at most 128 characters.")
    _check_labels(dict(job.labels))
    root = job.runtime_config.gcs_output_directory or str(spec.get("defaultPipelineRoot") or "")
    if not root:
        raise invalid("runtime_config.gcs_output_directory is required: the pipeline has no default pipeline root.")
    if not root.startswith("gs://"):
        raise invalid(f'Invalid gcs_output_directory "{root}": it must be a Cloud Storage URI (gs://...).')
    if job.service_account and not _EMAIL.fullmatch(job.service_account):
        raise invalid(f'Invalid service account "{job.service_account}": it must be an email address.')
    _check_parameters(spec, pb.runtime_config)
    return job_id or f"{re.sub('[^a-z0-9]+', '-', name.lower()).strip('-')}-{time.strftime('%Y%m%d%H%M%S')}"


def job_filter(text: str) -> Callable[[aiplatform_v1.PipelineJob], bool]:
    """A predicate for the `key="value" AND …` subset of the ListPipelineJobs filter."""
    terms: list[tuple[str, str]] = []
    for part in re.split(r"\s+AND\s+", text.strip()) if text.strip() else []:
        match = _FILTER_TERM.match(part)
        if match is None:
            raise invalid(f"Unsupported filter: {text!r}.")
        terms.append((match.group(1), match.group(2)))

    def matches(job: aiplatform_v1.PipelineJob) -> bool:
        for key, value in terms:
            if key.startswith("labels."):
                actual = job.labels.get(key[len("labels."):])
            elif key == "state":
                actual = aiplatform_v1.PipelineState(job.state).name
            else:
                actual = job.display_name
            if actual != value:
                return False
        return True

    return matches


def _check_labels(labels: dict[str, str]) -> None:
    if len(labels) > 64:
        raise invalid(f"A pipeline job can have at most 64 labels, got {len(labels)}.")
    for key, value in labels.items():
        if not LABEL_KEY_RULE.fullmatch(key):
            raise invalid(f'Invalid label key "{key}": keys start with a lowercase letter and hold at most 63 '
                          "lowercase letters, digits, underscores and dashes.")
        if not LABEL_VALUE_RULE.fullmatch(value):
            raise invalid(f'Invalid value "{value}" of label "{key}": values hold at most 63 lowercase letters, '
                          "digits, underscores and dashes.")


def _check_parameters(spec: dict[str, Any], config: Any) -> None:
    declared = ((spec.get("root") or {}).get("inputDefinitions") or {}).get("parameters") or {}
    legacy = _version(str(spec.get("schemaVersion"))) <= (2, 0, 0)
    given, other = (config.parameters, config.parameter_values) if legacy else (config.parameter_values,
                                                                                config.parameters)
    if len(other):
        field = "parameter_values" if legacy else "parameters"
        raise invalid(f"runtime_config.{field} is not supported for pipelines of schema version "
                      f"{spec.get('schemaVersion')}.")
    for name in given:
        if name not in declared:
            raise invalid(f"The pipeline parameter {name} is not found in the pipeline job input definitions.")
        kind = str(declared[name].get("parameterType") or declared[name].get("type") or "STRING")
        expected = (_LEGACY_KINDS if legacy else _VALUE_KINDS).get(kind)
        actual = given[name].WhichOneof("value" if legacy else "kind")
        if expected is not None and actual != expected:
            raise invalid(f"The value of pipeline parameter {name} must be of type {kind}, got {actual}.")
        if kind == "NUMBER_INTEGER" and not float(given[name].number_value).is_integer():
            raise invalid(f"The value of pipeline parameter {name} must be an integer.")
    for name, definition in declared.items():
        optional = legacy is False and ("defaultValue" in definition or definition.get("isOptional"))
        if name not in given and not optional:
            raise invalid(f"The pipeline parameter {name} is required, but no value was given.")


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3]) or (0,)
