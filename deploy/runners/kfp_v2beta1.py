"""kfp 2 pipeline specs run through the KFP v2beta1 REST API with the kfp 2 SDK's own client.

`kfp.Client` (kfp-server-api models over urllib3) is used through its generated service APIs
(`client.experiments`, `client.runs`): they accept a request timeout, which the client's
convenience methods do not, and a hung endpoint must not hold a worker forever. The package is
read the way `Client.create_run_from_pipeline_package` reads it (pipeline spec, optional
platform spec, caching overridden for every task when the settings say so), then:

- `GET/POST /apis/v2beta1/experiments` (filter on `display_name`),
- `POST /apis/v2beta1/runs` with `pipeline_spec`, `runtime_config.parameters` (typed JSON
  values) and `pipeline_root`, `service_account`,
- `GET /apis/v2beta1/runs` (filter on `display_name`) and `POST /apis/v2beta1/runs/{id}:terminate`.

Before the client is built, `GET /apis/v2beta1/healthz` is probed with a timeout: a Kubeflow
Pipelines 1.x endpoint (AI Platform Pipelines) answers 404, and `kfp.Client` itself would retry
that for half a minute. The client is built once, lazily, and shared by the worker threads;
it is built again after a 401, because `kfp.Client` fetches a Google access token (inverse
proxy hosts) only when it is built.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kfp
import kfp_server_api
import urllib3
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from kfp_server_api import V2beta1RuntimeState as States

from deploy.errors import RunError
from deploy.runners.kfp_calls import (
    RETRY_STATUSES,
    ApiVersion,
    KfpEndpointUnavailable,
    KfpRequestRefused,
    RemoteRun,
    RunSpec,
    T,
    Transient,
    api_message,
    experiment_id,
    name_filter,
    with_retries,
)
from deploy.runners.kfp_http import JsonHttp
from handlers.run_models import RunState

ClientFactory = Callable[[], kfp.Client]

_STATES = {States.SUCCEEDED: RunState.SUCCEEDED, States.FAILED: RunState.FAILED,
           States.CANCELED: RunState.CANCELLED, States.CANCELING: RunState.CANCELLED,
           States.SKIPPED: RunState.SKIPPED}
"""Every other state (unspecified, pending, running, paused) is still running."""


class V2Api:
    """The `KfpApi` of one endpoint's v2beta1 REST API, over `kfp.Client`."""

    version = ApiVersion.V2BETA1

    def __init__(self, http: JsonHttp, client_factory: ClientFactory, *, namespace: str | None = None) -> None:
        self.http = http
        self.namespace = namespace
        self._factory = client_factory
        self._client: kfp.Client | None = None
        self._served: bool | None = None
        self._lock = threading.Lock()

    def served(self) -> bool:
        """False when the endpoint has no v2beta1 API (Kubeflow Pipelines 1.x); asked once."""
        if self._served is None:
            self._served = self.http.call("answer the v2beta1 health check", "GET", "/apis/v2beta1/healthz",
                                          missing_ok=True) is not None
        return self._served

    def experiment_id(self, name: str) -> str:
        """The experiment's id; created (in the namespace, multi-user) when there is none."""
        experiment = kfp_server_api.V2beta1Experiment(display_name=name, description="Runs started by kfp-bot",
                                                      namespace=self.namespace)

        def create() -> str:
            return str(self._call(f"create experiment '{name}'",
                                  lambda client: client.experiments.experiment_service_create_experiment(
                                      experiment=experiment, _request_timeout=self._timeout).experiment_id,
                                  recover=lambda: self._find_experiment(name)))

        return experiment_id(name, self._find_experiment, create)

    def find_run(self, name: str, experiment_id: str | None = None) -> RemoteRun | None:
        """The run called `name`, in the experiment when given."""
        scope = {"experiment_id": experiment_id} if experiment_id else self._namespace_param()

        def lookup(client: kfp.Client) -> RemoteRun | None:
            answer = client.runs.run_service_list_runs(filter=name_filter("display_name", name,
                                                                          operation_key="operation"),
                                                       page_size=10, _request_timeout=self._timeout, **scope)
            return next((_remote(run) for run in answer.runs or [] if run.display_name == name), None)

        return self._call(f"look up run '{name}'", lookup)

    def create_run(self, spec: RunSpec) -> RemoteRun:
        """Create the run of the kfp 2 pipeline spec in `spec.package_path`."""
        body = kfp_server_api.V2beta1Run(
            experiment_id=spec.experiment_id, display_name=spec.name, description=spec.description,
            pipeline_spec=pipeline_spec(spec.package_path, spec.enable_caching),
            runtime_config=kfp_server_api.V2beta1RuntimeConfig(
                parameters={k: v for k, v in spec.parameters.items() if v is not None},
                pipeline_root=spec.pipeline_root),
            service_account=spec.service_account)
        return self._call(f"create run '{spec.name}'",
                          lambda client: _remote(client.runs.run_service_create_run(
                              run=body, _request_timeout=self._timeout)),
                          recover=lambda: self.find_run(spec.name, spec.experiment_id))

    def terminate_run(self, run_id: str) -> None:
        """Ask KFP to stop the run (its state becomes CANCELING, then CANCELED)."""
        self._call(f"terminate run {run_id}",
                   lambda client: client.runs.run_service_terminate_run(run_id=run_id,
                                                                        _request_timeout=self._timeout))

    @property
    def _timeout(self) -> tuple[float, float]:
        # kfp-server-api takes an int (total) or a (connect, read) pair; a float would be ignored.
        return (self.http.policy.request_timeout, self.http.policy.request_timeout)

    def _namespace_param(self) -> dict[str, str]:
        return {"namespace": self.namespace} if self.namespace else {}

    def _find_experiment(self, name: str) -> str | None:
        def lookup(client: kfp.Client) -> str | None:
            answer = client.experiments.experiment_service_list_experiments(
                filter=name_filter("display_name", name, operation_key="operation"), page_size=10,
                _request_timeout=self._timeout, **self._namespace_param())
            return next((e.experiment_id for e in answer.experiments or [] if e.display_name == name), None)

        return self._call(f"look up experiment '{name}'", lookup)

    def _call(self, what: str, call: Callable[[kfp.Client], T], *,
              recover: Callable[[], T | None] | None = None) -> T:
        renewed: list[bool] = []

        def attempt() -> T:
            client = self._get_client()
            try:
                return call(client)
            except kfp_server_api.ApiException as exc:
                message = api_message(exc.body, exc.reason or "")
                if exc.status in RETRY_STATUSES or not exc.status:
                    raise Transient(f"HTTP {exc.status}: {message}") from None
                if exc.status == 401 and not renewed:
                    # kfp.Client fetches an access token once, when it is built: a new client has a fresh one.
                    renewed.append(True)
                    self._drop_client(client)
                    raise Transient(f"HTTP 401: {message}") from None
                raise KfpRequestRefused(what, exc.status, message) from None
            except urllib3.exceptions.HTTPError as exc:
                raise Transient(_describe(exc)) from None

        return with_retries(self.http.host, what, attempt, self.http.policy, recover=recover)

    def _get_client(self) -> kfp.Client:
        with self._lock:
            if self._client is None:
                try:
                    self._client = self._factory()
                except (kfp_server_api.ApiException, urllib3.exceptions.HTTPError, TimeoutError) as exc:
                    raise KfpEndpointUnavailable(f"cannot connect kfp.Client to {self.http.host}: {exc}") from None
            return self._client

    def _drop_client(self, client: kfp.Client) -> None:
        with self._lock:
            if self._client is client:
                self._client = None


