"""The fake Vertex AI Pipelines, driven by the real `PipelineServiceClient` over gRPC.

These pin the parts of Vertex AI's behaviour the runner's tests rely on: ALREADY_EXISTS for a
duplicate job id, the job id, label, pipeline root and parameter checks, cancelling, the
ListPipelineJobs filter and paging, the pipeline state event a log sink delivers, and injected
faults.
"""

# No `from __future__ import annotations`: kfp reads the components' annotations as types.
import json
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
import yaml
from google.api_core import exceptions as api_exceptions
from google.api_core import retry as retries
from google.cloud import aiplatform_v1
from google.protobuf import json_format, struct_pb2
from kfp import compiler, dsl

from deploy.runners.vertex import make_pipeline_client
from tests.fakes.vertex import FakeVertexPipelines

PipelineState = aiplatform_v1.PipelineState
PROJECT = "ml-project"
REGION = "europe-west4"
PARENT = f"projects/{PROJECT}/locations/{REGION}"
NO_RETRY = retries.Retry(predicate=lambda exc: False)


@dsl.component(base_image="python:3.11-slim")
def echo(text: str, times: int) -> str:
    return text * times


@dsl.pipeline(name="fake-check")
def fake_check(text: str, times: int = 2, ratio: float = 0.5, loud: bool = False) -> None:
    echo(text=text, times=times)


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A pipeline spec compiled by kfp 2 (inputs: text, times=2, ratio=0.5, loud=False)."""
    path = tmp_path_factory.mktemp("fake-check") / "fake-check.yaml"
    compiler.Compiler().compile(fake_check, str(path))
    return yaml.safe_load(path.read_text())


@pytest.fixture
def fake() -> Iterator[FakeVertexPipelines]:
    with FakeVertexPipelines(project_number=42) as server:
        yield server


@pytest.fixture
def client(fake: FakeVertexPipelines) -> Iterator[aiplatform_v1.PipelineServiceClient]:
    built = make_pipeline_client(REGION, fake.endpoint)
    yield built
    built.transport.close()


def job(spec: dict[str, Any], *, root: str = "gs://bucket/root", **fields: Any) -> aiplatform_v1.PipelineJob:
    parameters = fields.pop("parameters", {"text": "hi"})
    config = aiplatform_v1.PipelineJob.RuntimeConfig(gcs_output_directory=root)
    for name, value in parameters.items():
        config.parameter_values[name] = json_format.ParseDict(value, struct_pb2.Value())
    return aiplatform_v1.PipelineJob(pipeline_spec=json_format.ParseDict(spec, struct_pb2.Struct()),
                                     runtime_config=config, **fields)


def create(client: aiplatform_v1.PipelineServiceClient, pipeline_job: aiplatform_v1.PipelineJob,
           job_id: str = "job-1") -> aiplatform_v1.PipelineJob:
    return client.create_pipeline_job(parent=PARENT, pipeline_job=pipeline_job, pipeline_job_id=job_id,
                                      retry=NO_RETRY)


def test_create_answers_the_pending_job_and_get_finds_it_by_project_id_or_number(
        fake: FakeVertexPipelines, client: aiplatform_v1.PipelineServiceClient, spec: dict[str, Any]) -> None:
    created = create(client, job(spec, labels={"team": "ml"}, service_account="runner@p.iam.gserviceaccount.com"))

    assert created.name == f"projects/42/locations/{REGION}/pipelineJobs/job-1"
    assert created.state == PipelineState.PIPELINE_STATE_PENDING and created.create_time
    by_id = client.get_pipeline_job(name=f"{PARENT}/pipelineJobs/job-1")
    by_number = client.get_pipeline_job(name=created.name)
    assert by_id == by_number and dict(by_id.labels) == {"team": "ml"}
    assert by_id.service_account == "runner@p.iam.gserviceaccount.com"
    assert [c.method for c in fake.calls] == ["CreatePipelineJob", "GetPipelineJob", "GetPipelineJob"]
    assert fake.requests("CreatePipelineJob")[0].pipeline_job_id == "job-1"


def test_a_duplicate_job_id_is_already_exists_and_creates_nothing(
        fake: FakeVertexPipelines, client: aiplatform_v1.PipelineServiceClient, spec: dict[str, Any]) -> None:
    create(client, job(spec))

    with pytest.raises(api_exceptions.AlreadyExists, match="job-1 already exists"):
        create(client, job(spec, labels={"other": "x"}))
    assert len(fake.jobs) == 1 and not fake.jobs[0].labels


def test_without_a_job_id_vertex_names_the_job_after_the_pipeline(
        client: aiplatform_v1.PipelineServiceClient, spec: dict[str, Any]) -> None:
    created = create(client, job(spec), job_id="")

    assert created.name.rsplit("/", 1)[1].startswith("fake-check-")


@pytest.mark.parametrize(("change", "problem"), [
    ({"job_id": "Run_1"}, 'Invalid pipeline job id "Run_1"'),
    ({"job_id": "1-run"}, 'Invalid pipeline job id "1-run"'),
    ({"job_id": "a" * 129}, "Invalid pipeline job id"),
    ({"job_id": "a" * 128}, "Invalid pipeline job id"),  # "less than 128 characters"
    ({"labels": {"Team": "ml"}}, 'Invalid label key "Team"'),
    ({"labels": {"repo": "octo/monorepo"}}, 'Invalid value "octo/monorepo" of label "repo"'),
    ({"labels": {"sha": "a" * 64}}, "Invalid value"),
    ({"labels": {f"k{i}": "v" for i in range(65)}}, "at most 64 labels"),
    ({"root": ""}, "gcs_output_directory is required"),
    ({"root": "/tmp/root"}, 'Invalid gcs_output_directory "/tmp/root"'),
    ({"service_account": "runner"}, 'Invalid service account "runner"'),
    ({"parameters": {}}, "parameter text is required"),
    ({"parameters": {"text": "hi", "epochs": 3}}, "parameter epochs is not found"),
    ({"parameters": {"text": "hi", "times": "3"}}, "times must be of type NUMBER_INTEGER, got string_value"),
    ({"parameters": {"text": "hi", "times": 2.5}}, "times must be an integer"),
    ({"parameters": {"text": "hi", "loud": "yes"}}, "loud must be of type BOOLEAN"),
    ({"display_name": "x" * 129}, "display_name must be at most 128"),
])
def test_jobs_vertex_would_refuse_are_invalid_argument(
        fake: FakeVertexPipelines, client: aiplatform_v1.PipelineServiceClient, spec: dict[str, Any],
        change: dict[str, Any], problem: str) -> None:
    job_id = change.pop("job_id", "job-1")

    with pytest.raises(api_exceptions.InvalidArgument, match=problem.replace("(", r"\(")):
        create(client, job(spec, **change), job_id)
    assert fake.jobs == [] and fake.calls[0].code == grpc.StatusCode.INVALID_ARGUMENT


def test_a_whole_job_file_as_the_spec_is_refused(client: aiplatform_v1.PipelineServiceClient,
                                                 spec: dict[str, Any]) -> None:
    with pytest.raises(api_exceptions.InvalidArgument, match="holds a whole pipeline job"):
        create(client, job({"pipelineSpec": spec, "runtimeConfig": {}}, parameters={}))


def test_schema_2_0_0_takes_typed_parameters_and_needs_every_one(
        client: aiplatform_v1.PipelineServiceClient) -> None:
    old = {"pipelineInfo": {"name": "old"}, "schemaVersion": "2.0.0", "root": {"dag": {"tasks": {}},
           "inputDefinitions": {"parameters": {"epochs": {"type": "INT"}, "name": {"type": "STRING"}}}}}
    legacy = job(old, parameters={})
    legacy.runtime_config.parameters["epochs"] = aiplatform_v1.Value(int_value=3)

    with pytest.raises(api_exceptions.InvalidArgument, match="parameter name is required"):
        create(client, legacy)
    legacy.runtime_config.parameters["name"] = aiplatform_v1.Value(int_value=1)
    with pytest.raises(api_exceptions.InvalidArgument, match="name must be of type STRING, got int_value"):
        create(client, legacy)
    legacy.runtime_config.parameters["name"] = aiplatform_v1.Value(string_value="a")
    assert create(client, legacy).runtime_config.parameters["epochs"].int_value == 3
    with pytest.raises(api_exceptions.InvalidArgument, match="parameter_values is not supported"):
        create(client, job(old, parameters={"epochs": 3, "name": "a"}), "job-2")


def test_cancel_moves_a_running_job_to_cancelling_and_refuses_finished_or_unknown_ones(
        fake: FakeVertexPipelines, client: aiplatform_v1.PipelineServiceClient, spec: dict[str, Any]) -> None:
    name = create(client, job(spec)).name
    client.cancel_pipeline_job(name=name)
    assert fake.job("job-1").state == PipelineState.PIPELINE_STATE_CANCELLING

    fake.set_state("job-1", "PIPELINE_STATE_CANCELLED")
    with pytest.raises(api_exceptions.FailedPrecondition, match="in state PIPELINE_STATE_CANCELLED"):
        client.cancel_pipeline_job(name=name, retry=NO_RETRY)
    with pytest.raises(api_exceptions.NotFound):
        client.cancel_pipeline_job(name=f"{PARENT}/pipelineJobs/nope", retry=NO_RETRY)
    with pytest.raises(api_exceptions.NotFound):
        client.get_pipeline_job(name=f"projects/other/locations/{REGION}/pipelineJobs/job-1", retry=NO_RETRY)


def test_list_filters_on_labels_state_and_display_name_newest_first_in_pages(
        client: aiplatform_v1.PipelineServiceClient, fake: FakeVertexPipelines, spec: dict[str, Any]) -> None:
    for index in range(3):
        create(client, job(spec, labels={"run": f"r{index}", "team": "ml"}, display_name=f"n{index}"), f"job-{index}")
    fake.set_state("job-1", PipelineState.PIPELINE_STATE_SUCCEEDED)

    def ids(filter_text: str, page_size: int = 0) -> list[str]:
        pager = client.list_pipeline_jobs(request=aiplatform_v1.ListPipelineJobsRequest(
            parent=PARENT, filter=filter_text, page_size=page_size))
        return [j.name.rsplit("/", 1)[1] for j in pager]

    assert ids('labels.team="ml"', page_size=2) == ["job-2", "job-1", "job-0"]
    assert ids('labels.run="r0"') == ["job-0"]
    assert ids('state="PIPELINE_STATE_SUCCEEDED" AND labels.team="ml"') == ["job-1"]
    assert ids('display_name="n2"') == ["job-2"]
    assert len(fake.requests("ListPipelineJobs")) == 2 + 3  # the first listing took two pages


def test_set_state_records_the_error_and_returns_the_log_sinks_pubsub_message(
        fake: FakeVertexPipelines, client: aiplatform_v1.PipelineServiceClient, spec: dict[str, Any]) -> None:
    create(client, job(spec, service_account="runner@p.iam.gserviceaccount.com"))

    message = fake.set_state("job-1", "PIPELINE_STATE_FAILED", error="The DAG failed because some tasks failed.")

    stored = fake.job("job-1")
    assert stored.state == PipelineState.PIPELINE_STATE_FAILED and stored.end_time
    assert stored.error.message == "The DAG failed because some tasks failed."
    entry = json.loads(message.data)
    assert entry["logName"] == f"projects/{PROJECT}/logs/aiplatform.googleapis.com%2Fpipeline_job_events"
    assert entry["resource"] == {"type": "aiplatform.googleapis.com/PipelineJob", "labels": {
        "pipeline_job_id": "job-1", "location": REGION, "resource_container": "projects/42"}}
    assert entry["jsonPayload"]["state"] == "PIPELINE_STATE_FAILED"
    assert entry["jsonPayload"]["pipelineName"] == "fake-check" and entry["severity"] == "ERROR"
    assert entry["labels"]["service_account"] == "runner@p.iam.gserviceaccount.com"
    assert set(message.attributes) == {"logging.googleapis.com/timestamp"}
    assert json.loads(fake.pipeline_event("job-1", "PIPELINE_STATE_RUNNING").data)["jsonPayload"]["state"] \
        == "PIPELINE_STATE_RUNNING"


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                                  grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.ALREADY_EXISTS,
                                  grpc.StatusCode.INVALID_ARGUMENT])
def test_injected_faults_answer_the_code_once_then_serve_again(
        fake: FakeVertexPipelines, client: aiplatform_v1.PipelineServiceClient, spec: dict[str, Any],
        code: grpc.StatusCode) -> None:
    fake.fail("CreatePipelineJob", code)

    with pytest.raises(api_exceptions.GoogleAPICallError) as raised:
        create(client, job(spec))
    assert raised.value.grpc_status_code == code
    assert fake.jobs == []
    create(client, job(spec))
    assert [c.code for c in fake.calls] == [code, grpc.StatusCode.OK]


def test_a_fault_after_processing_loses_the_answer_but_keeps_the_job(
        fake: FakeVertexPipelines, client: aiplatform_v1.PipelineServiceClient, spec: dict[str, Any]) -> None:
    fake.fail("CreatePipelineJob", grpc.StatusCode.UNAVAILABLE, after_processing=True)

    with pytest.raises(api_exceptions.ServiceUnavailable):
        create(client, job(spec))
    assert len(fake.jobs) == 1
    with pytest.raises(api_exceptions.AlreadyExists):
        create(client, job(spec))


def test_permission_denied_names_the_permission(fake: FakeVertexPipelines,
                                                client: aiplatform_v1.PipelineServiceClient) -> None:
    fake.fail("GetPipelineJob", grpc.StatusCode.PERMISSION_DENIED, times=None)

    for _ in range(2):
        with pytest.raises(api_exceptions.PermissionDenied, match="aiplatform.pipelineJobs.get"):
            client.get_pipeline_job(name=f"{PARENT}/pipelineJobs/x", retry=NO_RETRY)

