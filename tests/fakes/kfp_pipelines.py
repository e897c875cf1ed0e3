"""Pipelines, pipeline versions and recurring runs of the fake KFP API server (`kfp_api.FakeKfp`).

Served for each API version the fake serves, with kfp-server-api's JSON shapes:

- v2beta1: `GET/POST /pipelines`, `POST /pipelines/upload_version` (multipart `uploadfile`),
  `GET /pipelines/{id}/versions[/{version_id}]`, `GET/POST /recurringruns`,
  `POST /recurringruns/{id}:enable|:disable`, `DELETE /recurringruns/{id}`;
- v1beta1: `GET /pipelines`, `POST /pipelines/upload` and `/pipelines/upload_version` (multipart),
  `GET /pipeline_versions[/{id}]`, `GET/POST /jobs`, `POST /jobs/{id}/enable|disable`, `DELETE /jobs/{id}`.

Pipelines are shared by both versions (as in KFP 2), recurring runs are listed by the version they
were created through. What a real server refuses is refused here too: duplicate names, a v2beta1
upload that is not a pipeline spec, a v1beta1 upload that is not an Argo workflow, a cron without
its seconds field, parameters the pipeline version does not declare, unknown versions and experiments.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import yaml
from werkzeug.test import create_environ
from werkzeug.wrappers import Request

from tests.fakes.http import Incoming, JsonResponse
from tests.fakes.kfp_rules import Api, Refusal, api_of, item_filter, json_object, page

if TYPE_CHECKING:
    from tests.fakes.kfp_api import FakeKfp


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class StoredVersion:
    """A pipeline version: its parsed package (a pipeline spec or an Argo workflow)."""

    id: str
    name: str
    pipeline_id: str
    spec: dict[str, Any]
    description: str = ""
    created_at: str = field(default_factory=_now)

    @property
    def declared(self) -> set[str]:
        """The input parameters the version's package declares."""
        if self.spec.get("kind") == "Workflow":
            return {str(p.get("name")) for p in ((self.spec.get("spec") or {}).get("arguments") or {})
                    .get("parameters") or []}
        return set(((self.spec.get("root") or {}).get("inputDefinitions") or {}).get("parameters") or {})


@dataclass
class StoredPipeline:
    """A pipeline and its versions, oldest first."""

    id: str
    name: str
    description: str = ""
    versions: list[StoredVersion] = field(default_factory=list)
    created_at: str = field(default_factory=_now)


@dataclass
class StoredRecurringRun:
    """A recurring run (v2beta1) or job (v1beta1); `body` is the create request as received."""

    id: str
    name: str
    api: Api
    body: dict[str, Any]
    enabled: bool = True
    created_at: str = field(default_factory=_now)


