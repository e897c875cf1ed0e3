"""The fake KFP API server, driven by the real kfp.Client (v2beta1) and by requests (v1beta1).

These pin what the runner's tests rely on: the JSON shapes kfp-server-api reads, filters with
each version's own field names, validation with KFP's wording, run states moved by the test,
terminate, grpc-gateway error bodies, injected faults, and a KFP 1.x server without v2beta1.
(No `from __future__ import annotations`: kfp reads the component's annotations.)
"""

import json
from collections.abc import Iterator
from pathlib import Path

import kfp
import kfp_server_api
import pytest
import requests
from kfp import compiler, dsl

from tests.fakes.kfp_api import Api, FakeKfp

WORKFLOW = """\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: hello-}
spec:
  entrypoint: hello
  templates:
  - name: hello
    container: {image: alpine:3.20, command: [echo, '{{workflow.parameters.message}}']}
  arguments:
    parameters:
    - {name: message, value: hi}
"""


@dsl.component(base_image="python:3.11-slim")
def echo(message: str) -> str:
    return message


@dsl.pipeline(name="hello")
def hello(message: str = "hi", times: int = 1):
    echo(message=message)


@pytest.fixture
def fake() -> Iterator[FakeKfp]:
    with FakeKfp() as server:
        yield server


@pytest.fixture
def client(fake: FakeKfp) -> kfp.Client:
    return kfp.Client(host=fake.url)


@pytest.fixture
def package(tmp_path: Path) -> str:
    path = tmp_path / "hello.yaml"
    compiler.Compiler().compile(hello, str(path))
    return str(path)


def name_filter(key: str, value: str, op_field: str = "operation") -> str:
    return json.dumps({"predicates": [{op_field: 1, "key": key, "stringValue": value}]})


def v1(fake: FakeKfp, method: str, path: str, **kwargs: object) -> requests.Response:
    return requests.request(method, f"{fake.url}/apis/v1beta1{path}", timeout=10, **kwargs)


def test_the_kfp_client_creates_an_experiment_and_a_run_from_a_package(
        fake: FakeKfp, client: kfp.Client, package: str) -> None:
    result = client.create_run_from_pipeline_package(package, arguments={"message": "hey", "times": 2},
                                                     run_name="hello-1", experiment_name="debug")

    [run] = fake.created_runs(Api.V2BETA1)
    assert run.id == result.run_id and run.name == "hello-1"
    assert fake.experiment_named("debug") is not None
    assert run.experiment_id == fake.experiment_named("debug").id
    assert run.parameters == {"message": "hey", "times": 2}
    assert run.body["pipeline_spec"]["pipelineInfo"]["name"] == "hello"
    assert [(r.method, r.path) for r in fake.requests] == [
        ("GET", "/apis/v2beta1/healthz"), ("GET", "/apis/v2beta1/experiments"),
        ("POST", "/apis/v2beta1/experiments"), ("POST", "/apis/v2beta1/runs")]


def test_runs_are_listed_by_name_and_experiment_and_read_with_their_state(
        fake: FakeKfp, client: kfp.Client, package: str) -> None:
    first = client.create_run_from_pipeline_package(package, run_name="a", experiment_name="debug").run_id
    client.create_run_from_pipeline_package(package, run_name="b", experiment_name="nightly")
    fake.set_run_state(first, "FAILED", error="task echo failed")

    by_name = client.list_runs(filter=name_filter("display_name", "a"))
    in_nightly = client.list_runs(experiment_id=fake.experiment_named("nightly").id)
    nothing = client.list_runs(filter=name_filter("display_name", "c"))
    run = client.get_run(first)

    assert [r.run_id for r in by_name.runs] == [first]
    assert [r.display_name for r in in_nightly.runs] == ["b"]
    assert nothing.runs is None and nothing.total_size == 0
    assert (run.state, run.error.message) == ("FAILED", "task echo failed")
    assert run.finished_at.year >= 2024


def test_paging_hands_out_a_token_for_the_next_page(fake: FakeKfp, client: kfp.Client, package: str) -> None:
    for name in ("a", "b", "c"):
        client.create_run_from_pipeline_package(package, run_name=name, experiment_name="debug")

    first = client.list_runs(page_size=2)
    second = client.list_runs(page_size=2, page_token=first.next_page_token)

    assert [r.display_name for r in first.runs + second.runs] == ["a", "b", "c"]
    assert second.next_page_token is None and first.total_size == 3


def test_terminate_cancels_a_running_run_and_refuses_a_finished_one(
        fake: FakeKfp, client: kfp.Client, package: str) -> None:
    running = client.create_run_from_pipeline_package(package, run_name="a").run_id
    done = client.create_run_from_pipeline_package(package, run_name="b").run_id
    fake.set_run_state(done, "SUCCEEDED")

    client.terminate_run(running)
    with pytest.raises(kfp_server_api.ApiException) as refused:
        client.terminate_run(done)

    assert client.get_run(running).state == "CANCELING"
    assert refused.value.status == 400
    assert json.loads(refused.value.body)["message"].endswith("the run has already finished (SUCCEEDED)")


def test_v2_requests_the_server_would_reject(fake: FakeKfp, client: kfp.Client, package: str) -> None:
    with pytest.raises(kfp_server_api.ApiException) as unknown:
        client.create_run_from_pipeline_package(package, arguments={"mesage": "x"}, run_name="a")
    with pytest.raises(kfp_server_api.ApiException) as v1_filter:
        client.list_runs(filter=name_filter("display_name", "a", op_field="op"))
    with pytest.raises(kfp_server_api.ApiException) as missing:
        client.get_run("no-such-run")

    assert unknown.value.status == 400
    assert json.loads(unknown.value.body)["message"] == (
        "Invalid input error: the pipeline has no input parameter mesage (declared: message, times)")
    assert v1_filter.value.status == 400 and "unknown field(s) ['op']" in v1_filter.value.body
    assert missing.value.status == 404 and json.loads(missing.value.body)["code"] == 5
    assert fake.created_runs() == []


