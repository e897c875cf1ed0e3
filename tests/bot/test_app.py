"""The HTTP edge over a real socket: the webhook as GitHub calls it, the runs API, health, errors."""

from __future__ import annotations

import http.client
import io
import json
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from bot.app import create_app
from bot.config import LogFormat, Settings
from bot.embedded_bus import BusUnavailable, OutboxBus
from bot.logs import configure_logging
from bot.payloads import parse_event
from bot.services import Services
from bot.store import SqlStore, StoreError
from handlers.models import Event, IssueCommentEvent, PullRequestAction, PullRequestEvent
from handlers.run_models import FailureStage, Run, RunState, Trigger
from tests.support.server import ServedApp, serve
from tests.support.webhooks import delivery_headers, load_payload

SECRET = "webhook-secret-for-tests"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)



class RecordingBus:
    """A `ManagedBus` test double that runs nothing: what was queued is what the store's outbox
    holds; records the rows it was told about; can be told to fail the next wake-ups."""

    notify_blocks = False

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.notified: list[int] = []
        self.failures = 0
        self._lock = threading.Lock()

    @property
    def published(self) -> list[Event]:
        """The events queued in the store (by the webhook, in one transaction with the delivery)."""
        return self.store.queued_events()

    def publish(self, event: Event) -> None:
        self.store.enqueue([event])

    def notify(self, ids: Any = ()) -> None:
        with self._lock:
            if self.failures:
                self.failures -= 1
                raise BusUnavailable("the event bus is stopped: try again")
            self.notified.extend(ids)

    def start(self) -> None:
        pass

    def stop(self, timeout: float = 30.0) -> bool:
        return True


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    with SqlStore(f"sqlite:///{tmp_path / 'bot.db'}") as store:
        yield store


@pytest.fixture
def bus(store: SqlStore) -> RecordingBus:
    return RecordingBus(store)


def make_settings(tmp_path: Path, **changes: Any) -> Settings:
    return Settings(**{"webhook_secret": SECRET, "data_dir": tmp_path, **changes})


@pytest.fixture
def server(tmp_path: Path, store: SqlStore, bus: RecordingBus) -> Iterator[ServedApp]:
    with serve(create_app(make_settings(tmp_path), Services(store=store, bus=bus))) as served:
        yield served


def post_event(server: ServedApp, event: str, payload: Any, *, secret: str | None = SECRET,
               delivery_id: str | None = None, body: bytes | None = None) -> requests.Response:
    data = body if body is not None else json.dumps(payload).encode()
    headers = delivery_headers(event, data, secret, delivery_id=delivery_id)
    return requests.post(f"{server.url}/github/webhook", data=data, headers=headers, timeout=30)


# -- the webhook ---------------------------------------------------------------------------------

def test_a_pull_request_is_accepted_and_published(server: ServedApp, bus: RecordingBus) -> None:
    response = post_event(server, "pull_request", load_payload("pull_request.opened"), delivery_id="d-1")

    assert response.status_code == 202
    assert response.json() == {"status": "accepted", "delivery": "d-1", "event": "pull_request"}
    [event] = bus.published
    assert isinstance(event, PullRequestEvent)
    assert (event.delivery_id, event.action, event.repo.full_name, event.pull.number) == (
        "d-1", PullRequestAction.OPENED, "Codertocat/Hello-World", 2)


def test_a_command_comment_on_a_pull_request_is_accepted(server: ServedApp, bus: RecordingBus) -> None:
    payload = load_payload("issue_comment.created", {"comment.body": "/run head-pose-pipeline"})

    response = post_event(server, "issue_comment", payload)

    assert response.status_code == 202
    assert response.json()["event"] == "issue_comment"
    [event] = bus.published
    assert isinstance(event, IssueCommentEvent)
    assert event.body == "/run head-pose-pipeline"


@pytest.mark.parametrize("secret", [None, "not the bot's secret"])
def test_a_missing_or_wrong_signature_is_401_and_nothing_is_published(
        server: ServedApp, bus: RecordingBus, secret: str | None) -> None:
    response = post_event(server, "pull_request", load_payload("pull_request.opened"), secret=secret)

    assert response.status_code == 401
    assert response.json()["status"] == "error"
    assert "X-Hub-Signature-256" in response.json()["reason"]
    assert bus.published == []


