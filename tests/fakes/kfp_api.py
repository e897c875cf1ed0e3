"""A fake Kubeflow Pipelines API server: the REST APIs `kfp.Client` and the kfp-bot runner speak.

It serves, on 127.0.0.1, the subset of the v2beta1 API that the kfp 2 client calls (healthz,
experiments list/create/get, runs create/list/get/terminate) and of the v1beta1 API of
Kubeflow Pipelines 1.x (the same, runs carrying an Argo `workflow_manifest`), with the JSON
shapes of kfp-server-api (snake_case fields, grpc-gateway error bodies). `apis` picks what is
served: `(Api.V1BETA1,)` is an AI Platform Pipelines (KFP 1.x) cluster, where every v2beta1 path
answers 404. Experiments are shared by both versions, as in KFP 2; a run is listed by the version
it was created through (the fake does not translate runs between versions).

It checks what a real server would only reject at run time, so mistakes show in tests: filters
with the version's own field names, run names, a pipeline spec or an Argo workflow, parameters
the pipeline declares, string values for v1 parameters, experiments that exist. Every request is
recorded (`requests`, `created_runs`); `set_run_state` plays the cluster moving a run along;
`fail_next` injects faults with KFP-style error bodies.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

import yaml

from tests.fakes.http import FakeHTTPServer, Handler, Incoming, JsonResponse
from tests.fakes.kfp_pipelines import PipelineRoutes
from tests.fakes.kfp_rules import (
    Api,
    Refusal,
    api_of,
    error_body,
    item_filter,
    json_object,
    page,
    v1_declared,
    v1_owner,
    v2_declared,
)

V2_STATES = frozenset({"RUNTIME_STATE_UNSPECIFIED", "PENDING", "RUNNING", "SUCCEEDED", "SKIPPED", "FAILED",
                       "CANCELING", "CANCELED", "PAUSED"})
V2_TERMINAL = frozenset({"SUCCEEDED", "SKIPPED", "FAILED", "CANCELED"})
V1_STATUSES = frozenset({"", "Pending", "Running", "Succeeded", "Skipped", "Failed", "Error", "Terminating"})
V1_TERMINAL = frozenset({"Succeeded", "Skipped", "Failed", "Error"})
_NEVER = "1970-01-01T00:00:00Z"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class StoredExperiment:
    """An experiment as the server keeps it."""

    id: str
    name: str
    description: str = ""
    namespace: str = ""
    created_at: str = field(default_factory=_now)


@dataclass
class StoredRun:
    """A run as the server keeps it; `body` is the create request as received."""

    id: str
    name: str
    api: Api
    experiment_id: str
    body: dict[str, Any]
    state: str
    error: str = ""
    created_at: str = field(default_factory=_now)
    finished_at: str = _NEVER

    @property
    def parameters(self) -> dict[str, Any]:
        """The run's parameters: typed values (v2beta1) or strings (v1beta1)."""
        if self.api is Api.V2BETA1:
            return dict((self.body.get("runtime_config") or {}).get("parameters") or {})
        return {p["name"]: p.get("value") for p in (self.body.get("pipeline_spec") or {}).get("parameters") or []}

    @property
    def workflow(self) -> dict[str, Any]:
        """The Argo workflow of a v1beta1 run, parsed."""
        return yaml.safe_load(self.body["pipeline_spec"]["workflow_manifest"])


