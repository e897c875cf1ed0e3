"""Argo workflows compiled by the kfp v1 SDK, run through the KFP v1beta1 REST API.

The seed's experiment cluster (AI Platform Pipelines, Kubeflow Pipelines 1.x) only speaks
v1beta1, and Kubeflow Pipelines 2.x still serves it for v1 pipelines. The kfp 2 SDK cannot
submit an Argo workflow, so this speaks the API directly (`kfp_http`):

- `GET/POST /apis/v1beta1/experiments` (filter on `name`),
- `POST /apis/v1beta1/runs` with `pipeline_spec.workflow_manifest` (the workflow as a string),
  `pipeline_spec.parameters` (`[{name, value}]`, values as strings the way the kfp 1.8 client
  sends them) and a `resource_references` OWNER link to the experiment,
- `GET /apis/v1beta1/runs` (filter on `name`) and `POST /apis/v1beta1/runs/{id}/terminate`.

Caching cannot be switched per run in v1; `enable_caching: false` marks every step of the
workflow `max_cache_staleness: P0D`, which is how kfp 1.8 turns the cache off for a step.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from deploy.errors import RunError
from deploy.runners.kfp_calls import ApiVersion, RemoteRun, RunSpec, experiment_id, name_filter
from deploy.runners.kfp_http import JsonHttp
from handlers.run_models import RunState

_BASE = "/apis/v1beta1"
_MAX_CACHE_STALENESS = "pipelines.kubeflow.org/max_cache_staleness"
_STEP_KINDS = ("container", "script", "resource")


class V1Status(enum.Enum):
    """`status` of a v1beta1 run: the Argo workflow phase, or KFP's own `Terminating`."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    SKIPPED = "Skipped"
    FAILED = "Failed"
    ERROR = "Error"
    TERMINATING = "Terminating"


_STATES = {V1Status.SUCCEEDED: RunState.SUCCEEDED, V1Status.SKIPPED: RunState.SKIPPED,
           V1Status.FAILED: RunState.FAILED, V1Status.ERROR: RunState.FAILED,
           V1Status.TERMINATING: RunState.CANCELLED}


class V1Api:
    """The `KfpApi` of one endpoint's v1beta1 REST API."""

    version = ApiVersion.V1BETA1

    def __init__(self, http: JsonHttp, *, namespace: str | None = None) -> None:
        self.http = http
        self.namespace = namespace

    def experiment_id(self, name: str) -> str:
        """The experiment's id; created (in the namespace, multi-user) when there is none."""
        body: dict[str, Any] = {"name": name, "description": "Runs started by kfp-bot"}
        if self.namespace:
            body["resource_references"] = [_reference("NAMESPACE", self.namespace)]

        def create() -> str:
            created = self.http.call(f"create experiment '{name}'", "POST", f"{_BASE}/experiments", body=body,
                                     recover=lambda: self._find_experiment(name))
            return created if isinstance(created, str) else str(created["id"])

        return experiment_id(name, self._find_experiment, create)

    def find_run(self, name: str, experiment_id: str | None = None) -> RemoteRun | None:
        """The run called `name`, in the experiment when given."""
        params = {"filter": name_filter("name", name, operation_key="op"), "page_size": 10,
                  **self._owner_params(experiment_id)}
        answer = self.http.call(f"look up run '{name}'", "GET", f"{_BASE}/runs", params=params) or {}
        for run in answer.get("runs") or []:
            if run.get("name") == name:
                return _remote(run)
        return None

    def create_run(self, spec: RunSpec) -> RemoteRun:
        """Create the run of the Argo workflow in `spec.package_path`."""
        body: dict[str, Any] = {
            "name": spec.name,
            "description": spec.description,
            "pipeline_spec": {"workflow_manifest": workflow_manifest(spec.package_path, spec.enable_caching),
                              "parameters": v1_parameters(spec.parameters)},
            "resource_references": [_reference("EXPERIMENT", spec.experiment_id)],
        }
        if spec.service_account:
            body["service_account"] = spec.service_account
        answer = self.http.call(f"create run '{spec.name}'", "POST", f"{_BASE}/runs", body=body,
                                recover=lambda: self.find_run(spec.name, spec.experiment_id))
        if isinstance(answer, RemoteRun):
            return answer
        return _remote(answer.get("run") or {})

    def terminate_run(self, run_id: str) -> None:
        """Ask KFP to stop the workflow (its status becomes `Terminating`)."""
        self.http.call(f"terminate run {run_id}", "POST", f"{_BASE}/runs/{run_id}/terminate")

    def _find_experiment(self, name: str) -> str | None:
        params: dict[str, Any] = {"filter": name_filter("name", name, operation_key="op"), "page_size": 10}
        if self.namespace:
            params.update({"resource_reference_key.type": "NAMESPACE", "resource_reference_key.id": self.namespace})
        answer = self.http.call(f"look up experiment '{name}'", "GET", f"{_BASE}/experiments", params=params) or {}
        return next((str(e["id"]) for e in answer.get("experiments") or [] if e.get("name") == name), None)

    def _owner_params(self, experiment_id: str | None) -> dict[str, str]:
        if experiment_id:
            return {"resource_reference_key.type": "EXPERIMENT", "resource_reference_key.id": experiment_id}
        if self.namespace:
            return {"resource_reference_key.type": "NAMESPACE", "resource_reference_key.id": self.namespace}
        return {}


def workflow_manifest(path: Path, enable_caching: bool | None) -> str:
    """The workflow as submitted: the file's text, or with every step's cache off when asked."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RunError(f"{path.name}: cannot read the compiled workflow: {exc}") from None
    if enable_caching is not False:
        return text
    try:
        workflow = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RunError(f"{path.name}: the compiled workflow is not valid YAML: {exc}") from None
    if not isinstance(workflow, dict):
        raise RunError(f"{path.name}: not an Argo workflow")
    for template in (workflow.get("spec") or {}).get("templates") or []:
        if isinstance(template, dict) and any(kind in template for kind in _STEP_KINDS):
            metadata = template.get("metadata") or {}
            annotations = {**(metadata.get("annotations") or {}), _MAX_CACHE_STALENESS: "P0D"}
            template["metadata"] = {**metadata, "annotations": annotations}
    return json.dumps(workflow)


def v1_parameters(parameters: Mapping[str, Any]) -> list[dict[str, str]]:
    """`[{name, value}]` as the kfp 1.8 client sends them: names as its compiler sanitised them,
    values as strings (lists and dicts as JSON); a None value keeps the workflow's default."""
    return [{"name": _sanitize(name), "value": json.dumps(value) if isinstance(value, (list, dict)) else str(value)}
            for name, value in parameters.items() if value is not None]


def _sanitize(name: str) -> str:
    return re.sub("-+", "-", re.sub("[^-_0-9A-Za-z]+", "-", name)).strip("-")


def _reference(kind: str, ident: str) -> dict[str, Any]:
    return {"key": {"type": kind, "id": ident}, "relationship": "OWNER"}


def _remote(run: Mapping[str, Any]) -> RemoteRun:
    status = str(run.get("status") or "")
    try:
        state = _STATES.get(V1Status(status), RunState.RUNNING)
    except ValueError:
        state = RunState.RUNNING
    detail = ""
    if state is RunState.FAILED:
        detail = str(run.get("error") or "").strip() or f"the run ended with status {status} on the KFP endpoint"
    elif state is RunState.CANCELLED:
        detail = "terminated on the KFP endpoint"
    return RemoteRun(id=str(run.get("id") or ""), name=str(run.get("name") or ""), state=state,
                     api=ApiVersion.V1BETA1, detail=detail)