def pipeline_spec(path: Path, enable_caching: bool | None) -> dict[str, Any]:
    """The `pipeline_spec` of a run, as `kfp.Client` builds it from a package file.

    The first YAML document is the pipeline spec and later ones the platform spec; a kfp 1.8
    `{"pipelineSpec", "runtimeConfig"}` job JSON contributes its `pipelineSpec`. Both are
    validated against the protobuf schema here, so a malformed package fails before any request.
    """
    try:
        documents = [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise RunError(f"{path.name}: cannot read the compiled pipeline: {exc}") from None
    if not documents or not isinstance(documents[0], dict):
        raise RunError(f"{path.name}: not a compiled pipeline")
    first = documents[0]
    pipeline_doc = first["pipelineSpec"] if isinstance(first.get("pipelineSpec"), dict) else first
    platform_doc: dict[str, Any] = {}
    for extra in documents[1:]:
        platform_doc.update(extra if isinstance(extra, dict) else {})
    try:
        pipeline = json_format.ParseDict(pipeline_doc, pipeline_spec_pb2.PipelineSpec())
        platform = json_format.ParseDict(platform_doc, pipeline_spec_pb2.PlatformSpec())
    except json_format.ParseError as exc:
        raise RunError(f"{path.name}: not a pipeline spec the KFP API accepts: {exc}") from None
    if enable_caching is not None:
        for task in pipeline.root.dag.tasks.values():
            task.caching_options.enable_cache = enable_caching
    spec = json_format.MessageToDict(pipeline)
    if platform == pipeline_spec_pb2.PlatformSpec():
        return spec
    return {"pipeline_spec": spec, "platform_spec": json_format.MessageToDict(platform)}


def _remote(run: kfp_server_api.V2beta1Run) -> RemoteRun:
    state = _STATES.get(run.state or "", RunState.RUNNING)
    detail = ""
    if state is RunState.FAILED:
        message = getattr(run.error, "message", None) if run.error is not None else None
        detail = (message or "").strip() or "the run failed on the KFP endpoint"
    elif state is RunState.CANCELLED:
        detail = "terminated on the KFP endpoint"
    return RemoteRun(id=str(run.run_id or ""), name=str(run.display_name or ""), state=state,
                     api=ApiVersion.V2BETA1, detail=detail)


def _describe(exc: urllib3.exceptions.HTTPError) -> str:
    reason = getattr(exc, "reason", None) or exc
    text = str(reason)
    if "Connection refused" in text:
        return "cannot connect: Connection refused"
    if isinstance(reason, urllib3.exceptions.TimeoutError) or isinstance(exc, urllib3.exceptions.TimeoutError):
        return "the request timed out"
    return f"{type(reason).__name__}: {text}"[:300]

