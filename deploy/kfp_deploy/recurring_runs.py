"""The `Schedules` port on a KFP endpoint: recurring runs (v2beta1) or jobs (v1beta1) named
`kfp-bot-<pipeline>`, of the pipeline version the template store uploaded."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

import kfp
import requests

from deploy.errors import DeployError
from deploy.kfp_deploy.endpoint import V1, V2, KfpDeployEndpoint, parse_version_page
from deploy.runners.kfp_calls import RetryPolicy, name_filter
from deploy.runners.kfp_v1beta1 import v1_parameters
from deploy.schedules import Removal, display_name_for
from pipeline_registry.settings import ScheduleOptions

log = logging.getLogger("kfp_bot.deploy.kfp")

_UTC = frozenset({"UTC", "Etc/UTC", "GMT", "Etc/GMT", "Z"})


class KfpRecurringRuns:
    """The `Schedules` port on a KFP endpoint: recurring runs (v2beta1) or jobs (v1beta1) `kfp-bot-<pipeline>`."""

    def __init__(self, host: str, *, session: requests.Session | None = None, namespace: str | None = None,
                 client_factory: Callable[[], kfp.Client] | None = None, removal: Removal = Removal.PAUSE,
                 retry: RetryPolicy = RetryPolicy()) -> None:
        self.endpoint = KfpDeployEndpoint(host, session=session, namespace=namespace,
                                          client_factory=client_factory, retry=retry)
        self.removal = removal

    def apply(self, pipeline: str, template: str, schedule: ScheduleOptions, *,
              parameters: Mapping[str, Any]) -> str:
        """Create or replace the recurring run of the version `template` refers to; its id."""
        existing = self._existing(pipeline)
        pipeline_id, version_id = parse_version_page(template, pipeline)
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

    def remove(self, pipeline: str) -> None:
        """Pause (or delete, `Removal.DELETE`) the pipeline's recurring runs; nothing when it has none."""
        for api, item in self._existing(pipeline):
            self._remove(pipeline, api, item)

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


def _collection(api: str) -> str:
    return "recurringruns" if api == V2 else "jobs"


def _id(api: str, item: Mapping[str, Any]) -> str:
    return str(item.get("recurring_run_id") if api == V2 else item.get("id"))


def _action(api: str, item: Mapping[str, Any], verb: str) -> str:
    return f"{V2}/recurringruns/{_id(api, item)}:{verb}" if api == V2 else f"{V1}/jobs/{_id(api, item)}/{verb}"
