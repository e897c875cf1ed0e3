"""The KFP endpoint runner against the fake KFP API server, through the real kfp.Client and requests.

Packages are real: a kfp 2 pipeline compiled here, and the Argo workflow and job JSON that kfp
1.8 writes. Tests assert on what the fake server received and on what the bot would show.
(No `from __future__ import annotations`: kfp reads the component's annotations.)
"""

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kfp import compiler, dsl

from deploy.compiler import CompiledPipeline, load_package
from deploy.runners.kfp_calls import KfpEndpointUnavailable, RetryPolicy
from deploy.runners.kfp_endpoint import KfpEndpointRunner
from handlers.ports.run import RunRequest
from handlers.run_models import Run, RunState, Trigger
from kfp_bot_errors import KfpBotError
from pipeline_registry.settings import RunOptions
from tests.fakes.kfp_api import Api, FakeKfp
from tests.support.ports import refusing_port

FAST = RetryPolicy(attempts=3, initial_delay=0.01, max_delay=0.02, request_timeout=5.0)
SHA = "4f1d2c3b4a5968778695a4b3c2d1e0f9a8b7c6d5"

# The shape kfp 1.8.22's v1 compiler writes (see tests/deploy/test_package.py), cut down.
ARGO_WORKFLOW = """\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: head-pose-pipeline-
  annotations: {pipelines.kubeflow.org/kfp_sdk_version: 1.8.22,
    pipelines.kubeflow.org/pipeline_spec: '{"inputs": [{"default": "3", "name": "epochs", "optional": true,
      "type": "Integer"}, {"default": "0.1", "name": "lr", "optional": true, "type": "Float"}, {"default": "True",
      "name": "flag", "optional": true, "type": "Boolean"}, {"default": "[]", "name": "tags", "optional": true,
      "type": "JsonArray"}], "name": "head-pose-pipeline"}'}
spec:
  entrypoint: head-pose-pipeline
  templates:
  - name: head-pose-pipeline
    dag:
      tasks:
      - name: train
        template: train
        arguments:
          parameters:
          - {name: epochs, value: '{{inputs.parameters.epochs}}'}
  - name: train
    container:
      command: [python, main.py, --epochs, '{{inputs.parameters.epochs}}']
      image: europe-docker.pkg.dev/proj/repo/head-pose-pipeline-training:sha-1234
    inputs:
      parameters:
      - {name: epochs}
    metadata:
      labels: {pipelines.kubeflow.org/enable_caching: "true"}
  arguments:
    parameters:
    - {name: epochs, value: '3'}
    - {name: lr, value: '0.1'}
    - {name: flag, value: 'True'}
    - {name: tags, value: '[]'}
  serviceAccountName: pipeline-runner
"""

# kfp 1.8.22's kfp.v2.compiler job JSON: the parameter defaults live in runtimeConfig.
JOB_JSON = {
    "pipelineSpec": {
        "pipelineInfo": {"name": "demo-v2"},
        "schemaVersion": "2.0.0",
        "sdkVersion": "kfp-1.8.22",
        "components": {"comp-train": {"executorLabel": "exec-train",
                                      "inputDefinitions": {"parameters": {"epochs": {"type": "INT"}}}}},
        "deploymentSpec": {"executors": {"exec-train": {"container": {
            "image": "gcr.io/old/train:latest",
            "command": ["python", "main.py", "--epochs", "{{$.inputs.parameters['epochs']}}"]}}}},
        "root": {
            "dag": {"tasks": {"train": {"componentRef": {"name": "comp-train"}, "taskInfo": {"name": "train"},
                                        "inputs": {"parameters": {"epochs": {"componentInputParameter": "epochs"}}}}}},
            "inputDefinitions": {"parameters": {"epochs": {"type": "INT"}, "name": {"type": "STRING"}}},
        },
    },
    "runtimeConfig": {"parameters": {"epochs": {"intValue": "3"}, "name": {"stringValue": "a"}}},
}


@dsl.component(base_image="python:3.11-slim")
def train(epochs: int, lr: float, tags: list) -> str:
    return f"{epochs}-{lr}-{tags}"


@dsl.component(base_image="python:3.11-slim")
def report(model: str, label: str):
    print(model, label)


