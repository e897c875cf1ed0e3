"""The Vertex AI runner, through the real `PipelineServiceClient` over gRPC to the fake Vertex AI.

The pipelines are compiled by kfp 2 (or written by kfp 1.8's compilers, verbatim) and read with
`load_package`, as the handlers hand them over; the tests assert on what Vertex AI received
(CreatePipelineJob requests) and on what a user sees (run states, details, console links).
"""

# No `from __future__ import annotations`: kfp reads the components' annotations as types.
import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from google.auth.credentials import AnonymousCredentials
from google.cloud import aiplatform_v1
from google.protobuf import json_format
from kfp import compiler, dsl

from bot.pubsub.push import is_transient
from deploy.compiler import CompiledPipeline, load_package
from deploy.errors import RunError
from deploy.runners.vertex import DEFAULT_RETRY, VertexRunner, VertexUnavailable, make_pipeline_client
from deploy.runners.vertex_events import log_sink_filter
from deploy.runners.vertex_job import JOB_ID_RULE, job_id_for, run_id_of, vertex_labels
from handlers.models import RunStatus
from handlers.ports.run import RunRequest
from handlers.run_models import Run, RunState, Trigger, run_id_for
from handlers.runs import labels_for
from kfp_bot_errors import KfpBotError
from pipeline_registry.settings import RunOptions
from tests.deploy.test_package import KFP18_ARGO_YAML, KFP18_JOB_JSON
from tests.fakes.vertex import FakeVertexPipelines
from tests.fakes.vertex_rules import LABEL_KEY_RULE, LABEL_VALUE_RULE

PipelineState = aiplatform_v1.PipelineState
PROJECT = "ml-project"
REGION = "europe-west4"
ROOT = "gs://ml-bucket/pipeline-root"
BOT_ACCOUNT = "pipelines@ml-project.iam.gserviceaccount.com"
SHA = "4f1d2c3b4a5968778695a4b3c2d1e0f9a8b7c6d5"
TRAIN_IMAGE = "europe-docker.pkg.dev/ml-project/images/demo-pipeline-train:sha-4f1d2c3"
FAST_RETRY = DEFAULT_RETRY.with_delay(initial=0.01, maximum=0.02).with_timeout(0.5)


@dsl.container_component
def train(epochs: int, lr: float, model: dsl.OutputPath(str)):
    return dsl.ContainerSpec(image=TRAIN_IMAGE, command=["python", "main.py"],
                             args=["--epochs", epochs, "--lr", lr, "--model", model])


@dsl.component(base_image="python:3.11-slim")
def summarize(model: str, tags: list, extra: dict, dry: bool, label: str) -> str:
    return f"{label}: {model}"


@dsl.pipeline(name="demo-pipeline")
def demo(run_label: str, epochs: int = 3, learning_rate: float = 0.01, dry_run: bool = False,
         tags: list = ["nightly"], extra: dict = {"owner": "ml"}):  # noqa: B006 (kfp reads the defaults)
    trained = train(epochs=epochs, lr=learning_rate)
    summarize(model=trained.outputs["model"], tags=tags, extra=extra, dry=dry_run, label=run_label)


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> CompiledPipeline:
    """demo-pipeline compiled by kfp 2: a container component and a lightweight one."""
    path = tmp_path_factory.mktemp("compiled") / "demo-pipeline.yaml"
    compiler.Compiler().compile(demo, str(path))
    return load_package(path, "demo-pipeline")


@pytest.fixture
def fake() -> Iterator[FakeVertexPipelines]:
    with FakeVertexPipelines(project_number=987654321) as server:
        yield server


@pytest.fixture
def client(fake: FakeVertexPipelines) -> Iterator[aiplatform_v1.PipelineServiceClient]:
    built = make_pipeline_client(REGION, fake.endpoint)
    yield built
    built.transport.close()


