"""The `Runner` port on a Kubeflow Pipelines endpoint (`KFP_BOT_RUNNER=kfp`, `KFP_BOT_KFP_HOST`).

This is the seed's experiment cluster (AI Platform Pipelines, or any Kubeflow Pipelines
deployment). Which REST API a run goes through depends on how the pipeline was compiled:

| package (`deploy.compiler.PackageFormat`)         | API       | through                        |
|---------------------------------------------------|-----------|--------------------------------|
| kfp 2 pipeline spec YAML (`IR_YAML`)              | v2beta1   | `kfp.Client` (`kfp_v2beta1`)   |
| kfp 1.8 v2 job JSON (`JOB_JSON`, its pipelineSpec) | v2beta1   | `kfp.Client` (`kfp_v2beta1`)   |
| kfp 1.8 v1 Argo workflow (`ARGO_YAML`)            | v1beta1   | REST with requests (`kfp_v1beta1`) |

A Kubeflow Pipelines 1.x endpoint serves only v1beta1: a kfp 2 package sent there fails at once
with what to do instead. Runs go to the experiment `settings.yaml` names (`run.experiment`), else
`debug` for pull request runs (as the seed does) and the pipeline's name for deploy runs.

The endpoint is the only state: each run is named `<pipeline>-<run id>`, so a redelivered event
finds the run it already created instead of starting a second one, and `run_status` and
`cancel_run` find it again from a fresh process. An endpoint that cannot be reached or keeps
answering 5xx raises `KfpEndpointUnavailable` (retryable); a request it refuses (4xx) ends the
run as failed with the API's own message. Nothing here waits for a run to finish: the state
comes back through `run_status` (the reconcile pass).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import kfp
import requests

from deploy.compiler.package import PackageFormat, load_package
from deploy.errors import RunError
from deploy.runners.kfp_calls import (
    ApiVersion,
    KfpApi,
    KfpEndpointUnavailable,
    RemoteRun,
    RetryPolicy,
    RunSpec,
    run_name,
)
from deploy.runners.kfp_http import JsonHttp, default_session, normalise_host
from deploy.runners.kfp_v1beta1 import V1Api
from deploy.runners.kfp_v2beta1 import V2Api
from handlers.ports.build import CompiledPackage
from handlers.ports.run import CollectedResults, RunRequest, RunSubmission
from handlers.run_models import Run, RunState, Trigger
from kfp_bot_errors import KfpBotError
from pipeline_registry.settings import RunOptions

log = logging.getLogger("kfp_bot.runners.kfp")

DEBUG_EXPERIMENT = "debug"
"""The seed's experiment for runs of pull requests."""

_PULL_REQUEST_TRIGGERS = frozenset({Trigger.AUTORUN, Trigger.COMMAND})
_API_OF = {PackageFormat.IR_YAML: ApiVersion.V2BETA1, PackageFormat.JOB_JSON: ApiVersion.V2BETA1,
           PackageFormat.ARGO_YAML: ApiVersion.V1BETA1}
_NOT_SUBMITTED = frozenset({RunState.QUEUED, RunState.BUILDING, RunState.COMPILING})


def experiment_for(run: Run, options: RunOptions) -> str:
    """The experiment of a run: the settings' choice, else `debug` for PR runs and the pipeline for deploys."""
    if options.experiment:
        return options.experiment
    return DEBUG_EXPERIMENT if run.trigger in _PULL_REQUEST_TRIGGERS else run.pipeline


