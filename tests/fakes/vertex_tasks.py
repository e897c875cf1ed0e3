"""The runtime details the fake Vertex AI gives a pipeline job: `job_detail.task_details`.

Vertex AI fills `PipelineJob.job_detail` as the job runs: one `PipelineTaskDetail` for the
pipeline's root (task name = the pipeline's name, no parent) and one per task of the root DAG
(`parent_task_id` = the root's id), each with its `state`, times and `outputs`, a map from output
name to an `ArtifactList` of Vertex ML Metadata artifacts carrying `name` (the artifact's resource
name in the project's default metadata store), `display_name`, `uri` under the pipeline root,
`schema_title` (the artifact type, e.g. `system.Metrics`) and `metadata`, a Struct holding what the
component logged (`Metrics.log_metric` writes name → number there)
(https://cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.pipelineJobs#PipelineTaskDetail,
https://cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.metadataStores.artifacts#Artifact).
A task's output parameters are in its `execution.metadata` under `output:<name>` (Vertex AI
Pipelines records them so; the REST reference describes `metadata` only as a Struct, and code
reading finished jobs looks them up as `task.execution.metadata["output:endpoint"]`).
The fake fills it when a job reaches a final state, from the job's compiled spec; what a test
gives (task → output → the artifact's metadata, or the parameter's value) stands for what the
components logged and returned.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from google.cloud import aiplatform_v1
from google.protobuf import json_format, struct_pb2, timestamp_pb2

TaskState = aiplatform_v1.PipelineTaskDetail.State
Logged = Mapping[str, Mapping[str, Any]]
"""task name → output name → the artifact's metadata (a mapping), or the output parameter's value."""

_ids = itertools.count(1_000_001)
_TASK_STATE = {"PIPELINE_STATE_SUCCEEDED": TaskState.SUCCEEDED, "PIPELINE_STATE_FAILED": TaskState.FAILED,
               "PIPELINE_STATE_CANCELLED": TaskState.CANCELLED}


def job_detail(job: aiplatform_v1.PipelineJob, project_number: int, location: str, state_name: str,
               logged: Logged, now: timestamp_pb2.Timestamp) -> aiplatform_v1.PipelineJobDetail:
    """The `job_detail` of `job` ended in `state_name`, its tasks' outputs as `logged` says."""
    spec = json_format.MessageToDict(aiplatform_v1.PipelineJob.pb(job).pipeline_spec)
    components = spec.get("components") or {}
    tasks = ((spec.get("root") or {}).get("dag") or {}).get("tasks") or {}
    unknown = set(logged) - set(tasks)
    if unknown:
        raise ValueError(f"the pipeline has no task {sorted(unknown)} (tasks: {sorted(tasks)})")
    state = _TASK_STATE.get(state_name, TaskState.RUNNING)
    root_id = next(_ids)
    root = aiplatform_v1.PipelineTaskDetail(
        task_id=root_id, task_name=str((spec.get("pipelineInfo") or {}).get("name", "")), state=state,
        create_time=job.create_time, start_time=job.start_time or now, end_time=now)
    details = [root]
    job_id = job.name.rsplit("/", 1)[-1]
    root_uri = job.runtime_config.gcs_output_directory.rstrip("/")
    for name, task in tasks.items():
        component = components.get(str((task.get("componentRef") or {}).get("name", ""))) or {}
        artifacts = (component.get("outputDefinitions") or {}).get("artifacts") or {}
        outputs = {}
        for output, definition in artifacts.items():
            metadata = struct_pb2.Struct()
            metadata.update(dict((logged.get(name) or {}).get(output) or {}))
            artifact = aiplatform_v1.Artifact(
                name=f"projects/{project_number}/locations/{location}/metadataStores/default/artifacts/"
                     f"{next(_ids)}",
                display_name=output, uri=f"{root_uri}/{project_number}/{job_id}/{name}_{next(_ids)}/{output}",
                schema_title=str((definition.get("artifactType") or {}).get("schemaTitle", "system.Artifact")),
                state=aiplatform_v1.Artifact.State.LIVE, metadata=metadata)
            outputs[output] = aiplatform_v1.PipelineTaskDetail.ArtifactList(artifacts=[artifact])
        parameters = (component.get("outputDefinitions") or {}).get("parameters") or {}
        execution = struct_pb2.Struct()
        execution.update({f"output:{output}": value for output, value in (logged.get(name) or {}).items()
                          if output in parameters})
        details.append(aiplatform_v1.PipelineTaskDetail(
            task_id=next(_ids), parent_task_id=root_id, task_name=name, state=state, create_time=now,
            start_time=now, end_time=now, outputs=outputs,
            execution=aiplatform_v1.Execution(display_name=name, schema_title="system.ContainerExecution",
                                              state=aiplatform_v1.Execution.State.COMPLETE, metadata=execution)))
    return aiplatform_v1.PipelineJobDetail(task_details=details)