class PipelineRoutes:
    """The pipeline and recurring-run state of one fake server, and its route handlers."""

    def __init__(self, server: FakeKfp) -> None:
        self.server = server
        self.pipelines: dict[str, StoredPipeline] = {}
        self.recurring: dict[str, StoredRecurringRun] = {}
        for api in server.apis:
            base = f"/apis/{api.value}"
            if api is Api.V2BETA1:
                routes = [("GET", "/pipelines", self._list_pipelines), ("POST", "/pipelines", self._create_pipeline),
                          ("POST", "/pipelines/upload_version", self._upload_version),
                          ("GET", "/pipelines/{pipeline_id}/versions", self._list_versions),
                          ("GET", "/pipelines/{pipeline_id}/versions/{version_id}", self._get_version),
                          ("GET", "/recurringruns", self._list_recurring),
                          ("POST", "/recurringruns", self._create_recurring),
                          ("POST", "/recurringruns/{rid}:enable", self._enable),
                          ("POST", "/recurringruns/{rid}:disable", self._disable),
                          ("DELETE", "/recurringruns/{rid}", self._delete_recurring)]
            else:
                routes = [("GET", "/pipelines", self._list_pipelines), ("POST", "/pipelines/upload", self._upload),
                          ("POST", "/pipelines/upload_version", self._upload_version),
                          ("GET", "/pipeline_versions", self._list_versions),
                          ("GET", "/pipeline_versions/{version_id}", self._get_version),
                          ("GET", "/jobs", self._list_recurring), ("POST", "/jobs", self._create_recurring),
                          ("POST", "/jobs/{rid}/enable", self._enable), ("POST", "/jobs/{rid}/disable", self._disable),
                          ("DELETE", "/jobs/{rid}", self._delete_recurring)]
            for method, path, handler in routes:
                server.add_route(method, base + path, handler)

    # -- what tests use ---------------------------------------------------------------------

    def pipeline_named(self, name: str) -> StoredPipeline | None:
        """The pipeline called `name`, if any."""
        with self.server.lock:
            return next((p for p in self.pipelines.values() if p.name == name), None)

    def recurring_runs(self, api: Api | None = None) -> list[StoredRecurringRun]:
        """Every recurring run (through `api`, when given), oldest first."""
        with self.server.lock:
            return [r for r in self.recurring.values() if api in (None, r.api)]

    # -- pipelines and versions ---------------------------------------------------------------

    def _list_pipelines(self, incoming: Incoming) -> JsonResponse:
        api = api_of(incoming)
        matches = item_filter(incoming, api, {"display_name"} if api is Api.V2BETA1 else {"name"})
        items = [self._pipeline_json(p, api) for p in self.pipelines.values()]
        return page(incoming, "pipelines", [i for i in items if matches(i)])

    def _create_pipeline(self, incoming: Incoming) -> JsonResponse:
        body = json_object(incoming)
        pipeline = self._new_pipeline(str(body.get("display_name") or ""), str(body.get("description") or ""))
        return JsonResponse(200, self._pipeline_json(pipeline, Api.V2BETA1))

    def _upload(self, incoming: Incoming) -> JsonResponse:
        spec = self._package(incoming)
        name = incoming.query.get("name") or ""
        pipeline = self._new_pipeline(name, incoming.query.get("description") or "")
        pipeline.versions.append(StoredVersion(str(uuid.uuid4()), name, pipeline.id, spec))
        return JsonResponse(200, self._pipeline_json(pipeline, Api.V1BETA1))

    def _upload_version(self, incoming: Incoming) -> JsonResponse:
        spec = self._package(incoming)
        pipeline = self.pipelines.get(incoming.query.get("pipelineid") or "")
        if pipeline is None:
            raise Refusal(404, f"Resource not found: pipeline {incoming.query.get('pipelineid')!r} not found")
        name = incoming.query.get("name") or ""
        if not name.strip():
            raise Refusal(400, "Invalid input error: pipeline version name is empty")
        if any(v.name == name for v in pipeline.versions):
            raise Refusal(409, f"Already exist error: pipeline version {name} already exists in pipeline "
                               f"{pipeline.name}")
        version = StoredVersion(str(uuid.uuid4()), name, pipeline.id, spec, incoming.query.get("description") or "")
        pipeline.versions.append(version)
        return JsonResponse(200, self._version_json(version, api_of(incoming)))

    def _list_versions(self, incoming: Incoming) -> JsonResponse:
        api = api_of(incoming)
        if api is Api.V2BETA1:
            pipeline_id = incoming.params["pipeline_id"]
        else:
            if incoming.query.get("resource_key.type") != "PIPELINE":
                raise Refusal(400, "Invalid input error: list pipeline versions needs resource_key.type=PIPELINE")
            pipeline_id = incoming.query.get("resource_key.id") or ""
        pipeline = self.pipelines.get(pipeline_id)
        if pipeline is None:
            raise Refusal(404, f"Resource not found: pipeline {pipeline_id!r} not found")
        matches = item_filter(incoming, api, {"display_name"} if api is Api.V2BETA1 else {"name"})
        items = [self._version_json(v, api) for v in pipeline.versions]
        return page(incoming, "pipeline_versions" if api is Api.V2BETA1 else "versions",
                    [i for i in items if matches(i)])

    def _get_version(self, incoming: Incoming) -> JsonResponse:
        version = self._version(incoming.params["version_id"])
        if "pipeline_id" in incoming.params and version.pipeline_id != incoming.params["pipeline_id"]:
            raise Refusal(404, f"Resource not found: pipeline version {version.id} not found")
        return JsonResponse(200, self._version_json(version, api_of(incoming), detail=True))

    def _version(self, version_id: str) -> StoredVersion:
        for pipeline in self.pipelines.values():
            for version in pipeline.versions:
                if version.id == version_id:
                    return version
        raise Refusal(404, f"Resource not found: pipeline version {version_id} not found")

    def _new_pipeline(self, name: str, description: str) -> StoredPipeline:
        if not name.strip():
            raise Refusal(400, "Invalid input error: pipeline name is empty")
        if any(p.name == name for p in self.pipelines.values()):
            raise Refusal(409, f"Already exist error: pipeline {name} already exists")
        pipeline = StoredPipeline(str(uuid.uuid4()), name, description)
        self.pipelines[pipeline.id] = pipeline
        return pipeline

    @staticmethod
    def _package(incoming: Incoming) -> dict[str, Any]:
        environ = create_environ(method="POST", input_stream=io.BytesIO(incoming.body),
                                 content_type=incoming.headers.get("Content-Type", ""),
                                 content_length=len(incoming.body))
        upload = Request(environ).files.get("uploadfile")
        if upload is None:
            raise Refusal(400, "Invalid input error: Failed to read pipeline from file: no 'uploadfile' part")
        try:
            spec = yaml.safe_load(upload.read())
        except yaml.YAMLError as exc:
            raise Refusal(400, f"Invalid input error: the pipeline file is not YAML: {exc}") from None
        argo = isinstance(spec, dict) and spec.get("kind") == "Workflow"
        ir = isinstance(spec, dict) and all(k in spec for k in ("pipelineInfo", "root", "schemaVersion"))
        if api_of(incoming) is Api.V2BETA1 and not ir:
            raise Refusal(400, "Invalid input error: the file is not a KFP v2 pipeline spec")
        if api_of(incoming) is Api.V1BETA1 and not argo:
            raise Refusal(400, "Invalid input error: the file is not an Argo workflow")
        return spec

    @staticmethod
    def _pipeline_json(pipeline: StoredPipeline, api: Api) -> dict[str, Any]:
        if api is Api.V2BETA1:
            return {"pipeline_id": pipeline.id, "display_name": pipeline.name, "description": pipeline.description,
                    "created_at": pipeline.created_at}
        data: dict[str, Any] = {"id": pipeline.id, "name": pipeline.name, "description": pipeline.description,
                                "created_at": pipeline.created_at}
        if pipeline.versions:
            data["default_version"] = PipelineRoutes._version_json(pipeline.versions[-1], api)
        return data

    @staticmethod
    def _version_json(version: StoredVersion, api: Api, *, detail: bool = False) -> dict[str, Any]:
        if api is Api.V2BETA1:
            data = {"pipeline_id": version.pipeline_id, "pipeline_version_id": version.id,
                    "display_name": version.name, "description": version.description,
                    "created_at": version.created_at}
            if detail:
                data["pipeline_spec"] = version.spec
            return data
        return {"id": version.id, "name": version.name, "description": version.description,
                "created_at": version.created_at,
                "resource_references": [{"key": {"type": "PIPELINE", "id": version.pipeline_id},
                                         "relationship": "OWNER"}]}

    # -- recurring runs -----------------------------------------------------------------------

    def _list_recurring(self, incoming: Incoming) -> JsonResponse:
        api = api_of(incoming)
        matches = item_filter(incoming, api, {"display_name"} if api is Api.V2BETA1 else {"name"})
        items = [self._recurring_json(r) for r in self.recurring.values() if r.api is api]
        return page(incoming, "recurringRuns" if api is Api.V2BETA1 else "jobs", [i for i in items if matches(i)])

    def _create_recurring(self, incoming: Incoming) -> JsonResponse:
        api = api_of(incoming)
        body = json_object(incoming)
        name = body.get("display_name" if api is Api.V2BETA1 else "name")
        if not isinstance(name, str) or not name.strip():
            raise Refusal(400, "Invalid input error: the recurring run name is empty")
        cron = ((body.get("trigger") or {}).get("cron_schedule") or {}).get("cron") or ""
        if len(cron.split()) != 6:
            raise Refusal(400, f"Invalid input error: invalid cron {cron!r}: KFP expects 6 fields "
                               "(seconds minutes hours day-of-month month day-of-week)")
        if api is Api.V2BETA1:
            reference = body.get("pipeline_version_reference") or {}
            version = self._version(str(reference.get("pipeline_version_id") or ""))
            given = set((body.get("runtime_config") or {}).get("parameters") or {})
            experiment_id = str(body.get("experiment_id") or "")
        else:
            refs = {(r.get("key") or {}).get("type"): r for r in body.get("resource_references") or []}
            version = self._version(str(((refs.get("PIPELINE_VERSION") or {}).get("key") or {}).get("id") or ""))
            experiment_id = str(((refs.get("EXPERIMENT") or {}).get("key") or {}).get("id") or "")
            parameters = (body.get("pipeline_spec") or {}).get("parameters") or []
            if not all(isinstance(p.get("value", ""), str) for p in parameters):
                raise Refusal(400, "Invalid input error: v1beta1 parameter values must be strings")
            given = {p.get("name") for p in parameters}
        if experiment_id and experiment_id not in self.server.experiments:
            raise Refusal(404, f"Failed to create a recurring run: experiment {experiment_id} not found")
        unknown = sorted(set(given) - version.declared)
        if unknown:
            raise Refusal(400, f"Invalid input error: the pipeline has no input parameter {', '.join(unknown)}")
        enabled = body.get("mode", "ENABLE") == "ENABLE" if api is Api.V2BETA1 else bool(body.get("enabled"))
        stored = StoredRecurringRun(str(uuid.uuid4()), name, api, body, enabled)
        self.recurring[stored.id] = stored
        return JsonResponse(200, self._recurring_json(stored))

    def _enable(self, incoming: Incoming) -> JsonResponse:
        self._recurring(incoming).enabled = True
        return JsonResponse(200, {})

    def _disable(self, incoming: Incoming) -> JsonResponse:
        self._recurring(incoming).enabled = False
        return JsonResponse(200, {})

    def _delete_recurring(self, incoming: Incoming) -> JsonResponse:
        del self.recurring[self._recurring(incoming).id]
        return JsonResponse(200, {})

    def _recurring(self, incoming: Incoming) -> StoredRecurringRun:
        found = self.recurring.get(incoming.params["rid"])
        if found is None or found.api is not api_of(incoming):
            raise Refusal(404, f"Resource not found: recurring run {incoming.params['rid']} not found")
        return found

    @staticmethod
    def _recurring_json(run: StoredRecurringRun) -> dict[str, Any]:
        if run.api is Api.V2BETA1:
            return {**run.body, "recurring_run_id": run.id, "created_at": run.created_at,
                    "mode": "ENABLE" if run.enabled else "DISABLE", "status": "ENABLED" if run.enabled else "DISABLED"}
        return {**run.body, "id": run.id, "created_at": run.created_at, "enabled": run.enabled}