class KfpEndpointRunner:
    """Submits, follows and cancels runs on one Kubeflow Pipelines endpoint.

    `client_factory` builds the `kfp.Client` (default: `kfp.Client(host=host)`, in `namespace`
    when given, for multi-user deployments); `session` carries the v1beta1 requests (default:
    authorised with application default credentials behind Google's inverse proxy). Nothing is
    contacted before the first run.
    """

    def __init__(self, host: str, *, client_factory: Callable[[], kfp.Client] | None = None,
                 namespace: str | None = None, session: requests.Session | None = None,
                 ui_host: str | None = None, retry: RetryPolicy = RetryPolicy()) -> None:
        self.host = normalise_host(host)
        self.ui_host = normalise_host(ui_host) if ui_host else self.host
        self.namespace = namespace
        http = JsonHttp(self.host, (lambda: session) if session is not None else lambda: default_session(self.host),
                        retry)
        factory = client_factory or (lambda: kfp.Client(host=self.host, namespace=namespace or "kubeflow"))
        self._v2 = V2Api(http, factory, namespace=namespace)
        self._v1 = V1Api(http, namespace=namespace)

    def submit_run(self, request: RunRequest) -> RunSubmission:
        """Create the run (or find the one a previous delivery created); RUNNING with its link."""
        run = request.run
        try:
            package_format = _package_format(request.package, run.pipeline)
            api = self._api_for(package_format, run.pipeline)
            experiment = experiment_for(run, request.options)
            name = run_name(run.pipeline, run.id)
            experiment_id = api.experiment_id(experiment)
            remote = api.find_run(name, experiment_id)
            if remote is None:
                remote = api.create_run(RunSpec(
                    name=name, description=_description(request), experiment_id=experiment_id,
                    package_path=request.package.package_path,
                    parameters=_parameters(request, package_format),
                    enable_caching=request.options.enable_caching,
                    service_account=request.options.service_account,
                    pipeline_root=request.options.pipeline_root))
                log.info("run %s (%s) created on %s as %s in experiment '%s'", run.id, run.pipeline, self.host,
                         remote.id, experiment)
            else:
                log.info("run %s (%s) was already created on %s as %s", run.id, run.pipeline, self.host, remote.id)
        except KfpEndpointUnavailable:
            raise
        except KfpBotError as exc:
            return RunSubmission(RunState.FAILED, detail=str(exc))
        return self._submission(remote, f"KFP run '{remote.name}' in experiment '{experiment}'")

    def run_status(self, run: Run) -> RunSubmission | None:
        """Where the run is on the endpoint; None when the endpoint has no run of that name."""
        remote = self._find(run)
        if remote is None:
            return None
        return self._submission(remote, f"KFP run '{remote.name}'")

    def run_results(self, run: Run) -> CollectedResults | None:
        """Not read from KFP endpoints: their run details do not carry the tasks' artifacts (the
        v2beta1 API leaves `task_details[].outputs` empty, kubeflow/pipelines#9858), so the run's
        results say that this backend reports none."""
        return None

    def cancel_run(self, run: Run) -> None:
        """Terminate the run if it is still going on the endpoint; a no-op otherwise.

        A run still queued, building or compiling was never submitted, so the endpoint is not asked.
        """
        if run.state in _NOT_SUBMITTED:
            return
        remote = self._find(run)
        if remote is None or remote.state.terminal:
            return
        api = self._v2 if remote.api is ApiVersion.V2BETA1 else self._v1
        try:
            api.terminate_run(remote.id)
        except KfpEndpointUnavailable:
            raise
        except KfpBotError as exc:
            # Most often the run finished between the look-up and the request.
            log.warning("run %s (%s): the KFP endpoint did not terminate %s: %s", run.id, run.pipeline,
                        remote.id, exc)
            return
        log.info("run %s (%s): terminated %s on %s", run.id, run.pipeline, remote.id, self.host)

    def run_url(self, kfp_run_id: str) -> str:
        """The run's page in the Kubeflow Pipelines UI."""
        return f"{self.ui_host}/#/runs/details/{kfp_run_id}"

    def _api_for(self, package_format: PackageFormat, pipeline: str) -> KfpApi:
        if _API_OF[package_format] is ApiVersion.V1BETA1:
            return self._v1
        if not self._v2.served():
            raise RunError(f"{self.host} serves only the Kubeflow Pipelines v1 API (Kubeflow Pipelines 1.x, such as "
                           f"AI Platform Pipelines), which cannot run the kfp 2 package of '{pipeline}'",
                           hint="compile the pipeline with the kfp 1.8 SDK's v1 compiler, or run it on a "
                                "Kubeflow Pipelines 2 endpoint or Vertex AI")
        return self._v2

    def _find(self, run: Run) -> RemoteRun | None:
        name = run_name(run.pipeline, run.id)
        apis: list[KfpApi] = [self._v2] if self._v2.served() else []
        apis.append(self._v1)
        for api in apis:
            remote = api.find_run(name)
            if remote is not None:
                return remote
        return None

    def _submission(self, remote: RemoteRun, running: str) -> RunSubmission:
        detail = remote.detail if remote.state.terminal else running
        return RunSubmission(remote.state, url=self.run_url(remote.id), detail=detail)


def _package_format(package: CompiledPackage, pipeline: str) -> PackageFormat:
    """The package's format: known by a `CompiledPipeline`, read from the file for any other package."""
    known = getattr(package, "format", None)
    if isinstance(known, PackageFormat):
        return known
    return load_package(package.package_path, pipeline).format


def _parameters(request: RunRequest, package_format: PackageFormat) -> dict[str, object]:
    """The run's parameters; a kfp 1.8 job JSON's defaults live outside its spec, so they are sent too."""
    parameters = dict(request.parameters)
    if package_format is PackageFormat.JOB_JSON:
        for declared in request.package.inputs:
            if declared.default is not None:
                parameters.setdefault(declared.name, declared.default)
    return parameters


def _description(request: RunRequest) -> str:
    """What the KFP UI shows about the run: where it comes from, and the bot's labels."""
    run = request.run
    where = f"{run.repo}@{run.sha[:12]}" + (f" (PR #{run.pr})" if run.pr is not None else "")
    labels = ", ".join(f"{k}={v}" for k, v in sorted(request.labels.items()))
    return f"kfp-bot {run.trigger.value} run {run.id} of {where}" + (f"; labels: {labels}" if labels else "")