def test_the_v1beta1_api_creates_reads_and_terminates_argo_runs(fake: FakeKfp) -> None:
    experiment = v1(fake, "POST", "/experiments", json={"name": "debug"}).json()
    created = v1(fake, "POST", "/runs", json={
        "name": "hello-1",
        "pipeline_spec": {"workflow_manifest": WORKFLOW, "parameters": [{"name": "message", "value": "hey"}]},
        "resource_references": [{"key": {"type": "EXPERIMENT", "id": experiment["id"]}, "relationship": "OWNER"}],
    })
    run_id = created.json()["run"]["id"]
    listed = v1(fake, "GET", "/runs", params={
        "filter": name_filter("name", "hello-1", op_field="op"),
        "resource_reference_key.type": "EXPERIMENT", "resource_reference_key.id": experiment["id"]}).json()
    fresh = v1(fake, "GET", f"/runs/{run_id}").json()["run"]
    fake.set_run_state(run_id, "Running")
    terminated = v1(fake, "POST", f"/runs/{run_id}/terminate")

    assert created.status_code == 200 and created.json()["pipeline_runtime"]["workflow_manifest"] == WORKFLOW
    assert [r["id"] for r in listed["runs"]] == [run_id]
    assert "status" not in fresh
    assert fresh["resource_references"][0]["name"] == "debug"
    assert terminated.status_code == 200
    assert v1(fake, "GET", f"/runs/{run_id}").json()["run"]["status"] == "Terminating"
    assert fake.created_runs(Api.V1BETA1)[0].parameters == {"message": "hey"}
    assert fake.created_runs(Api.V1BETA1)[0].workflow["metadata"] == {"generateName": "hello-"}


@pytest.mark.parametrize(("body", "message"), [
    ({"name": "a", "pipeline_spec": {"workflow_manifest": "kind: Deployment"}},
     "Could not unmarshal the workflow manifest"),
    ({"name": "a", "pipeline_spec": {"workflow_manifest": WORKFLOW,
                                     "parameters": [{"name": "message", "value": 3}]}},
     "name and value must be strings"),
    ({"name": "a", "pipeline_spec": {"workflow_manifest": WORKFLOW,
                                     "parameters": [{"name": "other", "value": "3"}]}},
     "the pipeline has no input parameter other"),
    ({"name": "", "pipeline_spec": {"workflow_manifest": WORKFLOW}}, "The run name is empty"),
    ({"name": "a", "pipeline_spec": {"workflow_manifest": WORKFLOW},
      "resource_references": [{"key": {"type": "EXPERIMENT", "id": "nope"}, "relationship": "OWNER"}]},
     "experiment nope not found"),
])
def test_v1_requests_the_server_would_reject(fake: FakeKfp, body: dict, message: str) -> None:
    answer = v1(fake, "POST", "/runs", json=body)

    assert answer.status_code in (400, 404)
    assert message in answer.json()["message"] and answer.json()["error"] == answer.json()["message"]
    assert fake.created_runs() == []


def test_experiment_names_are_unique_across_both_versions(fake: FakeKfp, client: kfp.Client) -> None:
    client.create_experiment("debug")
    again = v1(fake, "POST", "/experiments", json={"name": "debug"})
    listed = v1(fake, "GET", "/experiments", params={"filter": name_filter("name", "debug", op_field="op")})

    assert again.status_code == 409 and again.json()["code"] == 6
    assert [e["name"] for e in listed.json()["experiments"]] == ["debug"]


def test_injected_faults_carry_kfp_error_bodies(fake: FakeKfp, client: kfp.Client) -> None:
    fake.fail_next("GET", "/apis/v2beta1/runs", 503)

    with pytest.raises(kfp_server_api.ApiException) as unavailable:
        client.list_runs()

    assert unavailable.value.status == 503
    assert json.loads(unavailable.value.body) | {"details": []} == {
        "error": "Service Unavailable", "code": 14, "message": "Service Unavailable", "details": []}
    assert client.list_runs().total_size == 0


def test_a_lost_answer_still_creates_the_run(fake: FakeKfp, client: kfp.Client, package: str) -> None:
    fake.lose_next_answer("POST", "/apis/v2beta1/runs")

    with pytest.raises(kfp_server_api.ApiException) as lost:
        client.create_run_from_pipeline_package(package, run_name="a")

    assert lost.value.status == 503
    assert [r.name for r in fake.created_runs()] == ["a"]


def test_set_run_state_accepts_only_the_states_of_the_runs_api(fake: FakeKfp, client: kfp.Client,
                                                               package: str) -> None:
    run_id = client.create_run_from_pipeline_package(package, run_name="a").run_id

    with pytest.raises(ValueError, match="'Succeeded' is not a v2beta1 run state"):
        fake.set_run_state(run_id, "Succeeded")


def test_a_kfp_1_server_does_not_serve_v2beta1() -> None:
    with FakeKfp(apis=(Api.V1BETA1,)) as v1_only:
        v2 = requests.get(f"{v1_only.url}/apis/v2beta1/healthz", timeout=10)
        healthz = requests.get(f"{v1_only.url}/apis/v1beta1/healthz", timeout=10)

    assert v2.status_code == 404 and v2.json()["code"] == 5
    assert healthz.status_code == 200 and healthz.json()["multi_user"] is False