class FakeKfp(FakeHTTPServer):
    """A running fake KFP API server (use as a context manager)."""

    def __init__(self, *, apis: tuple[Api, ...] = (Api.V2BETA1, Api.V1BETA1)) -> None:
        super().__init__()
        self.apis = apis
        self.experiments: dict[str, StoredExperiment] = {}
        self.runs: dict[str, StoredRun] = {}
        self._lost_answers: list[tuple[str, re.Pattern[str], int]] = []
        for api in apis:
            base = f"/apis/{api.value}"
            routes: list[tuple[str, str, Handler]] = [
                ("GET", "/healthz", self._healthz),
                ("GET", "/experiments", self._list_experiments),
                ("POST", "/experiments", self._create_experiment),
                ("GET", "/experiments/{experiment_id}", self._get_experiment),
                ("GET", "/runs", self._list_runs),
                ("POST", "/runs", self._create_run),
                ("GET", "/runs/{run_id}", self._get_run),
                ("POST", "/runs/{run_id}:terminate" if api is Api.V2BETA1 else "/runs/{run_id}/terminate",
                 self._terminate),
            ]
            for method, path, handler in routes:
                self.add_route(method, base + path, handler)
        self.pipeline_routes = PipelineRoutes(self)

    # -- what tests use ---------------------------------------------------------------------

    def add_experiment(self, name: str, namespace: str = "") -> str:
        """An experiment that exists before the test; its id."""
        with self.lock:
            return self._new_experiment(name, "", namespace).id

    def experiment_named(self, name: str) -> StoredExperiment | None:
        """The experiment called `name`, if any."""
        with self.lock:
            return next((e for e in self.experiments.values() if e.name == name), None)

    def created_runs(self, api: Api | None = None) -> list[StoredRun]:
        """Every run created so far (through `api`, when given), oldest first."""
        with self.lock:
            return [r for r in self.runs.values() if api in (None, r.api)]

    def set_run_state(self, run_id: str, state: str, *, error: str = "") -> None:
        """Move a run as the cluster would: a v2beta1 runtime state or a v1beta1 status."""
        with self.lock:
            run = self.runs[run_id]
            allowed = V2_STATES if run.api is Api.V2BETA1 else V1_STATUSES
            if state not in allowed:
                raise ValueError(f"{state!r} is not a {run.api.value} run state ({', '.join(sorted(allowed))})")
            run.state, run.error = state, error
            if state in V2_TERMINAL | V1_TERMINAL:
                run.finished_at = _now()

    def lose_next_answer(self, method: str, path_pattern: str, status: int = 503) -> None:
        """Process the next matching request, then answer `status` as if the answer was lost on the way
        (a gateway timing out after the server acted): a client that retries blindly acts twice."""
        with self.lock:
            self._lost_answers.append((method.upper(), re.compile(path_pattern), status))

    def default_fault(self, status: int) -> tuple[Any, dict[str, str]]:
        """Injected faults carry KFP's error body."""
        return error_body(status, HTTPStatus(status).phrase), {}

    def not_found(self, incoming: Incoming) -> JsonResponse:
        """grpc-gateway's answer for a path the server does not serve (e.g. v2beta1 on KFP 1.x)."""
        return JsonResponse(404, error_body(404, "Not Found"))

    def dispatch(self, incoming: Incoming, handler: Handler) -> JsonResponse:
        """Refusals become error bodies; a lost answer replaces what the handler answered."""
        try:
            response = handler(incoming)
        except Refusal as refusal:
            return JsonResponse(refusal.status, error_body(refusal.status, refusal.message))
        for lost in self._lost_answers:
            if lost[0] == incoming.method and lost[1].fullmatch(incoming.path):
                self._lost_answers.remove(lost)
                return JsonResponse(lost[2], error_body(lost[2], HTTPStatus(lost[2]).phrase))
        return response

    # -- experiments --------------------------------------------------------------------------

    def _healthz(self, incoming: Incoming) -> JsonResponse:
        if api_of(incoming) is Api.V2BETA1:
            return JsonResponse(200, {"multi_user": False, "pipeline_store": "database"})
        return JsonResponse(200, {"commit_sha": "fake", "tag_name": "1.8.5", "multi_user": False})

    def _list_experiments(self, incoming: Incoming) -> JsonResponse:
        api = api_of(incoming)
        matches = item_filter(incoming, api, {"display_name"} if api is Api.V2BETA1 else {"name", "id"})
        items = [self._experiment_json(e, api) for e in self.experiments.values()]
        return page(incoming, "experiments", [i for i in items if matches(i)])

    def _create_experiment(self, incoming: Incoming) -> JsonResponse:
        api = api_of(incoming)
        body = json_object(incoming)
        name = body.get("display_name" if api is Api.V2BETA1 else "name")
        if not isinstance(name, str) or not name.strip():
            raise Refusal(400, "Invalid input error: Experiment name is empty. Please specify a valid experiment name.")
        if any(e.name == name for e in self.experiments.values()):
            raise Refusal(409, f"Already exist error: Failed to create a new experiment. The name {name} already exists. "
                               "Please specify a new name.")
        experiment = self._new_experiment(name, str(body.get("description") or ""), str(body.get("namespace") or ""))
        return JsonResponse(200, self._experiment_json(experiment, api))

    def _get_experiment(self, incoming: Incoming) -> JsonResponse:
        experiment = self.experiments.get(incoming.params["experiment_id"])
        if experiment is None:
            raise Refusal(404, f"Experiment {incoming.params['experiment_id']} not found")
        return JsonResponse(200, self._experiment_json(experiment, api_of(incoming)))

    def _new_experiment(self, name: str, description: str, namespace: str) -> StoredExperiment:
        experiment = StoredExperiment(str(uuid.uuid4()), name, description, namespace)
        self.experiments[experiment.id] = experiment
        return experiment

    @staticmethod
    def _experiment_json(experiment: StoredExperiment, api: Api) -> dict[str, Any]:
        if api is Api.V2BETA1:
            return {"experiment_id": experiment.id, "display_name": experiment.name,
                    "description": experiment.description, "created_at": experiment.created_at,
                    "namespace": experiment.namespace, "storage_state": "AVAILABLE"}
        return {"id": experiment.id, "name": experiment.name, "description": experiment.description,
                "created_at": experiment.created_at, "storage_state": "STORAGESTATE_AVAILABLE"}

    # -- runs ---------------------------------------------------------------------------------

    def _create_run(self, incoming: Incoming) -> JsonResponse:
        api = api_of(incoming)
        body = json_object(incoming)
        name = body.get("display_name" if api is Api.V2BETA1 else "name")
        if not isinstance(name, str) or not name.strip():
            raise Refusal(400, "Invalid input error: The run name is empty. Please specify a valid name.")
        if api is Api.V2BETA1:
            experiment_id = str(body.get("experiment_id") or "") or self._default_experiment()
            declared = v2_declared(body)
            given = (body.get("runtime_config") or {}).get("parameters") or {}
            state = "PENDING"
        else:
            experiment_id = v1_owner(body) or self._default_experiment()
            declared, given = v1_declared(body)
            state = ""
        if experiment_id not in self.experiments:
            raise Refusal(404, f"Failed to create a run: experiment {experiment_id} not found")
        unknown = sorted(set(given) - declared)
        if unknown:
            raise Refusal(400, f"Invalid input error: the pipeline has no input parameter {', '.join(unknown)} "
                               f"(declared: {', '.join(sorted(declared)) or 'none'})")
        run = StoredRun(str(uuid.uuid4()), name, api, experiment_id, body, state)
        self.runs[run.id] = run
        return JsonResponse(200, self._run_json(run, detail=True))

    def _list_runs(self, incoming: Incoming) -> JsonResponse:
        api = api_of(incoming)
        if api is Api.V2BETA1:
            experiment_id = incoming.query.get("experiment_id")
            keys = {"display_name", "run_id", "experiment_id", "state"}
        else:
            owner = incoming.query.get("resource_reference_key.type")
            experiment_id = incoming.query.get("resource_reference_key.id") if owner == "EXPERIMENT" else None
            keys = {"name", "id", "status"}
        matches = item_filter(incoming, api, keys)
        items = [self._run_json(r) for r in self.runs.values()
                 if r.api is api and experiment_id in (None, "", r.experiment_id)]
        return page(incoming, "runs", [i for i in items if matches(i)])

    def _get_run(self, incoming: Incoming) -> JsonResponse:
        return JsonResponse(200, self._run_json(self._run(incoming), detail=True))

    def _terminate(self, incoming: Incoming) -> JsonResponse:
        run = self._run(incoming)
        if run.state in V2_TERMINAL | V1_TERMINAL:
            raise Refusal(400, f"Failed to terminate run {run.id}: the run has already finished ({run.state})")
        run.state = "CANCELING" if run.api is Api.V2BETA1 else "Terminating"
        return JsonResponse(200, {})

    def _run(self, incoming: Incoming) -> StoredRun:
        run = self.runs.get(incoming.params["run_id"])
        if run is None or run.api is not api_of(incoming):
            raise Refusal(404, f"Resource not found: Run {incoming.params['run_id']} not found")
        return run

    def _default_experiment(self) -> str:
        found = next((e for e in self.experiments.values() if e.name == "Default"), None)
        return (found or self._new_experiment("Default", "", "")).id

    def _run_json(self, run: StoredRun, *, detail: bool = False) -> dict[str, Any]:
        if run.api is Api.V2BETA1:
            data: dict[str, Any] = {
                "experiment_id": run.experiment_id, "run_id": run.id, "display_name": run.name,
                "description": run.body.get("description", ""), "storage_state": "AVAILABLE",
                "pipeline_spec": run.body.get("pipeline_spec"), "runtime_config": run.body.get("runtime_config") or {},
                "service_account": run.body.get("service_account") or "", "created_at": run.created_at,
                "scheduled_at": run.created_at, "finished_at": run.finished_at, "state": run.state}
            if run.error:
                data["error"] = {"code": 2, "message": run.error}
            return data
        experiment = self.experiments[run.experiment_id]
        data = {"id": run.id, "name": run.name, "storage_state": "STORAGESTATE_AVAILABLE",
                "description": run.body.get("description", ""), "pipeline_spec": run.body.get("pipeline_spec"),
                "resource_references": [{"key": {"type": "EXPERIMENT", "id": experiment.id},
                                         "name": experiment.name, "relationship": "OWNER"}],
                "service_account": run.body.get("service_account") or "", "created_at": run.created_at,
                "scheduled_at": run.created_at, "finished_at": run.finished_at}
        # grpc-gateway leaves empty strings out: a run the cluster has not picked up has no status.
        data.update({k: v for k, v in (("status", run.state), ("error", run.error)) if v})
        if not detail:
            return data
        return {"run": data, "pipeline_runtime": {"workflow_manifest": data["pipeline_spec"]["workflow_manifest"]}}