@pytest.fixture
def runner(client: aiplatform_v1.PipelineServiceClient) -> VertexRunner:
    return VertexRunner(client, PROJECT, REGION, pipeline_root=ROOT, service_account=BOT_ACCOUNT, retry=FAST_RETRY)


def make_run(key: str = "a", *, pipeline: str = "demo-pipeline", repo: str = "Octo-Org/Mono.Repo",
             pr: int | None = 7) -> Run:
    now = datetime.now(UTC)
    return Run(id=run_id_for(repo, pr, SHA, pipeline, key), repo=repo, pr=pr, sha=SHA, base_sha=None,
               pipeline=pipeline, trigger=Trigger.AUTORUN, state=RunState.RUNNING, created_at=now, updated_at=now)


def request(run: Run, package: Any, parameters: dict[str, Any] | None = None, **options: Any) -> RunRequest:
    return RunRequest(run=run, package=package, parameters={"run_label": "pr-7"} if parameters is None else parameters,
                      options=RunOptions(**options), labels=labels_for(run))


def created(fake: FakeVertexPipelines, index: int = -1) -> aiplatform_v1.CreatePipelineJobRequest:
    return fake.requests("CreatePipelineJob")[index]


def spec_of(create: aiplatform_v1.CreatePipelineJobRequest) -> dict[str, Any]:
    return json_format.MessageToDict(aiplatform_v1.PipelineJob.pb(create.pipeline_job).pipeline_spec)


def tasks_of(spec: dict[str, Any]) -> list[dict[str, Any]]:
    dags = [spec["root"], *spec.get("components", {}).values()]
    return [task for dag in dags for task in (dag.get("dag") or {}).get("tasks", {}).values()]


def url(job_id: str, region: str = REGION) -> str:
    return f"https://console.cloud.google.com/vertex-ai/locations/{region}/pipelines/runs/{job_id}?project={PROJECT}"


# submitting ---------------------------------------------------------------------------------


def test_submit_creates_one_job_named_after_the_run_with_the_compiled_spec(
        fake: FakeVertexPipelines, runner: VertexRunner, package: CompiledPipeline) -> None:
    run = make_run()

    submission = runner.submit_run(request(run, package))

    sent = created(fake)
    job_id = sent.pipeline_job_id
    assert submission.state is RunState.RUNNING and submission.url == url(job_id)
    assert sent.parent == f"projects/{PROJECT}/locations/{REGION}"
    assert JOB_ID_RULE.fullmatch(job_id) and job_id == f"kfp-bot-demo-pipeline-{run.id}"
    assert run_id_of(job_id) == run.id
    spec = spec_of(sent)
    images = {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()}
    assert images == {TRAIN_IMAGE, "python:3.11-slim"} == set(package.images)
    assert spec["pipelineInfo"]["name"] == "demo-pipeline" and "pipelineSpec" not in spec
    assert sent.pipeline_job.display_name == f"demo-pipeline · Octo-Org/Mono.Repo#7 @ {SHA[:7]}"
    assert [j.name.rsplit("/", 1)[1] for j in fake.jobs] == [job_id]


def test_parameters_are_sent_with_their_types_and_defaults_left_to_the_pipeline(
        fake: FakeVertexPipelines, runner: VertexRunner, package: CompiledPipeline) -> None:
    parameters = {"run_label": "pr-7", "epochs": 5, "learning_rate": 0.5, "dry_run": True,
                  "tags": ["a", "b"], "extra": {"owner": "ml", "limits": {"gpus": 1}}}

    runner.submit_run(request(make_run(), package, parameters))

    values = aiplatform_v1.PipelineJob.pb(created(fake).pipeline_job).runtime_config.parameter_values
    assert {name: value.WhichOneof("kind") for name, value in values.items()} == {
        "run_label": "string_value", "epochs": "number_value", "learning_rate": "number_value",
        "dry_run": "bool_value", "tags": "list_value", "extra": "struct_value"}
    assert {name: json_format.MessageToDict(value) for name, value in values.items()} == parameters
    runner.submit_run(request(make_run("b"), package, {"run_label": "only"}))
    assert dict(created(fake).pipeline_job.runtime_config.parameter_values) == {"run_label": "only"}
    assert len(fake.jobs) == 2  # Vertex AI accepted both


