"""The Pub/Sub event bus, through the real google-cloud-pubsub client to the local Publisher fake."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import requests
from google.auth.credentials import AnonymousCredentials
from google.cloud import pubsub_v1

from bot.app import create_app
from bot.config import Settings
from bot.embedded_bus import BusUnavailable
from bot.payloads import parse_event
from bot.pubsub.publisher import PubSubBus, make_publisher, topic_path
from bot.pubsub.relay import OutboxRelay
from bot.services import Services
from bot.store import SqlStore
from deploy.endpoints import is_loopback
from handlers.event_codec import event_from_dict
from handlers.models import BuildStatus, Event, PullRequestEvent
from handlers.notifications import notification_for
from handlers.run_models import RunState
from tests.bot.test_store import make_run
from tests.fakes.pubsub import FakePubSub
from tests.support.server import ServedApp, serve
from tests.support.webhooks import delivery_headers, load_payload

SECRET = "webhook-secret-for-tests"
TOPIC = "kfp-bot-events"


@pytest.fixture
def fake() -> Iterator[FakePubSub]:
    with FakePubSub() as fake:
        yield fake


@pytest.fixture
def publisher(fake: FakePubSub) -> Iterator[pubsub_v1.PublisherClient]:
    client = make_publisher(fake.endpoint)
    yield client
    client.stop()
    client.transport.close()


@pytest.fixture
def bus(fake: FakePubSub, publisher: pubsub_v1.PublisherClient) -> PubSubBus:
    return PubSubBus(publisher, fake.topic(TOPIC), timeout_seconds=0.5)


def pull_request_event(delivery_id: str = "d-1") -> PullRequestEvent:
    event = parse_event("pull_request", delivery_id, load_payload("pull_request.opened"))
    assert isinstance(event, PullRequestEvent)
    return event


def decoded(message: Any) -> Event:
    return event_from_dict(message.json)


# -- publishing ----------------------------------------------------------------------------------

def test_an_event_is_published_as_json_with_its_kind_key_and_delivery_id(fake: FakePubSub, bus: PubSubBus) -> None:
    event = pull_request_event("d-1")

    bus.publish(event)

    [message] = fake.messages
    assert message.topic == "projects/test-project/topics/kfp-bot-events"
    assert dict(message.attributes) == {"kind": "pull_request", "key": event.key, "delivery_id": "d-1"}
    assert decoded(message) == event


def test_an_event_without_a_delivery_id_has_no_such_attribute(fake: FakePubSub, bus: PubSubBus) -> None:
    event = BuildStatus(run_id="run-1", state=RunState.COMPILING, detail="images built",
                        images={"training": "registry/p-training:abc"})

    bus.publish(event)

    [message] = fake.messages
    assert dict(message.attributes) == {"kind": "build.status", "key": "build:run-1:compiling"}
    assert decoded(message) == event


def test_unavailable_and_deadline_exceeded_are_retried_by_the_library(
        fake: FakePubSub, publisher: pubsub_v1.PublisherClient) -> None:
    bus = PubSubBus(publisher, fake.topic(TOPIC), timeout_seconds=30)
    fake.fail_next(grpc.StatusCode.UNAVAILABLE)
    fake.fail_next(grpc.StatusCode.DEADLINE_EXCEEDED)

    bus.publish(pull_request_event())

    assert [call.code for call in fake.calls] == [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                                                  grpc.StatusCode.OK]
    assert len(fake.messages) == 1


def test_a_refused_publish_raises_bus_unavailable_naming_the_event_and_the_status(
        fake: FakePubSub, bus: PubSubBus) -> None:
    fake.fail_next(grpc.StatusCode.PERMISSION_DENIED, detail="User not authorized to perform this action.")
    event = pull_request_event()

    with pytest.raises(BusUnavailable) as raised:
        bus.publish(event)

    assert str(raised.value) == (
        f"could not publish {event.key} to projects/test-project/topics/kfp-bot-events: "
        "PERMISSION_DENIED: User not authorized to perform this action. (retry later)")
    assert len(fake.calls) == 1  # not retried
    assert fake.messages == []


def test_a_publish_that_stays_unavailable_gives_up_after_the_timeout(fake: FakePubSub, bus: PubSubBus) -> None:
    fake.fail_next(grpc.StatusCode.UNAVAILABLE, times=1_000_000)

    with pytest.raises(BusUnavailable, match="gave up retrying: UNAVAILABLE: injected UNAVAILABLE"):
        bus.publish(pull_request_event())

    assert fake.messages == []
    assert len(fake.calls) >= 2  # the library did retry before giving up


def test_a_stopped_bus_refuses_events(fake: FakePubSub, bus: PubSubBus) -> None:
    bus.start()
    assert bus.stop(timeout=1) is True

    with pytest.raises(BusUnavailable, match="the event bus is stopped"):
        bus.publish(pull_request_event())
    assert fake.calls == []


# -- building the client and the topic -----------------------------------------------------------

@pytest.mark.parametrize(("endpoint", "loopback"), [
    ("127.0.0.1:8085", True), ("localhost:8085", True), ("[::1]:8085", True), ("http://127.0.0.2:8085", True),
    ("pubsub.googleapis.com:443", False), ("europe-west1-pubsub.googleapis.com:443", False),
    ("10.0.0.7:8085", False),
])
def test_only_loopback_endpoints_count_as_local(endpoint: str, loopback: bool) -> None:
    assert is_loopback(endpoint) is loopback


def test_a_remote_endpoint_is_used_as_the_api_endpoint() -> None:
    client = make_publisher("europe-west1-pubsub.googleapis.com:443", credentials=AnonymousCredentials())

    assert client.api_endpoint == "europe-west1-pubsub.googleapis.com:443"


def test_the_topic_comes_from_the_project_and_topic_settings(tmp_path: Path,
                                                             publisher: pubsub_v1.PublisherClient) -> None:
    settings = make_settings(tmp_path, gcp_project="acme-ml")
    assert PubSubBus.from_settings(settings, publisher).topic_path == "projects/acme-ml/topics/kfp-bot-events"
    assert topic_path("acme-ml", "projects/shared/topics/events") == "projects/shared/topics/events"


# -- the webhook and the outbox relay ------------------------------------------------------------

def make_settings(tmp_path: Path, **changes: Any) -> Settings:
    # KFP_BOT_BUS only chooses what bot.wiring builds; these tests hand the app its bus directly.
    return Settings(**{"webhook_secret": SECRET, "data_dir": tmp_path, "gcp_project": "test-project", **changes})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    with SqlStore(f"sqlite:///{tmp_path / 'bot.db'}") as store:
        yield store


@pytest.fixture
def relay(store: SqlStore, bus: PubSubBus) -> OutboxRelay:
    return OutboxRelay(store, bus)


@pytest.fixture
def server(tmp_path: Path, store: SqlStore, relay: OutboxRelay) -> Iterator[ServedApp]:
    with serve(create_app(make_settings(tmp_path), Services(store=store, bus=relay))) as served:
        yield served


def post_pull_request(server: ServedApp, delivery_id: str) -> requests.Response:
    body = json.dumps(load_payload("pull_request.opened")).encode()
    return requests.post(f"{server.url}/github/webhook", data=body,
                         headers=delivery_headers("pull_request", body, SECRET, delivery_id=delivery_id),
                         timeout=30)


def test_the_webhook_answers_202_once_the_event_is_on_the_topic(fake: FakePubSub, server: ServedApp) -> None:
    response = post_pull_request(server, "d-7")

    assert response.status_code == 202
    [message] = fake.messages
    assert message.attributes["delivery_id"] == "d-7"
    assert decoded(message) == pull_request_event("d-7")


@pytest.mark.parametrize("failure", [grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAVAILABLE])
def test_an_event_pubsub_refused_stays_in_the_outbox_until_the_relay_sends_it(
        fake: FakePubSub, server: ServedApp, store: SqlStore, relay: OutboxRelay, failure: grpc.StatusCode) -> None:
    fake.fail_next(failure, times=1_000_000)

    accepted = post_pull_request(server, "d-8")

    assert accepted.status_code == 202  # the delivery and its event are stored together
    assert fake.messages == []
    assert store.queued_events() == [pull_request_event("d-8")]
    assert relay.relay_pending() == 0  # still refused: it stays queued

    fake.clear_faults()
    assert relay.relay_pending() == 1
    assert [m.attributes["delivery_id"] for m in fake.messages] == ["d-8"]
    assert store.pending_work() == 0
    assert post_pull_request(server, "d-8").json()["status"] == "duplicate"
    assert relay.relay_pending() == 0
    assert len(fake.messages) == 1


def test_the_relay_thread_sends_what_was_left_behind(fake: FakePubSub, store: SqlStore, bus: PubSubBus) -> None:
    store.enqueue([pull_request_event("left-by-a-crashed-instance")])
    relay = OutboxRelay(store, bus, retry_seconds=0.05)
    relay.start()
    try:
        assert fake.wait_idle()
        for _ in range(200):
            if fake.messages:
                break
            threading.Event().wait(0.05)
    finally:
        relay.stop(5)
    assert [m.attributes["delivery_id"] for m in fake.messages] == ["left-by-a-crashed-instance"]

def test_a_state_change_notification_goes_to_the_notifications_topic_and_waits_while_pubsub_refuses_it(
        fake: FakePubSub, store: SqlStore, bus: PubSubBus, publisher: pubsub_v1.PublisherClient) -> None:
    notifications = PubSubBus(publisher, fake.topic("kfp-bot-notifications"), timeout_seconds=0.5)
    relay = OutboxRelay(store, bus, notifications=notifications)
    assert store.create_run(make_run())
    fake.fail_next(grpc.StatusCode.PERMISSION_DENIED, times=1_000_000)

    moved = store.transition("run-1", RunState.BUILDING, then=lambda run: (notification_for(run),))

    assert moved is not None and moved.state is RunState.BUILDING  # the run goes on whatever the topic does
    assert fake.messages == [] and store.pending_work() == 1
    fake.clear_faults()
    assert relay.relay_pending() == 1
    [message] = fake.messages
    assert message.topic == fake.topic("kfp-bot-notifications")
    assert (message.attributes["kind"], message.attributes["step"].isdigit()) == ("notification", True)
    assert decoded(message) == notification_for(moved)
    assert store.pending_work() == 0


def test_a_notification_is_on_its_topic_as_soon_as_the_state_change_committed(
        fake: FakePubSub, store: SqlStore, bus: PubSubBus, publisher: pubsub_v1.PublisherClient) -> None:
    notifications = PubSubBus(publisher, fake.topic("kfp-bot-notifications"), timeout_seconds=0.5)
    OutboxRelay(store, bus, notifications=notifications)  # it hears of rows a state change queued
    assert store.create_run(make_run())

    store.transition("run-1", RunState.BUILDING, then=lambda run: (notification_for(run),))

    assert [m.topic for m in fake.messages] == [fake.topic("kfp-bot-notifications")]
    assert store.pending_work() == 0


def test_a_stopped_relay_leaves_new_rows_in_the_outbox(
        fake: FakePubSub, store: SqlStore, bus: PubSubBus) -> None:
    relay = OutboxRelay(store, bus)
    relay.stop(5)
    assert store.create_run(make_run())

    store.transition("run-1", RunState.BUILDING, then=lambda run: (notification_for(run),))

    assert fake.messages == [] and store.pending_work() == 1  # for the next start or another instance
