"""Deploys to a Kubeflow Pipelines endpoint: pipeline versions and recurring runs, as the seed does.

For pipelines whose target is `kfp`, a deploy uploads the compiled package as a new version
(named after the commit) of the KFP pipeline named after the repository pipeline, creating the
pipeline on its first deploy; `settings.yaml`'s `schedule:` becomes a recurring run
`kfp-bot-<pipeline>` of that version. kfp 2 packages go through the v2beta1 API, Argo workflows
(kfp 1.8 v1 compiler) through v1beta1, both as plain REST with the runner's retries and errors.

Everything is found again by name, so a redelivered deploy reuses the version it uploaded and
leaves an unchanged recurring run alone. KFP cannot update a recurring run: a changed one is
deleted and created again. `TargetRouted` picks the KFP adapters for `kfp`-target pipelines and
the bot's other store or scheduler for the rest.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

import kfp
import requests

from deploy.compiler.package import PackageFormat, load_package
from deploy.errors import DeployError
from deploy.runners.kfp_calls import (
    RETRY_STATUSES,
    KfpRequestRefused,
    RetryPolicy,
    Transient,
    api_message,
    name_filter,
    with_retries,
)
from deploy.runners.kfp_http import JsonHttp, _describe, default_session, normalise_host
from deploy.runners.kfp_v1beta1 import V1Api, v1_parameters
from deploy.runners.kfp_v2beta1 import V2Api
from deploy.schedules import Removal, display_name_for
from pipeline_registry.repo_config import Target
from pipeline_registry.settings import ScheduleOptions

log = logging.getLogger("kfp_bot.deploy.kfp")

V2 = "/apis/v2beta1"
V1 = "/apis/v1beta1"
_REFERENCE = re.compile(r"/#/pipelines/details/(?P<pipeline>[^/]+)/version/(?P<version>[^/?#]+)$")
_UTC = frozenset({"UTC", "Etc/UTC", "GMT", "Etc/GMT", "Z"})
P = TypeVar("P")


class _Endpoint:
    """The JSON and multipart calls of one KFP endpoint, retried like the runner's."""

    def __init__(self, host: str, *, session: requests.Session | None, namespace: str | None,
                 client_factory: Callable[[], kfp.Client] | None, retry: RetryPolicy) -> None:
        self.host = normalise_host(host)
        self.namespace = namespace
        self.retry = retry
        self._session_factory = (lambda: session) if session is not None else lambda: default_session(self.host)
        self._session: requests.Session | None = None
        self.http = JsonHttp(self.host, self._session_factory, retry)
        factory = client_factory or (lambda: kfp.Client(host=self.host, namespace=namespace or "kubeflow"))
        self.v2 = V2Api(self.http, factory, namespace=namespace)
        self.v1 = V1Api(self.http, namespace=namespace)

    def upload(self, what: str, path: str, params: Mapping[str, str], content: bytes,
               recover: Callable[[], dict[str, Any] | None]) -> dict[str, Any]:
        """POST a package as the `uploadfile` part; after a lost answer, `recover` finds what was made."""
        def once() -> dict[str, Any]:
            if self._session is None:
                self._session = self._session_factory()
            timeout = self.retry.request_timeout
            try:
                response = self._session.post(f"{self.host}{path}", params=dict(params),
                                              files={"uploadfile": ("pipeline.yaml", content, "application/x-yaml")},
                                              timeout=(timeout, timeout))
            except requests.RequestException as exc:
                raise Transient(_describe(exc)) from None
            if response.status_code in RETRY_STATUSES:
                raise Transient(f"HTTP {response.status_code}: {api_message(response.content, response.reason)}")
            if response.status_code >= 400:
                raise KfpRequestRefused(what, response.status_code, api_message(response.content, response.reason))
            try:
                return dict(response.json())
            except ValueError:
                raise KfpRequestRefused(what, response.status_code, "the answer is not the KFP API's JSON") from None

        return with_retries(self.host, what, once, self.retry, recover=recover)

    def first(self, what: str, path: str, field: str, key: str, name: str, *, op: str,
              params: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        """The first listed item whose `key` is `name`."""
        query = {"filter": name_filter(key, name, operation_key=op), "page_size": 10, **(params or {})}
        answer = self.http.call(what, "GET", path, params=query) or {}
        items = answer.get(field) or answer.get(_camel(field)) or []
        return next((i for i in items if i.get(key) == name), None)


class KfpPipelineStore:
    """The `TemplateStore` port on a KFP endpoint: one pipeline per repository pipeline, one version per commit."""

    def __init__(self, host: str, *, session: requests.Session | None = None, namespace: str | None = None,
                 client_factory: Callable[[], kfp.Client] | None = None, ui_host: str | None = None,
                 retry: RetryPolicy = RetryPolicy()) -> None:
        self.endpoint = _Endpoint(host, session=session, namespace=namespace, client_factory=client_factory,
                                  retry=retry)
        self.ui_host = normalise_host(ui_host) if ui_host else self.endpoint.host

    def upload(self, pipeline: str, package: Any, *, version: str, tags: Sequence[str],
               metadata: Mapping[str, str]) -> str:
        """Upload the package as version `version` (reused when it exists); the version's page in the KFP UI."""
        package_format = _format(package, pipeline)
        content = _content(Path(package.package_path), package_format, pipeline)
        description = _description(tags, metadata)
        if package_format is PackageFormat.ARGO_YAML:
            pipeline_id, version_id = self._upload_v1(pipeline, version, content, description)
        else:
            if not self.endpoint.v2.served():
                raise DeployError(f"{self.endpoint.host} serves only the Kubeflow Pipelines v1 API, which cannot "
                                  f"take the kfp 2 package of '{pipeline}'",
                                  hint="compile with the kfp 1.8 SDK's v1 compiler, or deploy to a KFP 2 endpoint")
            pipeline_id, version_id = self._upload_v2(pipeline, version, content, description)
        ref = f"{self.ui_host}/#/pipelines/details/{pipeline_id}/version/{version_id}"
        log.info("pipeline %s version %s is %s", pipeline, version, ref)
        return ref

    def _upload_v2(self, pipeline: str, version: str, content: bytes, description: str) -> tuple[str, str]:
        ep = self.endpoint
        scope = {"namespace": ep.namespace} if ep.namespace else {}

        def find_pipeline() -> dict[str, Any] | None:
            return ep.first(f"look up pipeline '{pipeline}'", f"{V2}/pipelines", "pipelines", "display_name",
                            pipeline, op="operation", params=scope)

        found = find_pipeline()
        if found is None:
            try:
                found = ep.http.call(f"create pipeline '{pipeline}'", "POST", f"{V2}/pipelines",
                                     body={"display_name": pipeline, "description": "Deployed by kfp-bot", **scope},
                                     recover=find_pipeline)
            except KfpRequestRefused as exc:
                found = find_pipeline() if exc.status == 409 else None
                if found is None:
                    raise
        pipeline_id = str(found["pipeline_id"])

        def find_version() -> dict[str, Any] | None:
            return ep.first(f"look up version '{version}' of '{pipeline}'", f"{V2}/pipelines/{pipeline_id}/versions",
                            "pipeline_versions", "display_name", version, op="operation")

        existing = find_version() or ep.upload(
            f"upload version '{version}' of '{pipeline}'", f"{V2}/pipelines/upload_version",
            {"name": version, "pipelineid": pipeline_id, "description": description}, content, find_version)
        return pipeline_id, str(existing["pipeline_version_id"])

    def _upload_v1(self, pipeline: str, version: str, content: bytes, description: str) -> tuple[str, str]:
        ep = self.endpoint

        def find_pipeline() -> dict[str, Any] | None:
            return ep.first(f"look up pipeline '{pipeline}'", f"{V1}/pipelines", "pipelines", "name", pipeline,
                            op="op")

        found = find_pipeline() or ep.upload(f"upload pipeline '{pipeline}'", f"{V1}/pipelines/upload",
                                             {"name": pipeline, "description": "Deployed by kfp-bot"}, content,
                                             find_pipeline)
        pipeline_id = str(found["id"])

        def find_version() -> dict[str, Any] | None:
            return ep.first(f"look up version '{version}' of '{pipeline}'", f"{V1}/pipeline_versions", "versions",
                            "name", version, op="op",
                            params={"resource_key.type": "PIPELINE", "resource_key.id": pipeline_id})

        existing = find_version() or ep.upload(
            f"upload version '{version}' of '{pipeline}'", f"{V1}/pipelines/upload_version",
            {"name": version, "pipelineid": pipeline_id, "description": description}, content, find_version)
        return pipeline_id, str(existing["id"])


class KfpRecurringRuns:
    """The `Schedules` port on a KFP endpoint: recurring runs (v2beta1) or jobs (v1beta1) `kfp-bot-<pipeline>`."""

    def __init__(self, host: str, *, session: requests.Session | None = None, namespace: str | None = None,
                 client_factory: Callable[[], kfp.Client] | None = None, removal: Removal = Removal.PAUSE,
                 retry: RetryPolicy = RetryPolicy()) -> None:
        self.endpoint = _Endpoint(host, session=session, namespace=namespace, client_factory=client_factory,
                                  retry=retry)
        self.removal = removal

    def apply(self, pipeline: str, template: str, schedule: ScheduleOptions | None, *,
              parameters: Mapping[str, Any]) -> str | None:
        """Create or replace the recurring run of the version `template` refers to; pause/delete it when
        `schedule` is None. Returns the recurring run's id (None when there is none any more)."""
        existing = self._existing(pipeline)
        if schedule is None:
            for api, item in existing:
                self._remove(pipeline, api, item)
            return None
        pipeline_id, version_id = _parse_reference(template, pipeline)
        api = self._api_of_version(pipeline, pipeline_id, version_id)
        cron = kfp_cron(schedule, pipeline)
        values = {k: v for k, v in parameters.items() if v is not None}
        fingerprint = hashlib.sha256(json.dumps([api, version_id, cron, values, schedule.max_concurrent_runs],
                                                sort_keys=True, default=str).encode()).hexdigest()[:16]
        description = f"kfp-bot schedule of {pipeline} (fingerprint {fingerprint})"
        keep = None
        for item_api, item in existing:
            if keep is None and item_api == api and item.get("description") == description:
                keep = item
            else:
                self._delete(pipeline, item_api, item)
        if keep is not None:
            self._enable(pipeline, api, keep)
            return _id(api, keep)
        experiment = (self.endpoint.v2 if api == V2 else self.endpoint.v1).experiment_id(pipeline)
        name = display_name_for(pipeline)
        if api == V2:
            body: dict[str, Any] = {
                "display_name": name, "description": description, "experiment_id": experiment,
                "pipeline_version_reference": {"pipeline_id": pipeline_id, "pipeline_version_id": version_id},
                "runtime_config": {"parameters": values}, "trigger": {"cron_schedule": {"cron": cron}},
                "max_concurrency": str(schedule.max_concurrent_runs), "mode": "ENABLE", "no_catchup": True}
        else:
            body = {"name": name, "description": description, "enabled": True, "no_catchup": True,
                    "pipeline_spec": {"parameters": v1_parameters(values)},
                    "resource_references": [
                        {"key": {"type": "EXPERIMENT", "id": experiment}, "relationship": "OWNER"},
                        {"key": {"type": "PIPELINE_VERSION", "id": version_id}, "relationship": "CREATOR"}],
                    "trigger": {"cron_schedule": {"cron": cron}}, "max_concurrency": str(schedule.max_concurrent_runs)}
        created = self.endpoint.http.call(
            f"create the recurring run of '{pipeline}'", "POST", f"{api}/{_collection(api)}", body=body,
            recover=lambda: next((i for a, i in self._existing(pipeline) if i.get("description") == description),
                                 None))
        log.info("KFP recurring run %s of %s created (%s)", _id(api, created), pipeline, cron)
        return _id(api, created)

    def _existing(self, pipeline: str) -> list[tuple[str, dict[str, Any]]]:
        name = display_name_for(pipeline)
        found: list[tuple[str, dict[str, Any]]] = []
        apis = ([(V2, "display_name", "operation")] if self.endpoint.v2.served() else []) + [(V1, "name", "op")]
        for api, key, op in apis:
            answer = self.endpoint.http.call(f"list the recurring runs of '{pipeline}'", "GET",
                                             f"{api}/{_collection(api)}",
                                             params={"filter": name_filter(key, name, operation_key=op),
                                                     "page_size": 100}) or {}
            items = answer.get("recurringRuns") or answer.get("recurring_runs") or answer.get("jobs") or []
            found.extend((api, i) for i in items if i.get(key) == name)
        return found

    def _api_of_version(self, pipeline: str, pipeline_id: str, version_id: str) -> str:
        """v2beta1 for a version holding a pipeline spec; v1beta1 for an Argo workflow."""
        http = self.endpoint.http
        if self.endpoint.v2.served():
            version = http.call(f"look up the deployed version of '{pipeline}'", "GET",
                                f"{V2}/pipelines/{pipeline_id}/versions/{version_id}", missing_ok=True)
            if version is not None and (version.get("pipeline_spec") or {}).get("kind") != "Workflow":
                return V2
        if http.call(f"look up the deployed version of '{pipeline}'", "GET", f"{V1}/pipeline_versions/{version_id}",
                     missing_ok=True) is None:
            raise DeployError(f"the KFP endpoint {self.endpoint.host} has no pipeline version {version_id} of "
                              f"'{pipeline}' to schedule", hint="deploy the pipeline again")
        return V1

    def _enable(self, pipeline: str, api: str, item: Mapping[str, Any]) -> None:
        enabled = item.get("mode") == "ENABLE" if api == V2 else bool(item.get("enabled"))
        if not enabled:
            self.endpoint.http.call(f"resume the recurring run of '{pipeline}'", "POST", _action(api, item, "enable"))
            log.info("KFP recurring run %s of %s resumed", _id(api, item), pipeline)

    def _remove(self, pipeline: str, api: str, item: Mapping[str, Any]) -> None:
        if self.removal is Removal.DELETE:
            self._delete(pipeline, api, item)
            return
        enabled = item.get("mode") == "ENABLE" if api == V2 else bool(item.get("enabled"))
        if enabled:
            self.endpoint.http.call(f"pause the recurring run of '{pipeline}'", "POST", _action(api, item, "disable"))
            log.info("KFP recurring run %s of %s paused", _id(api, item), pipeline)

    def _delete(self, pipeline: str, api: str, item: Mapping[str, Any]) -> None:
        self.endpoint.http.call(f"delete the recurring run of '{pipeline}'", "DELETE",
                                f"{api}/{_collection(api)}/{_id(api, item)}", missing_ok=True)
        log.info("KFP recurring run %s of %s deleted", _id(api, item), pipeline)


class TargetRouted(Generic[P]):
    """One port per pipeline target (`kfp` → the KFP adapters), the bot's own adapter for the others."""

    def __init__(self, routes: Mapping[Target, P], *, fallback: P | None, default_target: Target) -> None:
        self.routes = dict(routes)
        self.fallback = fallback
        self.default_target = default_target

    def for_target(self, target: Target | None) -> P | None:
        """The port of a pipeline with `target` (None: the bot's default runner's target)."""
        return self.routes.get(target or self.default_target, self.fallback)

    def every(self) -> tuple[P, ...]:
        """Every distinct port (removing a deleted pipeline's schedule asks them all)."""
        ports = [*self.routes.values(), *([self.fallback] if self.fallback is not None else [])]
        return tuple({id(p): p for p in ports}.values())


def kfp_cron(schedule: ScheduleOptions, pipeline: str) -> str:
    """KFP's six-field cron (seconds first) from `settings.yaml`'s five fields; KFP schedules in UTC."""
    fields = schedule.cron.split()
    if len(fields) != 5:
        raise DeployError(f"schedule.cron of '{pipeline}' must have 5 fields (minute hour day month weekday), "
                          f"got {schedule.cron!r}")
    if schedule.time_zone not in _UTC:
        raise DeployError(f"schedule.time_zone of '{pipeline}' is {schedule.time_zone}, but KFP recurring runs "
                          "follow the cluster's clock (UTC)", hint="write the cron in UTC and drop time_zone")
    return "0 " + " ".join(fields)


def _parse_reference(template: str, pipeline: str) -> tuple[str, str]:
    match = _REFERENCE.search(template)
    if match is None:
        raise DeployError(f"cannot schedule '{pipeline}': {template!r} is not a KFP pipeline version",
                          hint="KFP recurring runs need the pipeline deployed to the KFP endpoint (target: kfp)")
    return match["pipeline"], match["version"]


def _collection(api: str) -> str:
    return "recurringruns" if api == V2 else "jobs"


def _id(api: str, item: Mapping[str, Any]) -> str:
    return str(item.get("recurring_run_id") if api == V2 else item.get("id"))


def _action(api: str, item: Mapping[str, Any], verb: str) -> str:
    return f"{V2}/recurringruns/{_id(api, item)}:{verb}" if api == V2 else f"{V1}/jobs/{_id(api, item)}/{verb}"


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(r.title() for r in rest)


def _format(package: Any, pipeline: str) -> PackageFormat:
    known = getattr(package, "format", None)
    return known if isinstance(known, PackageFormat) else load_package(Path(package.package_path), pipeline).format


def _content(path: Path, package_format: PackageFormat, pipeline: str) -> bytes:
    """The bytes to upload; a kfp 1.8 job JSON is uploaded as its pipeline spec."""
    try:
        if package_format is PackageFormat.JOB_JSON:
            return json.dumps(json.loads(path.read_text(encoding="utf-8"))["pipelineSpec"]).encode()
        return path.read_bytes()
    except (OSError, ValueError, KeyError) as exc:
        raise DeployError(f"{path.name}: cannot read the compiled pipeline of '{pipeline}': {exc}") from None


def _description(tags: Sequence[str], metadata: Mapping[str, str]) -> str:
    said = ", ".join(f"{k}={v}" for k, v in metadata.items() if v)
    return f"kfp-bot deploy; tags: {', '.join(tags)}; {said}"[:1000]