def test_labels_identify_repository_pr_commit_pipeline_trigger_and_run_within_vertex_rules(
        fake: FakeVertexPipelines, runner: VertexRunner, package: CompiledPipeline) -> None:
    run = make_run()

    runner.submit_run(request(run, package))

    labels = dict(created(fake).pipeline_job.labels)
    assert labels == {"kfp-bot-repo": "octo-org-mono-repo", "kfp-bot-pr": "7", "kfp-bot-commit": SHA,
                      "kfp-bot-pipeline": "demo-pipeline", "kfp-bot-trigger": "autorun", "kfp-bot-run": run.id}
    assert all(LABEL_KEY_RULE.fullmatch(k) and LABEL_VALUE_RULE.fullmatch(v) for k, v in labels.items())


def test_label_sanitising_keeps_long_values_apart_and_drops_what_cannot_be_a_label() -> None:
    long_a, long_b = "octo/" + "a" * 80, "octo/" + "a" * 79 + "b"
    given = {"Repo": long_a, "other": long_b, "7-days": "x", "vertex-ai-pipelines-run-billing-id": "1",
             "Team Name": "ML Platform (EU)", "!!!": "gone"}

    labels = vertex_labels(given, "run-0123456789abcdef")

    assert labels["repo"] != labels["other"] and len(labels["repo"]) == len(labels["other"]) == 63
    assert labels["repo"].startswith("octo-aaaa")
    assert labels["k-7-days"] == "x" and labels["team-name"] == "ml-platform-eu"
    assert "vertex-ai-pipelines-run-billing-id" not in labels and len(labels) == 5
    assert all(LABEL_KEY_RULE.fullmatch(k) and LABEL_VALUE_RULE.fullmatch(v) for k, v in labels.items())
    many = vertex_labels({f"l{i:03}": "v" for i in range(100)}, "run-0123456789abcdef")
    assert len(many) == 64 and many["kfp-bot-run"] == "run-0123456789abcdef"


def test_service_account_and_pipeline_root_come_from_settings_yaml_or_the_bot(
        fake: FakeVertexPipelines, runner: VertexRunner, package: CompiledPipeline) -> None:
    runner.submit_run(request(make_run("a"), package))
    runner.submit_run(request(make_run("b"), package, service_account="trainer@ml-project.iam.gserviceaccount.com",
                              pipeline_root="gs://team-bucket/root"))

    first, second = (r.pipeline_job for r in fake.requests("CreatePipelineJob"))
    assert (first.service_account, first.runtime_config.gcs_output_directory) == (BOT_ACCOUNT, ROOT)
    assert (second.service_account, second.runtime_config.gcs_output_directory) == (
        "trainer@ml-project.iam.gserviceaccount.com", "gs://team-bucket/root")


@pytest.mark.parametrize("caching", [False, True])
def test_caching_from_settings_yaml_is_set_on_every_task(
        fake: FakeVertexPipelines, runner: VertexRunner, package: CompiledPipeline, caching: bool) -> None:
    runner.submit_run(request(make_run(), package, enable_caching=caching))

    tasks = tasks_of(spec_of(created(fake)))
    assert len(tasks) == 2 and all(t["cachingOptions"] == {"enableCache": caching} for t in tasks)


def test_without_a_caching_setting_the_compiled_spec_is_sent_unchanged(
        fake: FakeVertexPipelines, runner: VertexRunner, package: CompiledPipeline) -> None:
    runner.submit_run(request(make_run(), package))

    compiled = yaml.safe_load(package.package_path.read_text())
    assert spec_of(created(fake)) == json.loads(json.dumps(compiled))