def test_an_unsigned_ping_is_401_and_a_signed_one_is_answered(server: ServedApp) -> None:
    assert post_event(server, "ping", load_payload("ping"), secret=None).status_code == 401

    response = post_event(server, "ping", load_payload("ping"), delivery_id="p-1")

    assert response.status_code == 200
    assert response.json() == {"status": "ignored", "reason": "pong", "delivery": "p-1"}


@pytest.mark.parametrize(("body", "reason"), [
    (b"payload=%7B%22zen%22%7D", "body is not JSON: configure the webhook with content type application/json"),
    (b"[]", "body is JSON but not an object (got an array)"),
])
def test_a_body_that_is_not_a_json_object_is_400(server: ServedApp, body: bytes, reason: str) -> None:
    response = post_event(server, "pull_request", None, body=body)

    assert response.status_code == 400
    assert response.json() == {"status": "error", "reason": reason}


def test_a_body_that_is_not_the_announced_event_is_400_naming_the_field(
        server: ServedApp, bus: RecordingBus) -> None:
    response = post_event(server, "issue_comment", load_payload("push"))

    assert response.status_code == 400
    assert response.json()["reason"] == "issue_comment payload: field 'action' is missing"
    assert bus.published == []


def test_missing_github_headers_are_400(server: ServedApp) -> None:
    body = json.dumps(load_payload("pull_request.opened")).encode()
    headers = delivery_headers("pull_request", body, SECRET)
    del headers["X-GitHub-Delivery"]

    response = requests.post(f"{server.url}/github/webhook", data=body, headers=headers, timeout=30)

    assert response.status_code == 400
    assert response.json()["reason"] == "missing X-GitHub-Delivery header"


@pytest.mark.parametrize(("event", "name", "reason"), [
    ("check_run", "check_run.requested_action", "check_run button 'lgtm|26764' is not one of the bot's"),
    ("deployment", "ping", "event 'deployment' is not handled"),
    ("issue_comment", "issue_comment.created.issue", "comment on issue #1, not on a pull request"),
])
def test_events_the_bot_does_not_act_on_are_acknowledged(server: ServedApp, bus: RecordingBus, store: SqlStore,
                                                         event: str, name: str, reason: str) -> None:
    response = post_event(server, event, load_payload(name), delivery_id="i-1")

    assert response.status_code == 200
    assert response.json() == {"status": "ignored", "reason": reason, "delivery": "i-1"}
    assert bus.published == []
    assert store.record_delivery("i-1", event) is True  # ignored deliveries are not recorded


def test_the_same_delivery_twice_is_processed_once(server: ServedApp, bus: RecordingBus) -> None:
    payload = load_payload("pull_request.synchronize")

    first = post_event(server, "pull_request", payload, delivery_id="dup-1")
    second = post_event(server, "pull_request", payload, delivery_id="dup-1")

    assert first.status_code == 202
    assert second.status_code == 200
    assert second.json() == {"status": "duplicate", "delivery": "dup-1"}
    assert len(bus.published) == 1