@dsl.pipeline(name="head-pose-pipeline")
def head_pose(label: str, epochs: int = 3, lr: float = 0.01, tags: list = ["nightly"]):  # noqa: B006 (kfp reads the default)
    trained = train(epochs=epochs, lr=lr, tags=tags)
    report(model=trained.output, label=label)


@pytest.fixture(scope="module")
def kfp2_package(tmp_path_factory: pytest.TempPathFactory) -> CompiledPipeline:
    path = tmp_path_factory.mktemp("kfp2") / "head-pose-pipeline.yaml"
    compiler.Compiler().compile(head_pose, str(path))
    return load_package(path, "head-pose-pipeline")


@pytest.fixture
def argo_package(tmp_path: Path) -> CompiledPipeline:
    path = tmp_path / "head-pose-pipeline.yaml"
    path.write_text(ARGO_WORKFLOW)
    return load_package(path, "head-pose-pipeline")


@pytest.fixture
def fake() -> Iterator[FakeKfp]:
    with FakeKfp() as server:
        yield server


@pytest.fixture
def runner(fake: FakeKfp) -> KfpEndpointRunner:
    return KfpEndpointRunner(fake.url, retry=FAST)


def make_run(run_id: str = "run-0123456789abcdef", *, trigger: Trigger = Trigger.AUTORUN,
             state: RunState = RunState.RUNNING, pr: int | None = 7) -> Run:
    now = datetime.now(UTC)
    return Run(id=run_id, repo="octo/monorepo", pr=pr, sha=SHA, base_sha=None, pipeline="head-pose-pipeline",
               trigger=trigger, state=state, created_at=now, updated_at=now)


def request(package: CompiledPipeline, parameters: dict | None = None, *, run: Run | None = None,
            options: RunOptions = RunOptions()) -> RunRequest:
    return RunRequest(run=run or make_run(), package=package,
                      parameters={"label": "pr-7", "epochs": 1, "lr": 0.5} if parameters is None else parameters,
                      options=options, labels={"repo": "octo-monorepo", "pipeline": "head-pose-pipeline"})


# -- kfp 2 packages: v2beta1 through kfp.Client --------------------------------------------------

def test_a_pull_request_run_goes_to_the_debug_experiment_with_its_spec_parameters_and_name(
        fake: FakeKfp, runner: KfpEndpointRunner, kfp2_package: CompiledPipeline) -> None:
    submission = runner.submit_run(request(kfp2_package, {"label": "pr-7", "epochs": 1, "lr": 0.5,
                                                          "tags": ["a", "b"]}))

    [created] = fake.created_runs()
    assert created.api is Api.V2BETA1
    assert created.name == "head-pose-pipeline-run-0123456789abcdef"
    assert fake.experiments[created.experiment_id].name == "debug"
    assert created.parameters == {"label": "pr-7", "epochs": 1, "lr": 0.5, "tags": ["a", "b"]}
    spec = created.body["pipeline_spec"]
    assert spec["pipelineInfo"]["name"] == "head-pose-pipeline"
    assert set(spec["root"]["dag"]["tasks"]) == {"train", "report"}
    assert "octo/monorepo@4f1d2c3b4a59 (PR #7)" in created.body["description"]
    assert submission.state is RunState.RUNNING
    assert submission.url == f"{fake.url}/#/runs/details/{created.id}"
    assert "'debug'" in submission.detail


def test_a_redelivered_submission_finds_the_run_instead_of_starting_a_second_one(
        fake: FakeKfp, runner: KfpEndpointRunner, kfp2_package: CompiledPipeline) -> None:
    first = runner.submit_run(request(kfp2_package))
    again = KfpEndpointRunner(fake.url, retry=FAST).submit_run(request(kfp2_package))

    assert len(fake.created_runs()) == 1
    assert len(fake.requests_to("POST", "/apis/v2beta1/runs")) == 1
    assert len([e for e in fake.experiments.values() if e.name == "debug"]) == 1
    assert again.url == first.url and again.state is RunState.RUNNING