def test_a_redelivered_submission_creates_no_second_job(
        fake: FakeVertexPipelines, runner: VertexRunner, package: CompiledPipeline) -> None:
    run = make_run()
    first = runner.submit_run(request(run, package))

    again = runner.submit_run(request(run, package))

    assert len(fake.jobs) == 1
    assert [c.code for c in fake.calls if c.method == "CreatePipelineJob"] == [
        grpc.StatusCode.OK, grpc.StatusCode.ALREADY_EXISTS]
    assert again.state is RunState.RUNNING and again.url == first.url and "already submitted" in again.detail
    fake.set_state(job_id_for(run), "PIPELINE_STATE_SUCCEEDED")
    assert runner.submit_run(request(run, package)).state is RunState.SUCCEEDED
    assert len(fake.jobs) == 1


def test_an_unavailable_vertex_is_retried_and_a_lost_answer_finds_the_created_job(
        fake: FakeVertexPipelines, runner: VertexRunner, package: CompiledPipeline) -> None:
    fake.fail("CreatePipelineJob", grpc.StatusCode.UNAVAILABLE)
    assert runner.submit_run(request(make_run("a"), package)).state is RunState.RUNNING

    fake.fail("CreatePipelineJob", grpc.StatusCode.DEADLINE_EXCEEDED, after_processing=True)
    assert runner.submit_run(request(make_run("b"), package)).state is RunState.RUNNING

    assert len(fake.jobs) == 2
    assert [c.code.name for c in fake.calls if c.method == "CreatePipelineJob"] == [
        "UNAVAILABLE", "OK", "DEADLINE_EXCEEDED", "ALREADY_EXISTS"]


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED])
def test_vertex_down_after_retries_raises_a_transient_error_so_pubsub_redelivers(
        fake: FakeVertexPipelines, runner: VertexRunner, package: CompiledPipeline, code: grpc.StatusCode) -> None:
    fake.fail("CreatePipelineJob", code, times=None)

    with pytest.raises(VertexUnavailable) as raised:
        runner.submit_run(request(make_run(), package))

    assert isinstance(raised.value, KfpBotError) and is_transient(raised.value)
    assert f"in project {PROJECT} ({REGION})" in str(raised.value) and "even after retrying" in str(raised.value)
    assert len(fake.requests("CreatePipelineJob")) > 1 and fake.jobs == []


def test_permission_denied_fails_the_run_saying_what_to_grant(
        fake: FakeVertexPipelines, runner: VertexRunner, package: CompiledPipeline) -> None:
    fake.fail("CreatePipelineJob", grpc.StatusCode.PERMISSION_DENIED)

    submission = runner.submit_run(request(make_run(), package))

    assert submission.state is RunState.FAILED and "permission denied" in submission.detail
    assert "aiplatform.pipelineJobs.create" in submission.detail  # Vertex AI's own message
    assert f"roles/aiplatform.user on project {PROJECT}" in submission.detail
    assert f"jobs run as {BOT_ACCOUNT}, so the bot also needs roles/iam.serviceAccountUser" in submission.detail
    assert len(fake.requests("CreatePipelineJob")) == 1  # refusals are not retried


def test_an_invalid_job_fails_the_run_with_vertex_ais_reason(
        fake: FakeVertexPipelines, runner: VertexRunner, package: CompiledPipeline) -> None:
    submission = runner.submit_run(request(make_run(), package, service_account="trainer"))

    assert submission.state is RunState.FAILED
    assert 'Invalid service account "trainer": it must be an email address' in submission.detail
    assert "settings.yaml" in submission.detail and fake.jobs == []


def test_a_failed_precondition_fails_the_run_with_what_to_check(
        fake: FakeVertexPipelines, runner: VertexRunner, package: CompiledPipeline) -> None:
    fake.fail("CreatePipelineJob", grpc.StatusCode.FAILED_PRECONDITION,
              message="Vertex AI API has not been used in project ml-project before or it is disabled.")

    submission = runner.submit_run(request(make_run(), package))

    assert submission.state is RunState.FAILED
    assert "has not been used in project ml-project before or it is disabled" in submission.detail
    assert "Vertex AI API is enabled" in submission.detail