def test_ten_copies_at_once_are_accepted_exactly_once(server: ServedApp, bus: RecordingBus) -> None:
    payload = load_payload("pull_request.opened")
    start = threading.Barrier(10, timeout=30)
    statuses: list[int] = []
    lock = threading.Lock()

    def deliver() -> None:
        start.wait()
        response = post_event(server, "pull_request", payload, delivery_id="burst-1")
        with lock:
            statuses.append(response.status_code)

    threads = [threading.Thread(target=deliver) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sorted(statuses) == [200] * 9 + [202]
    assert len(bus.published) == 1


def test_an_accepted_event_is_in_the_store_even_when_the_bus_cannot_be_woken(
        server: ServedApp, bus: RecordingBus) -> None:
    payload = load_payload("pull_request.reopened")
    bus.failures = 1

    accepted = post_event(server, "pull_request", payload, delivery_id="retry-1")

    assert accepted.status_code == 202  # stored with its delivery: workers poll the store
    [event] = bus.published
    assert isinstance(event, PullRequestEvent) and event.delivery_id == "retry-1"
    assert post_event(server, "pull_request", payload, delivery_id="retry-1").json()["status"] == "duplicate"
    assert len(bus.published) == 1


class BrokenStore:
    """A `Store` double whose database is gone: every call fails the way SqlStore reports it."""

    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise StoreError(f"store: {name} failed on sqlite:///gone.db: disk I/O error")
        return fail


def test_a_store_failure_is_503_so_github_can_redeliver(tmp_path: Path, bus: RecordingBus) -> None:
    app = create_app(make_settings(tmp_path), Services(store=BrokenStore(), bus=bus))  # type: ignore[arg-type]
    with serve(app) as server:
        response = post_event(server, "pull_request", load_payload("pull_request.opened"))

    assert response.status_code == 503
    assert response.json() == {"status": "error", "reason": "could not record the delivery; redeliver it later"}
    assert bus.published == []


def test_without_a_configured_secret_every_delivery_is_refused(tmp_path: Path, store: SqlStore,
                                                                bus: RecordingBus) -> None:
    app = create_app(make_settings(tmp_path, webhook_secret=None), Services(store=store, bus=bus))
    with serve(app) as server:
        response = post_event(server, "pull_request", load_payload("pull_request.opened"))

    assert response.status_code == 503
    assert response.json()["reason"] == "the bot has no webhook secret configured"
    assert bus.published == []


def test_a_body_over_the_limit_is_413(tmp_path: Path, store: SqlStore, bus: RecordingBus) -> None:
    app = create_app(make_settings(tmp_path, max_body_bytes=2048), Services(store=store, bus=bus))
    payload = load_payload("pull_request.opened")
    assert len(json.dumps(payload)) > 2048
    with serve(app) as server:
        response = post_event(server, "pull_request", payload)
        # Without Content-Length (chunked), the read stops at the limit.
        chunks = iter([b'{"action": "opened", "padding": "', b"x" * 4096, b'"}'])
        chunked = requests.post(f"{server.url}/github/webhook", data=chunks, timeout=30,
                                headers=delivery_headers("pull_request", b"", SECRET))

    assert response.status_code == 413
    assert response.json() == {"status": "error", "reason": "body is larger than the limit of 2048 bytes"}
    assert chunked.status_code == 413
    assert bus.published == []


def test_the_default_limit_refuses_a_body_announced_over_25_mb_without_reading_it(server: ServedApp) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.putrequest("POST", "/github/webhook")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(25 * 1024 * 1024 + 1))
    connection.putheader("X-GitHub-Event", "pull_request")
    connection.endheaders()  # and no body is ever sent
    response = connection.getresponse()

    assert response.status == 413
    assert json.loads(response.read())["reason"] == "body is larger than the limit of 26214400 bytes"
    connection.close()


def test_the_real_bus_hands_the_event_to_the_dispatcher(tmp_path: Path, store: SqlStore) -> None:
    dispatched: list[Event] = []
    bus = OutboxBus(store, dispatched.append, poll_seconds=0.05)
    services = Services(store=store, bus=bus)
    services.start()
    try:
        with serve(create_app(make_settings(tmp_path), services)) as server:
            response = post_event(server, "pull_request", load_payload("pull_request.opened"), delivery_id="real-1")
        assert response.status_code == 202
        assert bus.wait_idle(10)
    finally:
        assert services.stop(10)

    [event] = dispatched
    assert isinstance(event, PullRequestEvent)
    assert event.delivery_id == "real-1"


def test_each_webhook_request_is_logged_with_its_delivery_id_and_no_secrets(
        server: ServedApp, restore_logging: None) -> None:
    stream = io.StringIO()
    configure_logging(LogFormat.JSON, "INFO", stream=stream)
    payload = load_payload("pull_request.opened")
    body = json.dumps(payload).encode()
    headers = delivery_headers("pull_request", body, SECRET, delivery_id="log-1")

    response = requests.post(f"{server.url}/github/webhook", data=body, headers=headers, timeout=30)

    assert response.status_code == 202
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    mine = [line for line in lines if line["delivery_id"] == "log-1"]
    assert any(line["message"].startswith("accepted pr:Codertocat/Hello-World#2@") for line in mine)
    access = next(line for line in mine if line["message"] == "POST /github/webhook 202")
    assert (access["status"], access["github_event"], access["level"]) == (202, "pull_request", "INFO")
    text = stream.getvalue()
    assert SECRET not in text
    assert headers["X-Hub-Signature-256"].removeprefix("sha256=") not in text
    assert payload["pull_request"]["title"] not in text


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


# -- health, API, errors -------------------------------------------------------------------------

def test_healthz(server: ServedApp) -> None:
    response = requests.get(f"{server.url}/healthz", timeout=30)

    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["version"]


def make_run(run_id: str, minutes: int, **changes: Any) -> Run:
    created = T0 + timedelta(minutes=minutes)
    run = Run(id=run_id, repo="org/monorepo", pr=7, sha="a" * 40, base_sha="b" * 40,
              pipeline="head-pose-pipeline", trigger=Trigger.AUTORUN, state=RunState.QUEUED,
              created_at=created, updated_at=created)
    return replace(run, **changes)