def test_a_deploy_run_goes_to_the_pipelines_experiment_and_settings_can_name_another(
        fake: FakeKfp, runner: KfpEndpointRunner, kfp2_package: CompiledPipeline) -> None:
    runner.submit_run(request(kfp2_package, run=make_run("run-00000000000000d1", trigger=Trigger.DEPLOY, pr=None)))
    runner.submit_run(request(kfp2_package, run=make_run("run-00000000000000e1"),
                              options=RunOptions(experiment="head-pose-experiments")))

    experiments = {r.name: fake.experiments[r.experiment_id].name for r in fake.created_runs()}
    assert experiments == {"head-pose-pipeline-run-00000000000000d1": "head-pose-pipeline",
                           "head-pose-pipeline-run-00000000000000e1": "head-pose-experiments"}


def test_run_options_reach_the_run(fake: FakeKfp, runner: KfpEndpointRunner,
                                   kfp2_package: CompiledPipeline) -> None:
    compiled = kfp2_package.package_path.read_text()
    assert "enableCache: true" in compiled

    runner.submit_run(request(kfp2_package, options=RunOptions(enable_caching=False, service_account="ml-runner",
                                                               pipeline_root="gs://bucket/root")))

    [created] = fake.created_runs()
    tasks = created.body["pipeline_spec"]["root"]["dag"]["tasks"]
    assert {name: task["cachingOptions"].get("enableCache", False) for name, task in tasks.items()} == {
        "train": False, "report": False}
    assert created.body["service_account"] == "ml-runner"
    assert created.body["runtime_config"]["pipeline_root"] == "gs://bucket/root"


@pytest.mark.parametrize(("kfp_state", "error", "state", "detail"), [
    ("PENDING", "", RunState.RUNNING, "KFP run 'head-pose-pipeline-run-0123456789abcdef'"),
    ("RUNNING", "", RunState.RUNNING, "KFP run 'head-pose-pipeline-run-0123456789abcdef'"),
    ("PAUSED", "", RunState.RUNNING, "KFP run 'head-pose-pipeline-run-0123456789abcdef'"),
    ("SUCCEEDED", "", RunState.SUCCEEDED, ""),
    ("FAILED", "task train failed: exit status 1", RunState.FAILED, "task train failed: exit status 1"),
    ("FAILED", "", RunState.FAILED, "the run failed on the KFP endpoint"),
    ("CANCELING", "", RunState.CANCELLED, "terminated on the KFP endpoint"),
    ("CANCELED", "", RunState.CANCELLED, "terminated on the KFP endpoint"),
    ("SKIPPED", "", RunState.SKIPPED, ""),
])
def test_run_status_maps_the_v2_state(fake: FakeKfp, runner: KfpEndpointRunner, kfp2_package: CompiledPipeline,
                                      kfp_state: str, error: str, state: RunState, detail: str) -> None:
    runner.submit_run(request(kfp2_package))
    [created] = fake.created_runs()
    fake.set_run_state(created.id, kfp_state, error=error)

    status = KfpEndpointRunner(fake.url, retry=FAST).run_status(make_run())

    assert status is not None
    assert (status.state, status.detail) == (state, detail)
    assert status.url == f"{fake.url}/#/runs/details/{created.id}"


def test_a_resubmission_after_the_run_finished_reports_its_final_state(
        fake: FakeKfp, runner: KfpEndpointRunner, kfp2_package: CompiledPipeline) -> None:
    runner.submit_run(request(kfp2_package))
    fake.set_run_state(fake.created_runs()[0].id, "FAILED", error="out of memory")

    submission = runner.submit_run(request(kfp2_package))

    assert (submission.state, submission.detail) == (RunState.FAILED, "out of memory")
    assert len(fake.created_runs()) == 1


def test_the_endpoint_knows_nothing_of_a_run_it_never_received(fake: FakeKfp, runner: KfpEndpointRunner,
                                                                kfp2_package: CompiledPipeline) -> None:
    runner.submit_run(request(kfp2_package))

    assert runner.run_status(make_run("run-ffffffffffffffff")) is None


def test_cancel_terminates_a_running_run(fake: FakeKfp, runner: KfpEndpointRunner,
                                         kfp2_package: CompiledPipeline) -> None:
    runner.submit_run(request(kfp2_package))
    [created] = fake.created_runs()
    fake.set_run_state(created.id, "RUNNING")

    KfpEndpointRunner(fake.url, retry=FAST).cancel_run(make_run())

    assert [r.path for r in fake.requests_to("POST", r"/apis/v2beta1/runs/.*:terminate")] == [
        f"/apis/v2beta1/runs/{created.id}:terminate"]
    assert fake.runs[created.id].state == "CANCELING"
    status = runner.run_status(make_run())
    assert status is not None and status.state is RunState.CANCELLED


