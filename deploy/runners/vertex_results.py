"""What a finished Vertex AI pipeline job produced: metrics from its task details.

`GetPipelineJob` answers with `job_detail.task_details`, one `PipelineTaskDetail` per task, whose
`outputs` map each output name to an `ArtifactList` of Vertex ML Metadata `Artifact`s with their
`schema_title` and `metadata` (a Struct); a task that logs `Output[Metrics]` leaves a
`system.Metrics` artifact whose metadata holds the logged numbers
(https://cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.pipelineJobs#PipelineTaskDetail,
https://cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.metadataStores.artifacts).
The same artifact is listed again under the pipeline's root task when the pipeline outputs it;
it is counted once (by its resource name). A task's output parameters are its execution's
`output:<name>` metadata entries (how Vertex AI Pipelines records them); scalars are kept, named
like metrics (`task.name` when two tasks share a name).
"""

from __future__ import annotations

import math
from typing import Any

from google.cloud import aiplatform_v1

from deploy.runners.local_results import METRICS_TYPES, named_metrics
from handlers.ports.run import CollectedResults


def job_results(job: aiplatform_v1.PipelineJob) -> CollectedResults:
    """The numeric metrics of `job`'s metrics artifacts, in task order, each artifact once."""
    found: list[tuple[str, str, float]] = []
    outputs: list[tuple[str, str, Any]] = []
    seen: set[str] = set()
    for task in job.job_detail.task_details:
        outputs += [(task.task_name, key[len(_OUTPUT):], value) for key, value in _items(task.execution.metadata)
                    if key.startswith(_OUTPUT) and isinstance(value, str | int | float | bool)]
        for output in task.outputs.values():
            for artifact in output.artifacts:
                if artifact.schema_title not in METRICS_TYPES or (artifact.name and artifact.name in seen):
                    continue
                seen.add(artifact.name)
                found += [(task.task_name, str(name), value) for name, value in _numbers(artifact.metadata)]
    return CollectedResults(metrics=named_metrics(found), outputs=named_metrics(outputs))


_OUTPUT = "output:"


def _items(metadata: Any) -> list[tuple[str, Any]]:
    return [(str(k), v) for k, v in metadata.items()] if hasattr(metadata, "items") else []


def _numbers(metadata: Any) -> list[tuple[str, float]]:
    return [(name, float(value)) for name, value in _items(metadata)
            if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)]