def test_a_job_id_taken_by_another_job_is_never_reported_as_this_run(
        fake: FakeVertexPipelines, runner: VertexRunner, client: aiplatform_v1.PipelineServiceClient,
        package: CompiledPipeline) -> None:
    run = make_run()
    runner.submit_run(request(make_run("other"), package))
    squatter = fake.job(job_id_for(make_run("other")))
    squatter.labels = {"owner": "someone"}
    client.create_pipeline_job(parent=f"projects/{PROJECT}/locations/{REGION}", pipeline_job=squatter,
                               pipeline_job_id=job_id_for(run))

    submission = runner.submit_run(request(run, package))

    assert submission.state is RunState.FAILED
    assert f"job id {job_id_for(run)} of run {run.id} is already used by another pipeline job" in submission.detail
    assert len(fake.jobs) == 2


def test_a_pipeline_root_that_is_not_cloud_storage_fails_before_asking_vertex(
        fake: FakeVertexPipelines, client: aiplatform_v1.PipelineServiceClient, package: CompiledPipeline) -> None:
    runner = VertexRunner(client, PROJECT, REGION, pipeline_root="/tmp/root")

    from_bot = runner.submit_run(request(make_run("a"), package))
    from_settings = runner.submit_run(request(make_run("b"), package, pipeline_root="s3://bucket/root"))

    assert from_bot.state is RunState.FAILED and "got '/tmp/root' (KFP_BOT_PIPELINE_ROOT)" in from_bot.detail
    assert "got 's3://bucket/root' (run.pipeline_root in settings.yaml)" in from_settings.detail
    assert fake.calls == []


def test_a_kfp_1_8_job_json_submits_its_pipeline_spec_with_typed_schema_2_0_0_parameters(
        fake: FakeVertexPipelines, runner: VertexRunner, tmp_path: Path) -> None:
    path = tmp_path / "demo.json"
    path.write_text(KFP18_JOB_JSON)
    package = load_package(path, "demo")

    submission = runner.submit_run(request(make_run(pipeline="demo"), package, {"epochs": 5, "flag": False}))

    sent = created(fake)
    assert submission.state is RunState.RUNNING and len(fake.jobs) == 1
    assert spec_of(sent) == json.loads(KFP18_JOB_JSON)["pipelineSpec"]
    config = aiplatform_v1.PipelineJob.pb(sent.pipeline_job).runtime_config
    assert config.gcs_output_directory == ROOT and not config.parameter_values
    assert {name: json_format.MessageToDict(value) for name, value in config.parameters.items()} == {
        "epochs": {"intValue": "5"}, "lr": {"doubleValue": 0.1}, "name": {"stringValue": "a"},
        "flag": {"stringValue": "false"}}


def test_an_argo_workflow_from_kfp_v1_fails_with_how_to_run_it(
        fake: FakeVertexPipelines, runner: VertexRunner, tmp_path: Path) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text(KFP18_ARGO_YAML)

    submission = runner.submit_run(request(make_run(pipeline="demo"), load_package(path, "demo"), {}))

    assert submission.state is RunState.FAILED
    assert "compiled by the kfp v1 SDK to an Argo workflow (demo.yaml), which Vertex AI cannot run" in submission.detail
    assert "run: {target: kfp}" in submission.detail and fake.calls == []


# cancelling and status ------------------------------------------------------------------------