@pytest.fixture
def runs(store: SqlStore) -> list[Run]:
    made = [
        make_run("run-1", 1),
        make_run("run-2", 2, pipeline="other-pipeline", state=RunState.FAILED, error="compile failed"),
        make_run("run-3", 3, pr=8, state=RunState.SUCCEEDED),
        make_run("run-4", 4, repo="org/elsewhere", pr=None, trigger=Trigger.DEPLOY),
    ]
    for run in made:
        assert store.create_run(run)
    return made


def _ids(response: requests.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [run["id"] for run in response.json()["runs"]]


def test_runs_are_listed_newest_first_and_filtered(server: ServedApp, runs: list[Run]) -> None:
    api = f"{server.url}/api/runs"

    assert _ids(requests.get(api, timeout=30)) == ["run-4", "run-3", "run-2", "run-1"]
    assert _ids(requests.get(api, params={"repo": "org/monorepo"}, timeout=30)) == ["run-3", "run-2", "run-1"]
    assert _ids(requests.get(api, params={"repo": "org/monorepo", "pr": "7"}, timeout=30)) == ["run-2", "run-1"]
    assert _ids(requests.get(api, params={"pipeline": "other-pipeline"}, timeout=30)) == ["run-2"]
    assert _ids(requests.get(api, params={"state": "succeeded"}, timeout=30)) == ["run-3"]
    assert _ids(requests.get(api, params={"active": "true"}, timeout=30)) == ["run-4", "run-1"]
    assert _ids(requests.get(api, params={"limit": "2"}, timeout=30)) == ["run-4", "run-3"]
    failed = requests.get(api, params={"state": "failed"}, timeout=30).json()["runs"][0]
    assert failed == runs[1].to_json() | {"transitions": failed["transitions"]}
    assert failed["error"] == "compile failed"


@pytest.mark.parametrize(("query", "reason"), [
    ({"state": "exploded"}, "unknown state 'exploded'; valid states: queued, building, compiling, running, "
                            "succeeded, failed, cancelled, skipped, error"),
    ({"pr": "seven"}, "'pr' must be a whole number, got 'seven'"),
    ({"limit": "0"}, "'limit' must be between 1 and 500, got 0"),
    ({"active": "maybe"}, "'active' must be true or false, got 'maybe'"),
])
def test_bad_run_filters_are_400_with_the_reason(server: ServedApp, query: dict[str, str], reason: str) -> None:
    response = requests.get(f"{server.url}/api/runs", params=query, timeout=30)

    assert response.status_code == 400
    assert response.json() == {"status": "error", "reason": reason}


def test_one_run_or_a_json_404(server: ServedApp, runs: list[Run]) -> None:
    found = requests.get(f"{server.url}/api/runs/run-2", timeout=30)
    missing = requests.get(f"{server.url}/api/runs/run-404", timeout=30)

    assert found.status_code == 200
    assert (found.json()["id"], found.json()["state"]) == ("run-2", "failed")
    assert missing.status_code == 404
    assert missing.json() == {"status": "error", "reason": "run 'run-404' not found"}


def test_errors_are_json_never_html(server: ServedApp) -> None:
    unknown = requests.get(f"{server.url}/api/nothing-here", timeout=30)
    wrong_method = requests.get(f"{server.url}/github/webhook", timeout=30)

    assert unknown.status_code == 404
    assert unknown.headers["Content-Type"] == "application/json"
    assert unknown.json() == {"status": "error", "reason": "no such page: /api/nothing-here"}
    assert wrong_method.status_code == 405
    assert wrong_method.json() == {"status": "error",
                                   "reason": "GET is not allowed on /github/webhook (use POST)"}


def test_an_unexpected_failure_is_a_json_500_without_details(tmp_path: Path, bus: RecordingBus) -> None:
    app = create_app(make_settings(tmp_path), Services(store=BrokenStore(), bus=bus))  # type: ignore[arg-type]
    with serve(app) as server:
        response = requests.get(f"{server.url}/api/runs", timeout=30)

    assert response.status_code == 500
    assert response.json() == {"status": "error", "reason": "internal error; the bot's log has the details"}
    assert "gone.db" not in response.text


def test_creating_the_app_starts_nothing(tmp_path: Path, store: SqlStore) -> None:
    dispatched: list[Event] = []
    bus = OutboxBus(store, dispatched.append, poll_seconds=0.05)
    threads_before = threading.active_count()

    create_app(make_settings(tmp_path), Services(store=store, bus=bus))

    assert threading.active_count() == threads_before
    bus.publish(make_event())
    assert not bus.wait_idle(0.05)  # no worker was started by the app factory
    assert dispatched == []
    bus.stop(1)


def make_event() -> Event:
    event = parse_event("pull_request", "x", load_payload("pull_request.opened"))
    assert isinstance(event, PullRequestEvent)
    return event


# -- bounds at the edge ----------------------------------------------------------------------------

@pytest.mark.parametrize(("query", "reason"), [
    ({"pr": "9223372036854775808"}, "'pr' must be between 1 and 2147483647, got 9223372036854775808"),
    ({"pr": "9" * 5000}, "'pr' must be a whole number, got '" + "9" * 40 + "…'"),
    ({"limit": "1_0"}, "'limit' must be a whole number, got '1_0'"),
    ({"repo": "org/\x00repo"}, "'repo' contains a NUL character (at 4)"),
    ({"sha": "a" * 300}, "'sha' is longer than 255 characters (300)"),
])
def test_query_values_the_store_cannot_take_are_400_naming_the_parameter(
        server: ServedApp, query: dict[str, str], reason: str) -> None:
    response = requests.get(f"{server.url}/api/runs", params=query, timeout=30)

    assert response.status_code == 400
    assert response.json() == {"status": "error", "reason": reason}


def test_a_signed_deeply_nested_body_is_400_not_a_500(server: ServedApp, bus: RecordingBus) -> None:
    body = b'{"action": "opened", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"

    response = post_event(server, "pull_request", None, body=body, delivery_id="deep-1")

    assert response.status_code == 400
    assert response.json()["reason"] == "body nests objects or arrays deeper than 64 levels (100001)"
    assert bus.published == []


def test_failed_deliveries_are_listed_with_id_event_reason_and_time(server: ServedApp, store: SqlStore) -> None:
    payload = load_payload("pull_request.opened", {"installation.id": 2**63})
    refused = post_event(server, "pull_request", payload, delivery_id="big-id-1")
    store.record_delivery_failure("handled-1", "push", FailureStage.HANDLER, "kfp-bot failed while handling push")
    unsigned = post_event(server, "pull_request", payload, secret=None, delivery_id="stranger-1")

    listed = requests.get(f"{server.url}/api/deliveries", params={"failed": "1"}, timeout=30)

    assert (refused.status_code, unsigned.status_code) == (400, 401)
    assert listed.status_code == 200
    [handled, rejected] = listed.json()["deliveries"]  # newest first; unsigned requests are not kept
    assert rejected == {"delivery": "big-id-1", "event": "pull_request", "stage": "rejected",
                        "reason": "pull_request payload: field 'installation.id' must be between 1 and "
                                  "9223372036854775807, got 9223372036854775808",
                        "at": rejected["at"]}
    assert datetime.fromisoformat(rejected["at"]).tzinfo is not None
    assert (handled["delivery"], handled["stage"]) == ("handled-1", "handler")
    without = requests.get(f"{server.url}/api/deliveries", timeout=30)
    assert without.status_code == 400 and "failed=1" in without.json()["reason"]


def test_a_client_that_announces_more_than_it_sends_gets_408_and_frees_the_thread(
        tmp_path: Path, store: SqlStore, bus: RecordingBus) -> None:
    app = create_app(make_settings(tmp_path, read_timeout_seconds=0.5), Services(store=store, bus=bus))
    with serve(app) as server, socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(b"POST /github/webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"X-GitHub-Event: ping\r\nX-GitHub-Delivery: slow-1\r\nX-Hub-Signature-256: sha256=00\r\n"
                     b"Content-Length: 1000\r\n\r\n{\"zen\": ")  # and the other 992 bytes never come
        answer = sock.makefile("rb").read()

    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408")
    assert json.loads(body)["reason"].startswith("the body stopped arriving after ")
    assert bus.published == []


def test_an_unsigned_body_is_refused_without_being_read(server: ServedApp) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(b"POST /github/webhook HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: ping\r\n"
                     b"X-GitHub-Delivery: big-1\r\nContent-Length: 20000000\r\n\r\n" + b"x" * 1000)
        answer = sock.makefile("rb").read()  # the bot answers and closes without waiting for 20 MB

    assert answer.startswith(b"HTTP/1.1 401")
    assert b"Connection: close" in answer