def test_cancel_leaves_finished_unknown_and_unsubmitted_runs_alone(
        fake: FakeKfp, runner: KfpEndpointRunner, kfp2_package: CompiledPipeline) -> None:
    runner.submit_run(request(kfp2_package))
    fake.set_run_state(fake.created_runs()[0].id, "SUCCEEDED")
    fake.clear_requests()

    runner.cancel_run(make_run())
    runner.cancel_run(make_run("run-ffffffffffffffff"))
    assert fake.requests_to("POST", ".*terminate") == []

    fake.clear_requests()
    runner.cancel_run(make_run("run-eeeeeeeeeeeeeeee", state=RunState.BUILDING))
    assert fake.requests == []


def test_a_job_json_of_kfp_1_8_runs_with_the_defaults_of_its_runtime_config(
        fake: FakeKfp, runner: KfpEndpointRunner, tmp_path: Path) -> None:
    path = tmp_path / "demo-v2.json"
    path.write_text(json.dumps(JOB_JSON))
    package = load_package(path, "head-pose-pipeline")

    submission = runner.submit_run(request(package, {"epochs": 5}))

    [created] = fake.created_runs(Api.V2BETA1)
    assert submission.state is RunState.RUNNING
    assert created.parameters == {"epochs": 5, "name": "a"}
    assert created.body["pipeline_spec"]["pipelineInfo"] == {"name": "demo-v2"}


# -- kfp v1 Argo workflows: v1beta1 ------------------------------------------------------------

def test_an_argo_workflow_runs_through_the_v1beta1_api(fake: FakeKfp, runner: KfpEndpointRunner,
                                                       argo_package: CompiledPipeline) -> None:
    submission = runner.submit_run(request(argo_package, {"epochs": 1, "lr": 0.5, "flag": False,
                                                          "tags": ["a", "b"]}))

    [created] = fake.created_runs()
    assert created.api is Api.V1BETA1 and fake.created_runs(Api.V2BETA1) == []
    assert created.name == "head-pose-pipeline-run-0123456789abcdef"
    assert created.body["pipeline_spec"]["workflow_manifest"] == ARGO_WORKFLOW
    assert created.body["pipeline_spec"]["parameters"] == [
        {"name": "epochs", "value": "1"}, {"name": "lr", "value": "0.5"}, {"name": "flag", "value": "False"},
        {"name": "tags", "value": '["a", "b"]'}]
    assert created.body["resource_references"] == [
        {"key": {"type": "EXPERIMENT", "id": created.experiment_id}, "relationship": "OWNER"}]
    assert fake.experiments[created.experiment_id].name == "debug"
    assert submission.state is RunState.RUNNING
    assert submission.url == f"{fake.url}/#/runs/details/{created.id}"

    runner.submit_run(request(argo_package, {"epochs": 1}))
    assert len(fake.created_runs()) == 1


@pytest.mark.parametrize(("status", "error", "state", "detail"), [
    (None, "", RunState.RUNNING, "KFP run 'head-pose-pipeline-run-0123456789abcdef'"),
    ("Running", "", RunState.RUNNING, "KFP run 'head-pose-pipeline-run-0123456789abcdef'"),
    ("Succeeded", "", RunState.SUCCEEDED, ""),
    ("Failed", "step train: exit code 2", RunState.FAILED, "step train: exit code 2"),
    ("Error", "", RunState.FAILED, "the run ended with status Error on the KFP endpoint"),
    ("Terminating", "", RunState.CANCELLED, "terminated on the KFP endpoint"),
])
def test_run_status_maps_the_v1_status(fake: FakeKfp, runner: KfpEndpointRunner, argo_package: CompiledPipeline,
                                       status: str | None, error: str, state: RunState, detail: str) -> None:
    runner.submit_run(request(argo_package, {"epochs": 1}))
    [created] = fake.created_runs()
    if status is not None:
        fake.set_run_state(created.id, status, error=error)

    found = KfpEndpointRunner(fake.url, retry=FAST).run_status(make_run())

    assert found is not None and (found.state, found.detail) == (state, detail)