def test_cancel_asks_vertex_to_cancel_the_runs_job_and_ignores_finished_or_unknown_ones(
        fake: FakeVertexPipelines, runner: VertexRunner, package: CompiledPipeline) -> None:
    run = make_run()
    runner.submit_run(request(run, package))

    runner.cancel_run(run)
    assert fake.requests("CancelPipelineJob")[0].name == \
        f"projects/{PROJECT}/locations/{REGION}/pipelineJobs/{job_id_for(run)}"
    assert fake.job(job_id_for(run)).state == PipelineState.PIPELINE_STATE_CANCELLING
    assert runner.run_status(run).state is RunState.RUNNING  # cancelling may still end otherwise

    fake.set_state(job_id_for(run), "PIPELINE_STATE_CANCELLED")
    runner.cancel_run(run)
    runner.cancel_run(make_run("never-submitted"))
    assert [c.code.name for c in fake.calls if c.method == "CancelPipelineJob"] == [
        "OK", "FAILED_PRECONDITION", "NOT_FOUND"]
    assert runner.run_status(run).state is RunState.CANCELLED


def test_cancel_raises_when_vertex_cannot_be_asked(fake: FakeVertexPipelines, runner: VertexRunner) -> None:
    fake.fail("CancelPipelineJob", grpc.StatusCode.UNAVAILABLE, times=None)
    with pytest.raises(VertexUnavailable, match="cancel the pipeline job"):
        runner.cancel_run(make_run())

    fake.clear_faults()
    fake.fail("CancelPipelineJob", grpc.StatusCode.PERMISSION_DENIED)
    with pytest.raises(RunError, match="roles/aiplatform.user") as raised:
        runner.cancel_run(make_run())
    assert not isinstance(raised.value, VertexUnavailable)


@pytest.mark.parametrize(("state", "expected"), [
    ("PIPELINE_STATE_QUEUED", RunState.RUNNING), ("PIPELINE_STATE_PENDING", RunState.RUNNING),
    ("PIPELINE_STATE_RUNNING", RunState.RUNNING), ("PIPELINE_STATE_CANCELLING", RunState.RUNNING),
    ("PIPELINE_STATE_PAUSED", RunState.RUNNING), ("PIPELINE_STATE_SUCCEEDED", RunState.SUCCEEDED),
    ("PIPELINE_STATE_FAILED", RunState.FAILED), ("PIPELINE_STATE_CANCELLED", RunState.CANCELLED),
])
def test_run_status_maps_the_jobs_state(fake: FakeVertexPipelines, runner: VertexRunner,
                                        package: CompiledPipeline, state: str, expected: RunState) -> None:
    run = make_run()
    runner.submit_run(request(run, package))
    fake.set_state(job_id_for(run), state)

    status = runner.run_status(run)

    assert status is not None and status.state is expected and status.url == url(job_id_for(run))


def test_run_status_of_a_failed_job_carries_its_error_and_of_an_unknown_run_is_none(
        fake: FakeVertexPipelines, runner: VertexRunner, package: CompiledPipeline) -> None:
    run = make_run()
    runner.submit_run(request(run, package))
    fake.set_state(job_id_for(run), "PIPELINE_STATE_FAILED", error="The DAG failed because some tasks failed.")

    status = runner.run_status(run)

    assert status is not None and status.state is RunState.FAILED
    assert status.detail == "the pipeline failed on Vertex AI: The DAG failed because some tasks failed."
    assert runner.run_status(make_run("unknown")) is None


def test_run_status_raises_when_vertex_refuses_or_is_down(fake: FakeVertexPipelines, runner: VertexRunner) -> None:
    fake.fail("GetPipelineJob", grpc.StatusCode.PERMISSION_DENIED)
    with pytest.raises(RunError, match="permission denied"):
        runner.run_status(make_run())
    fake.fail("GetPipelineJob", grpc.StatusCode.UNAVAILABLE, times=None)
    with pytest.raises(VertexUnavailable):
        runner.run_status(make_run())


# pipeline state events --------------------------------------------------------------------------


def test_a_succeeded_event_becomes_the_runs_status(fake: FakeVertexPipelines, runner: VertexRunner,
                                                    package: CompiledPipeline) -> None:
    run = make_run()
    runner.submit_run(request(run, package))
    message = fake.set_state(job_id_for(run), "PIPELINE_STATE_SUCCEEDED")

    event = runner.decode_notification(message.attributes, message.data)

    assert event == RunStatus(run_id=run.id, state=RunState.SUCCEEDED, detail="the pipeline succeeded on Vertex AI",
                              url=url(job_id_for(run)))


def test_a_failed_event_carries_the_jobs_error(fake: FakeVertexPipelines, runner: VertexRunner,
                                               package: CompiledPipeline) -> None:
    run = make_run()
    runner.submit_run(request(run, package))
    message = fake.set_state(job_id_for(run), "PIPELINE_STATE_FAILED", error="task train failed: exit code 1")

    event = runner.decode_notification(message.attributes, message.data)

    assert isinstance(event, RunStatus) and event.run_id == run.id and event.state is RunState.FAILED
    assert event.detail == "the pipeline failed on Vertex AI: task train failed: exit code 1"
    entry = json.loads(message.data)
    entry["jsonPayload"]["error"] = {"code": 9, "message": "said in the event"}
    calls = len(fake.calls)
    carried = runner.decode_notification(message.attributes, json.dumps(entry).encode())
    assert carried.detail.endswith("said in the event") and len(fake.calls) == calls  # no look-up needed


def test_a_running_event_is_a_harmless_running_status(fake: FakeVertexPipelines, runner: VertexRunner,
                                                      package: CompiledPipeline) -> None:
    run = make_run()
    runner.submit_run(request(run, package))
    message = fake.set_state(job_id_for(run), "PIPELINE_STATE_RUNNING")

    assert runner.decode_notification(message.attributes, message.data) == RunStatus(
        run_id=run.id, state=RunState.RUNNING, detail="running on Vertex AI", url=url(job_id_for(run)))


def event_entry(**changes: Any) -> dict[str, Any]:
    entry = {
        "insertId": "abc",
        "logName": f"projects/{PROJECT}/logs/aiplatform.googleapis.com%2Fpipeline_job_events",
        "resource": {"type": "aiplatform.googleapis.com/PipelineJob",
                     "labels": {"pipeline_job_id": job_id_for(make_run()), "location": REGION}},
        "jsonPayload": {"@type": "type.googleapis.com/google.cloud.aiplatform.logging.PipelineJobLogEntry",
                        "state": "PIPELINE_STATE_SUCCEEDED"},
    }
    entry.update(changes)
    return entry


def test_events_are_read_defensively(runner: VertexRunner) -> None:
    def decode(entry: dict[str, Any]) -> Any:
        return runner.decode_notification({}, json.dumps(entry).encode())

    job_id = job_id_for(make_run())
    name = f"projects/1/locations/us-east1/pipelineJobs/{job_id}"
    by_name = event_entry(resource={"type": "aiplatform.googleapis.com/PipelineJob"},
                          jsonPayload={"state": 7, "pipelineJob": name})
    assert decode(by_name).state is RunState.CANCELLED
    short_state = event_entry(jsonPayload={"state": "succeeded"}, logName=None)
    assert decode(short_state).state is RunState.SUCCEEDED
    elsewhere = event_entry(resource={"type": "aiplatform.googleapis.com/PipelineJob",
                                      "labels": {"pipeline_job_id": job_id, "location": "us-east1"}})
    assert decode(elsewhere).url == url(job_id, "us-east1")


@pytest.mark.parametrize(("attributes", "data"), [
    ({}, b"not json"),
    ({}, b"[1, 2]"),
    ({"buildId": "b-1", "status": "SUCCESS"}, json.dumps({"id": "b-1", "status": "SUCCESS"}).encode()),
    ({}, json.dumps(event_entry(
        logName=f"projects/{PROJECT}/logs/aiplatform.googleapis.com%2Fpipeline_job_task_events")).encode()),
    ({}, json.dumps(event_entry(resource={"type": "aiplatform.googleapis.com/PipelineJob",
                                          "labels": {"pipeline_job_id": "training-20240101120000"}})).encode()),
    ({}, json.dumps(event_entry(jsonPayload={"state": "PIPELINE_STATE_UNSPECIFIED"})).encode()),
])
def test_messages_that_are_not_events_of_kfp_bot_runs_are_none(runner: VertexRunner, attributes: dict[str, str],
                                                                data: bytes) -> None:
    assert runner.decode_notification(attributes, data) is None