def test_cancel_terminates_an_argo_run_through_v1beta1(fake: FakeKfp, runner: KfpEndpointRunner,
                                                       argo_package: CompiledPipeline) -> None:
    runner.submit_run(request(argo_package, {"epochs": 1}))
    [created] = fake.created_runs()

    runner.cancel_run(make_run())

    assert [r.path for r in fake.requests_to("POST", ".*terminate")] == [
        f"/apis/v1beta1/runs/{created.id}/terminate"]
    assert fake.runs[created.id].state == "Terminating"


def test_caching_off_marks_every_step_of_the_workflow(fake: FakeKfp, runner: KfpEndpointRunner,
                                                      argo_package: CompiledPipeline) -> None:
    runner.submit_run(request(argo_package, {"epochs": 1}, options=RunOptions(enable_caching=False)))

    templates = {t["name"]: t for t in fake.created_runs()[0].workflow["spec"]["templates"]}
    assert templates["train"]["metadata"]["annotations"] == {"pipelines.kubeflow.org/max_cache_staleness": "P0D"}
    assert templates["train"]["metadata"]["labels"] == {"pipelines.kubeflow.org/enable_caching": "true"}
    assert "metadata" not in templates["head-pose-pipeline"]


def test_a_kfp_1_cluster_runs_argo_workflows_and_refuses_kfp_2_packages(
        argo_package: CompiledPipeline, kfp2_package: CompiledPipeline) -> None:
    with FakeKfp(apis=(Api.V1BETA1,)) as v1_only:
        runner = KfpEndpointRunner(v1_only.url, retry=FAST)
        refused = runner.submit_run(request(kfp2_package, run=make_run("run-00000000000000a2")))
        accepted = runner.submit_run(request(argo_package, {"epochs": 1}))
        status = KfpEndpointRunner(v1_only.url, retry=FAST).run_status(make_run())

        assert refused.state is RunState.FAILED
        assert "serves only the Kubeflow Pipelines v1 API" in refused.detail
        assert "compile the pipeline with the kfp 1.8 SDK's v1 compiler" in refused.detail
        assert accepted.state is RunState.RUNNING
        assert status is not None and status.url == accepted.url
        assert [r.name for r in v1_only.created_runs()] == ["head-pose-pipeline-run-0123456789abcdef"]


# -- failures ----------------------------------------------------------------------------------

def test_a_parameter_the_pipeline_does_not_declare_fails_the_run_with_the_apis_message(
        fake: FakeKfp, runner: KfpEndpointRunner, kfp2_package: CompiledPipeline,
        argo_package: CompiledPipeline) -> None:
    v2 = runner.submit_run(request(kfp2_package, {"label": "x", "epoch": 2}))
    v1 = runner.submit_run(request(argo_package, {"learning_rate": 2}, run=make_run("run-00000000000000b1")))

    assert v2.state is RunState.FAILED and v1.state is RunState.FAILED
    assert "refused to create run 'head-pose-pipeline-run-0123456789abcdef' (HTTP 400)" in v2.detail
    assert "the pipeline has no input parameter epoch" in v2.detail
    assert "the pipeline has no input parameter learning_rate" in v1.detail
    assert fake.created_runs() == []


def test_a_refusal_carries_the_kfp_error_message(fake: FakeKfp, runner: KfpEndpointRunner,
                                                 kfp2_package: CompiledPipeline) -> None:
    fake.fail_next("POST", "/apis/v2beta1/runs", 400, body={
        "error": "Invalid input error: pipeline spec is invalid", "code": 3,
        "message": "Invalid input error: pipeline spec is invalid", "details": []})

    submission = runner.submit_run(request(kfp2_package))

    assert submission.state is RunState.FAILED
    assert submission.detail.endswith("(HTTP 400): Invalid input error: pipeline spec is invalid")


def test_a_persistent_server_error_raises_a_retryable_error(fake: FakeKfp, runner: KfpEndpointRunner,
                                                             kfp2_package: CompiledPipeline) -> None:
    fake.fail_next("POST", "/apis/v2beta1/runs", 503, times=FAST.attempts)

    with pytest.raises(KfpEndpointUnavailable) as raised:
        runner.submit_run(request(kfp2_package))

    assert isinstance(raised.value, KfpBotError) and isinstance(raised.value, ConnectionError)
    assert "could not create run 'head-pose-pipeline-run-0123456789abcdef': HTTP 503" in str(raised.value)
    assert f"gave up after {FAST.attempts} attempts" in str(raised.value)
    assert len(fake.requests_to("POST", "/apis/v2beta1/runs")) == FAST.attempts
    assert fake.created_runs() == []


def test_a_transient_server_error_is_retried(fake: FakeKfp, runner: KfpEndpointRunner,
                                             kfp2_package: CompiledPipeline, argo_package: CompiledPipeline) -> None:
    fake.fail_next("GET", "/apis/v2beta1/experiments", 502)
    fake.fail_next("POST", "/apis/v1beta1/runs", 500)

    v2 = runner.submit_run(request(kfp2_package))
    v1 = runner.submit_run(request(argo_package, {"epochs": 1}, run=make_run("run-00000000000000c1")))

    assert v2.state is RunState.RUNNING and v1.state is RunState.RUNNING
    assert len(fake.created_runs()) == 2


@pytest.mark.parametrize("api", [Api.V2BETA1, Api.V1BETA1])
def test_a_run_created_before_its_answer_was_lost_is_not_created_twice(
        fake: FakeKfp, runner: KfpEndpointRunner, kfp2_package: CompiledPipeline, argo_package: CompiledPipeline,
        api: Api) -> None:
    fake.lose_next_answer("POST", f"/apis/{api.value}/runs")

    package = kfp2_package if api is Api.V2BETA1 else argo_package
    submission = runner.submit_run(request(package, {"label": "x"} if api is Api.V2BETA1 else {"epochs": 1}))

    [created] = fake.created_runs()
    assert submission.state is RunState.RUNNING and submission.url.endswith(created.id)
    assert len(fake.requests_to("POST", f"/apis/{api.value}/runs")) == 1


def test_an_endpoint_that_does_not_answer_raises_a_retryable_error(kfp2_package: CompiledPipeline,
                                                                    argo_package: CompiledPipeline) -> None:
    with refusing_port() as port:
        runner = KfpEndpointRunner(f"http://127.0.0.1:{port}", retry=FAST)

        for package in (kfp2_package, argo_package):
            with pytest.raises(KfpEndpointUnavailable, match="cannot connect: Connection refused"):
                runner.submit_run(request(package))
        with pytest.raises(KfpEndpointUnavailable):
            runner.run_status(make_run())


def test_an_invalid_workflow_fails_the_run(fake: FakeKfp, runner: KfpEndpointRunner, tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(ARGO_WORKFLOW.replace("apiVersion: argoproj.io/v1alpha1", "apiVersion: example.com/v1"))
    package = load_package(path, "head-pose-pipeline")

    submission = runner.submit_run(request(package, {"epochs": 1}))

    assert submission.state is RunState.FAILED
    assert "Could not unmarshal the workflow manifest" in submission.detail


def test_the_host_gets_a_scheme_and_loses_its_trailing_slash() -> None:
    assert KfpEndpointRunner("127.0.0.1:8888/").host == "http://127.0.0.1:8888"
    assert KfpEndpointRunner("abc-dot-europe-west1.pipelines.googleusercontent.com").host == (
        "https://abc-dot-europe-west1.pipelines.googleusercontent.com")
    assert KfpEndpointRunner("https://kfp.example.com/", ui_host="https://ui.example.com").run_url("r1") == (
        "https://ui.example.com/#/runs/details/r1")


def test_an_expired_token_gets_a_new_client_once_then_a_refusal_fails_the_run(
        fake: FakeKfp, runner: KfpEndpointRunner, kfp2_package: CompiledPipeline) -> None:
    fake.fail_next("POST", "/apis/v2beta1/runs", 401)
    renewed = runner.submit_run(request(kfp2_package))
    built = len(fake.requests_to("GET", "/apis/v2beta1/healthz"))

    fake.fail_next("POST", "/apis/v2beta1/runs", 401, times=2)
    refused = runner.submit_run(request(kfp2_package, run=make_run("run-00000000000000f1")))

    assert renewed.state is RunState.RUNNING
    assert built == 3  # the probe, the first client, the client built after the 401
    assert refused.state is RunState.FAILED and "(HTTP 401): Unauthorized" in refused.detail
    assert [r.name for r in fake.created_runs()] == ["head-pose-pipeline-run-0123456789abcdef"]