@pytest.mark.parametrize(("entry", "logged"), [
    (event_entry(resource={"type": "aiplatform.googleapis.com/PipelineJob", "labels": {}}), "has no pipeline job id"),
    (event_entry(jsonPayload={"state": "EXPLODED"}), "has no known state ('EXPLODED')"),
    (event_entry(jsonPayload={}), "has no known state (None)"),
])
def test_pipeline_events_of_unknown_shape_are_none_with_a_log_line(
        runner: VertexRunner, caplog: pytest.LogCaptureFixture, entry: dict[str, Any], logged: str) -> None:
    with caplog.at_level("WARNING"):
        assert runner.decode_notification({}, json.dumps(entry).encode()) is None

    assert logged in caplog.text and "reconcile will catch up" in caplog.text


# ids, filter, client --------------------------------------------------------------------------------


def test_job_ids_follow_vertex_rules_and_lead_back_to_their_run() -> None:
    long_name = make_run(pipeline="A_Very/Long.Pipeline " * 10)
    odd_id = dataclasses.replace(make_run(), id="Manual Run #7")

    for run in (make_run(), long_name, odd_id, make_run(pipeline="---")):
        assert JOB_ID_RULE.fullmatch(job_id_for(run)) and len(job_id_for(run)) < 128
    assert run_id_of(job_id_for(long_name)) == long_name.id
    assert job_id_for(make_run(pipeline="---")) == f"kfp-bot-{make_run(pipeline='---').id}"
    assert run_id_of(job_id_for(make_run(pipeline="---"))) == make_run(pipeline="---").id
    assert job_id_for(odd_id) == job_id_for(odd_id) and run_id_of(job_id_for(odd_id)) is None
    assert run_id_of("training-run-0123456789abcdef") is None  # not a kfp-bot job


def test_a_pipeline_with_a_long_name_gets_a_job_vertex_accepts(
        fake: FakeVertexPipelines, runner: VertexRunner, package: CompiledPipeline) -> None:
    run = make_run(pipeline="a-very-long-pipeline-name-" * 6)

    submission = runner.submit_run(request(run, package))

    assert submission.state is RunState.RUNNING, submission.detail
    job_id = created(fake).pipeline_job_id
    assert len(job_id) == 127 and run_id_of(job_id) == run.id
    assert [job.name.rsplit("/", 1)[1] for job in fake.jobs] == [job_id]


def test_an_experiment_on_vertex_is_refused_with_what_to_do_not_ignored(
        fake: FakeVertexPipelines, runner: VertexRunner, package: CompiledPipeline) -> None:
    submission = runner.submit_run(request(make_run(), package, experiment="debug"))

    assert submission.state is RunState.FAILED
    assert "sets run.experiment ('debug')" in submission.detail and "target: kfp" in submission.detail
    assert fake.requests("CreatePipelineJob") == []


def test_the_log_sink_filter_selects_the_pipeline_job_events_log() -> None:
    assert log_sink_filter("ml-project") == \
        'logName="projects/ml-project/logs/aiplatform.googleapis.com%2Fpipeline_job_events"'


def test_the_client_uses_the_regional_endpoint_unless_told_otherwise() -> None:
    regional = make_pipeline_client(REGION, credentials=AnonymousCredentials())
    custom = make_pipeline_client(REGION, "vertex.example.com:443", credentials=AnonymousCredentials())

    assert regional.api_endpoint == f"{REGION}-aiplatform.googleapis.com"
    assert custom.api_endpoint == "vertex.example.com:443"
