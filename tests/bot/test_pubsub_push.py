"""`POST /pubsub/push` served by the real app, fed by the Pub/Sub fake's push subscription.

What an operator sees is what Pub/Sub sees (acknowledged, retried, dead-lettered) and the log;
the handlers are a recording `dispatch` and `on_error`, the edge's contract with them.
"""

from __future__ import annotations

import base64
import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from google.api_core import exceptions as api_exceptions

from bot.app import create_app
from bot.config import BusKind, ConfigurationError, Settings
from bot.embedded_bus import BusUnavailable
from bot.payloads import parse_event
from bot.pubsub.envelope import STEP_ATTRIBUTE
from bot.pubsub.oidc import PushTokenVerifier
from bot.pubsub.publisher import PubSubBus, make_publisher
from bot.pubsub.push import PUSH_PATH, push_blueprint, push_blueprint_for_services
from bot.pubsub.relay import OutboxRelay
from bot.services import Services
from bot.store import SqlStore, StoreError
from deploy.errors import RunError
from handlers.event_codec import event_to_dict
from handlers.models import BuildStatus, Event, PullRequestEvent, RunStart
from handlers.run_models import RunState
from tests.fakes.oidc import OidcSigner
from tests.fakes.pubsub import DEFAULT_PUSH_ACCOUNT, FakePubSub
from tests.support.server import ServedApp, serve
from tests.support.webhooks import delivery_headers, load_payload

SECRET = "webhook-secret-for-tests"
AUDIENCE = "https://kfp-bot.example.com/pubsub/push"
LOGGER = "kfp_bot.pubsub"


class Handlers:
    """The handler side: records dispatched events and failures; can be told to raise."""

    def __init__(self) -> None:
        self.dispatched: list[Event] = []
        self.failures: list[tuple[Event, BaseException]] = []
        self.raise_next: list[BaseException] = []
        self.on_error_raises: list[BaseException] = []
        self.then: Callable[[Event], None] | None = None  # what the handlers do next (publish a step)
        self._lock = threading.Lock()

    def dispatch(self, event: Event) -> None:
        with self._lock:
            self.dispatched.append(event)
            if self.raise_next:
                raise self.raise_next.pop(0)
        if self.then is not None:
            self.then(event)

    def on_error(self, event: Event, error: BaseException) -> None:
        with self._lock:
            if self.on_error_raises:
                raise self.on_error_raises.pop(0)
            self.failures.append((event, error))


class BuildNotifications:
    """A decoder in the shape of Cloud Build's: `buildId`/`status` attributes, run id in the build's tags."""

    def decode_notification(self, attributes: Mapping[str, str], data: bytes) -> Event | None:
        if "buildId" not in attributes:
            return None
        build = json.loads(data)
        run_id = next((t.removeprefix("run-id_") for t in build.get("tags", []) if t.startswith("run-id_")), None)
        if run_id is None or attributes.get("status") != "SUCCESS":
            return None
        return BuildStatus(run_id=run_id, state=RunState.COMPILING, detail="images built")


@dataclass
class Bot:
    """The served app with the push endpoint, and everything around it."""

    server: ServedApp
    fake: FakePubSub
    signer: OidcSigner
    handlers: Handlers
    services: Services
    db_path: Path

    @property
    def store(self) -> SqlStore:
        return self.services.store  # type: ignore[return-value]

    @property
    def push_url(self) -> str:
        return self.server.url + PUSH_PATH

    def subscribe(self, **options: Any) -> None:
        self.fake.push_to(self.push_url, **{"signer": self.signer, "audience": AUDIENCE,
                                            "backoff_seconds": 0.001, **options})

    def token(self, **options: Any) -> str:
        return self.signer.token(**{"audience": AUDIENCE, "email": DEFAULT_PUSH_ACCOUNT, **options})

    def post(self, body: Any, *, token: str | None = None, raw: bytes | None = None) -> requests.Response:
        headers = {"Content-Type": "application/json",
                   "Authorization": f"Bearer {token if token is not None else self.token()}"}
        data = raw if raw is not None else json.dumps(body).encode()
        return requests.post(self.push_url, data=data, headers=headers, timeout=30)


def make_settings(tmp_path: Path, **changes: Any) -> Settings:
    # KFP_BOT_BUS only chooses what bot.wiring and create_app build; these tests add the push
    # endpoint to the app themselves, with handlers that record.
    return Settings(**{"webhook_secret": SECRET, "data_dir": tmp_path,
                       "gcp_project": "test-project", "pubsub_push_audience": AUDIENCE,
                       "pubsub_push_service_account": DEFAULT_PUSH_ACCOUNT, **changes})


@pytest.fixture
def signer() -> Iterator[OidcSigner]:
    with OidcSigner() as signer:
        yield signer


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def bot(tmp_path: Path, signer: OidcSigner, settings: Settings) -> Iterator[Bot]:
    db_path = tmp_path / "bot.db"
    with FakePubSub() as fake, SqlStore(f"sqlite:///{db_path}") as store:
        publisher = make_publisher(fake.endpoint)
        services = Services(store=store, bus=OutboxRelay(store, PubSubBus(publisher, fake.topic("kfp-bot-events"))))
        handlers = Handlers()
        verifier = PushTokenVerifier(AUDIENCE, DEFAULT_PUSH_ACCOUNT, certs_url=signer.certs_url)
        app = create_app(settings, services)
        app.register_blueprint(push_blueprint(settings, services, [BuildNotifications()], handlers.dispatch,
                                              on_error=handlers.on_error, verifier=verifier))
        with serve(app) as server:
            yield Bot(server, fake, signer, handlers, services, db_path)
        publisher.stop()
        publisher.transport.close()


def post_webhook(bot: Bot, delivery_id: str) -> requests.Response:
    body = json.dumps(load_payload("pull_request.opened")).encode()
    return requests.post(f"{bot.server.url}/github/webhook", data=body,
                         headers=delivery_headers("pull_request", body, SECRET, delivery_id=delivery_id),
                         timeout=30)


def pull_request_event(delivery_id: str) -> PullRequestEvent:
    event = parse_event("pull_request", delivery_id, load_payload("pull_request.opened"))
    assert isinstance(event, PullRequestEvent)
    return event


def our_message(event: Event) -> tuple[bytes, dict[str, str]]:
    return json.dumps(event_to_dict(event)).encode(), {"kind": event.kind.value, "key": event.key}


def envelope(message_id: str, data: bytes, attributes: Mapping[str, str] | None = None, *,
             subscription: str = "projects/test-project/subscriptions/kfp-bot-push") -> dict[str, Any]:
    return {"message": {"data": base64.b64encode(data).decode(), "attributes": dict(attributes or {}),
                        "messageId": message_id, "publishTime": "2024-05-01T12:00:00Z"},
            "subscription": subscription}


def outcomes(bot: Bot, message_id: str) -> list[tuple[int, str]]:
    return [(a.status, json.loads(a.body)["status"] if a.body.startswith("{") else a.body)
            for a in bot.fake.attempts_for(message_id)]


# -- the way through: webhook → topic → push → handlers ------------------------------------------

def test_a_webhook_reaches_the_handlers_once_through_pubsub(bot: Bot) -> None:
    bot.subscribe()

    assert post_webhook(bot, "d-1").status_code == 202
    assert bot.fake.wait_idle()

    [message] = bot.fake.messages
    assert bot.handlers.dispatched == [pull_request_event("d-1")]
    assert outcomes(bot, message.message_id) == [(200, "processed")]


def test_a_second_delivery_of_a_message_is_acknowledged_and_not_processed_again(
        bot: Bot, caplog: pytest.LogCaptureFixture) -> None:
    bot.subscribe()
    message = bot.fake.deliver(*our_message(RunStart("run-1")), topic="kfp-bot-events")
    assert bot.fake.wait_idle()

    with caplog.at_level(logging.INFO, LOGGER):
        bot.fake.redeliver(message.message_id)
        assert bot.fake.wait_idle()

    assert bot.handlers.dispatched == [RunStart("run-1")]
    assert outcomes(bot, message.message_id) == [(200, "processed"), (200, "duplicate")]
    assert f"duplicate message {message.message_id} (run-start:run-1) acknowledged" in caplog.messages


def test_the_same_message_id_on_two_subscriptions_is_two_messages(bot: Bot) -> None:
    # Message ids are unique within a topic only
    # (https://cloud.google.com/pubsub/docs/reference/rest/v1/PubsubMessage): the events topic and
    # cloud-builds may both hand out id 7, and each of the bot's push subscriptions reads its own topic.
    events = "projects/test-project/subscriptions/kfp-bot-events-push"
    builds = "projects/test-project/subscriptions/kfp-bot-cloud-builds-push"
    build = {"id": "b-1", "status": "SUCCESS", "tags": ["kfp-bot", "run-id_run-9"]}

    answers = [bot.post(envelope("7", *our_message(RunStart("run-1")), subscription=events)),
               bot.post(envelope("7", json.dumps(build).encode(), {"buildId": "b-1", "status": "SUCCESS"},
                                 subscription=builds)),
               bot.post(envelope("7", *our_message(RunStart("run-1")), subscription=events))]

    assert [(a.status_code, a.json()["status"]) for a in answers] == [
        (200, "processed"), (200, "processed"), (200, "duplicate")]
    assert bot.handlers.dispatched == [
        RunStart("run-1"), BuildStatus(run_id="run-9", state=RunState.COMPILING, detail="images built")]


def test_a_notification_a_decoder_claims_is_dispatched(bot: Bot) -> None:
    bot.subscribe()
    build = {"id": "b-1", "status": "SUCCESS", "tags": ["kfp-bot", "run-id_run-9"]}

    message = bot.fake.deliver(json.dumps(build).encode(), {"buildId": "b-1", "status": "SUCCESS"})

    assert bot.fake.wait_idle()
    assert bot.handlers.dispatched == [BuildStatus(run_id="run-9", state=RunState.COMPILING, detail="images built")]
    assert outcomes(bot, message.message_id) == [(200, "processed")]


def test_an_unknown_notification_is_acknowledged_and_logged(bot: Bot, caplog: pytest.LogCaptureFixture) -> None:
    bot.subscribe()

    with caplog.at_level(logging.WARNING, LOGGER):
        message = bot.fake.deliver(b'{"name": "x.txt"}', {"eventType": "OBJECT_FINALIZE"}, topic="gcs")
        assert bot.fake.wait_idle()

    assert bot.handlers.dispatched == []
    assert outcomes(bot, message.message_id) == [(200, "unknown")]
    assert (f"unknown notification message {message.message_id} from projects/test-project/subscriptions/"
            "kfp-bot-push (attributes: eventType) acknowledged") in caplog.messages


# -- tokens ---------------------------------------------------------------------------------------

def test_a_push_without_a_token_is_rejected_and_never_processed(bot: Bot, caplog: pytest.LogCaptureFixture) -> None:
    bot.subscribe(signer=None, max_attempts=2)

    with caplog.at_level(logging.WARNING, LOGGER):
        message = bot.fake.deliver(*our_message(RunStart("run-1")), topic="kfp-bot-events")
        assert bot.fake.wait_idle()

    assert [a.status for a in bot.fake.attempts_for(message.message_id)] == [401, 401]
    assert bot.fake.dead_letters == [message]
    assert bot.handlers.dispatched == []
    assert ("push request refused (401): push request without an Authorization header (enable authentication "
            "(OIDC token) on the push subscription)") in caplog.messages


@pytest.mark.parametrize(("token", "status", "reason"), [
    (lambda s: s.forged_token(AUDIENCE, DEFAULT_PUSH_ACCOUNT), 401,
     "invalid push token: Could not verify token signature"),
    (lambda s: s.token("https://elsewhere.example.com/push", DEFAULT_PUSH_ACCOUNT), 401,
     "invalid push token: Token has wrong audience https://elsewhere.example.com/push"),
    (lambda s: s.token(AUDIENCE, DEFAULT_PUSH_ACCOUNT, issued_at=1_600_000_000), 401,
     "invalid push token: Token expired"),
    (lambda s: s.token(AUDIENCE, "someone@evil.example.com"), 403,
     f"push token is for 'someone@evil.example.com', expected {DEFAULT_PUSH_ACCOUNT}"),
    (lambda s: s.token(AUDIENCE, DEFAULT_PUSH_ACCOUNT, email_verified=False), 403,
     f"push token email {DEFAULT_PUSH_ACCOUNT} is not verified"),
    (lambda s: s.token(AUDIENCE, DEFAULT_PUSH_ACCOUNT, issuer="https://evil.example.com"), 403,
     "push token issued by 'https://evil.example.com', expected one of"),
])
def test_a_bad_token_is_refused(bot: Bot, token: Any, status: int, reason: str) -> None:
    response = bot.post(envelope("m-1", *our_message(RunStart("run-1"))), token=token(bot.signer))

    assert response.status_code == status
    assert response.json()["reason"].startswith(reason)
    assert bot.handlers.dispatched == []


def test_a_token_that_is_not_bearer_is_refused(bot: Bot) -> None:
    response = requests.post(bot.push_url, json=envelope("m-1", b"{}"),
                             headers={"Authorization": "Basic a2ZwOmJvdA=="}, timeout=30)

    assert response.status_code == 401
    assert response.json()["reason"] == "push request Authorization is not a Bearer token (scheme 'Basic')"


def test_the_certificates_are_fetched_once_while_cacheable(bot: Bot) -> None:
    bot.subscribe()
    for number in range(3):
        bot.fake.deliver(*our_message(RunStart(f"run-{number}")), topic="kfp-bot-events")
    assert bot.fake.wait_idle()

    assert len(bot.handlers.dispatched) == 3
    assert bot.signer.cert_fetches == 1


def test_unreachable_certificates_are_503_so_pubsub_retries(bot: Bot, settings: Settings) -> None:
    with serve(Flask(__name__)) as gone:
        certs_url = f"{gone.url}/oauth2/v1/certs"
    app = create_app(settings, bot.services)
    verifier = PushTokenVerifier(AUDIENCE, DEFAULT_PUSH_ACCOUNT, certs_url=certs_url)
    app.register_blueprint(push_blueprint(settings, bot.services, [], bot.handlers.dispatch,
                                          on_error=bot.handlers.on_error, verifier=verifier))

    with serve(app) as server:
        response = requests.post(server.url + PUSH_PATH, json=envelope("m-1", b"{}"),
                                 headers={"Authorization": f"Bearer {bot.token()}"}, timeout=30)

    assert response.status_code == 503
    assert response.json()["reason"].startswith(f"could not fetch the token certificates from {certs_url}")


def test_without_verification_a_push_needs_no_token(tmp_path: Path, bot: Bot) -> None:
    settings = make_settings(tmp_path, pubsub_verify_token=False)
    app = create_app(settings, bot.services)
    app.register_blueprint(push_blueprint(settings, bot.services, [], bot.handlers.dispatch,
                                          on_error=bot.handlers.on_error))

    with serve(app) as server:
        response = requests.post(server.url + PUSH_PATH, json=envelope("m-1", *our_message(RunStart("run-1"))),
                                 timeout=30)

    assert (response.status_code, response.json()["status"]) == (200, "processed")
    assert bot.handlers.dispatched == [RunStart("run-1")]


# -- messages that can never be processed are acknowledged ---------------------------------------

@pytest.mark.parametrize(("raw", "logged"), [
    (b"payload=1", "malformed push message (no id) from (no subscription) acknowledged: body is not JSON"),
    (b"[]", "malformed push message (no id) from (no subscription) acknowledged: body is JSON but not an object"),
    (b'{"subscription": "projects/p/subscriptions/s"}',
     "malformed push message (no id) from projects/p/subscriptions/s acknowledged: no 'message' object"),
    (b'{"message": {"data": "e30="}}', "malformed push message (no id) from (no subscription) acknowledged: "
                                       "the message has no messageId"),
    (b'{"message": {"messageId": "m-2", "data": "not base64!"}}',
     "malformed push message m-2 from (no subscription) acknowledged: message data is not base64"),
    (b'{"message": {"messageId": "m-3", "attributes": {"kind": 1}}}',
     "malformed push message m-3 from (no subscription) acknowledged: message attributes are not a map of strings"),
    (json.dumps(envelope("m-4", b'{"kind": "run.start", "data": {}}', {"kind": "run.start"})).encode(),
     "malformed push message m-4 from projects/test-project/subscriptions/kfp-bot-push acknowledged: "
     "run.start data is not a kfp-bot event"),
    (json.dumps(envelope("m-5", b"not json", {"kind": "pull_request"})).encode(),
     "malformed push message m-5 from projects/test-project/subscriptions/kfp-bot-push acknowledged: "
     "pull_request data is not a kfp-bot event"),
])
def test_a_malformed_message_is_acknowledged_and_logged(bot: Bot, caplog: pytest.LogCaptureFixture,
                                                        raw: bytes, logged: str) -> None:
    with caplog.at_level(logging.ERROR, LOGGER):
        response = bot.post(None, raw=raw)

    assert (response.status_code, response.json()["status"]) == (200, "malformed")
    assert any(line.startswith(logged) for line in caplog.messages), caplog.messages
    assert bot.handlers.dispatched == []


# -- handler failures ----------------------------------------------------------------------------

@pytest.mark.parametrize("error", [
    StoreError("store: transition failed on sqlite:///bot.db: database is locked"),
    BusUnavailable("could not publish run-start:run-1: UNAVAILABLE"),
    api_exceptions.ServiceUnavailable("Vertex AI is unavailable"),
])
def test_a_transient_failure_is_503_and_the_redelivery_is_processed(bot: Bot, error: Exception) -> None:
    bot.subscribe()
    bot.handlers.raise_next.append(error)

    message = bot.fake.deliver(*our_message(RunStart("run-1")), topic="kfp-bot-events")
    assert bot.fake.wait_idle()

    assert outcomes(bot, message.message_id) == [(503, "retry"), (200, "processed")]
    assert bot.handlers.dispatched == [RunStart("run-1"), RunStart("run-1")]
    assert bot.handlers.failures == []


def test_a_store_outage_before_processing_is_503_and_the_redelivery_is_processed(bot: Bot) -> None:
    bot.subscribe(max_attempts=1)
    with sqlite3.connect(bot.db_path) as db:
        db.execute("ALTER TABLE externals RENAME TO externals_away")

    message = bot.fake.deliver(*our_message(RunStart("run-1")), topic="kfp-bot-events")
    assert bot.fake.wait_idle()
    assert outcomes(bot, message.message_id) == [(503, "retry")]
    assert bot.handlers.dispatched == []

    with sqlite3.connect(bot.db_path) as db:
        db.execute("ALTER TABLE externals_away RENAME TO externals")
    bot.fake.redeliver(message.message_id)
    assert bot.fake.wait_idle()

    assert bot.handlers.dispatched == [RunStart("run-1")]
    assert outcomes(bot, message.message_id)[-1] == (200, "processed")


@pytest.mark.parametrize("error", [RunError("Vertex AI refused the job: invalid pipeline root"),
                                   RuntimeError("a bug in a handler")])
def test_a_permanent_failure_is_made_visible_then_acknowledged_once(bot: Bot, error: Exception) -> None:
    bot.subscribe()
    bot.handlers.raise_next.append(error)
    message = bot.fake.deliver(*our_message(RunStart("run-1")), topic="kfp-bot-events")
    assert bot.fake.wait_idle()

    bot.fake.redeliver(message.message_id)
    assert bot.fake.wait_idle()

    assert outcomes(bot, message.message_id) == [(200, "failed"), (200, "duplicate")]
    assert bot.handlers.failures == [(RunStart("run-1"), error)]
    assert bot.handlers.dispatched == [RunStart("run-1")]


def test_when_reporting_a_failure_fails_transiently_pubsub_retries(bot: Bot) -> None:
    bot.subscribe()
    bot.handlers.raise_next.append(RuntimeError("a bug"))
    bot.handlers.on_error_raises.append(StoreError("store: transition failed: database is locked"))

    message = bot.fake.deliver(*our_message(RunStart("run-1")), topic="kfp-bot-events")
    assert bot.fake.wait_idle()

    assert outcomes(bot, message.message_id) == [(503, "retry"), (200, "processed")]


# -- configuration -------------------------------------------------------------------------------

def test_verification_without_an_audience_is_a_configuration_error(tmp_path: Path, bot: Bot) -> None:
    settings = Settings(webhook_secret=SECRET, data_dir=tmp_path)

    with pytest.raises(ConfigurationError, match="set KFP_BOT_PUBSUB_PUSH_AUDIENCE and "
                                                 "KFP_BOT_PUBSUB_PUSH_SERVICE_ACCOUNT"):
        push_blueprint(settings, bot.services, [], bot.handlers.dispatch, on_error=bot.handlers.on_error)
    with pytest.raises(ConfigurationError, match="the push endpoint needs the handler context"):
        push_blueprint_for_services(make_settings(tmp_path, bus=BusKind.PUBSUB), bot.services)


def test_a_step_past_its_budget_is_answered_503_and_never_runs_twice_at_once(tmp_path: Path, bot: Bot) -> None:
    settings = make_settings(tmp_path, pubsub_verify_token=False, pubsub_step_seconds=0.2)
    release = threading.Event()
    steps: list[Event] = []

    def slow(event: Event) -> None:  # a clone of a large repository, say
        steps.append(event)
        assert release.wait(30)

    app = create_app(settings, bot.services)
    app.register_blueprint(push_blueprint(settings, bot.services, [], slow, on_error=bot.handlers.on_error))
    body = envelope("m-1", *our_message(RunStart("run-1")))

    with serve(app) as server:
        def push() -> tuple[int, str]:
            answer = requests.post(server.url + PUSH_PATH, json=body, timeout=30)
            return answer.status_code, answer.json()["status"]

        first = push()            # the budget runs out: the step goes on
        redelivered = push()      # Pub/Sub delivers it again meanwhile
        release.set()
        for _ in range(100):      # the step ends and drops its lease
            if push() == (200, "duplicate"):
                break
            threading.Event().wait(0.05)
        last = push()

    assert (first, redelivered, last) == ((503, "in-progress"), (503, "in-progress"), (200, "duplicate"))
    assert steps == [RunStart("run-1")]


# -- a step and its next steps complete together; a row published twice runs once ------------------

NEXT = BuildStatus(run_id="run-1", state=RunState.COMPILING, detail="images built")


def publish_next_step(bot: Bot, before: list[str] | None = None) -> None:
    """Handlers that answer RunStart with NEXT on the bus; `before` lists SQL run before publishing."""
    def step(event: Event) -> None:
        if isinstance(event, RunStart):
            if before:
                with sqlite3.connect(bot.db_path) as db:
                    db.execute(before.pop(0))
            bot.services.bus.publish(NEXT)

    bot.handlers.then = step


def test_the_next_step_is_queued_when_the_step_completes_and_relayed_with_its_row_id(bot: Bot) -> None:
    publish_next_step(bot)
    bot.subscribe()

    first = bot.fake.deliver(*our_message(RunStart("run-1")), topic="kfp-bot-events")
    assert bot.fake.wait_idle()

    assert bot.handlers.dispatched == [RunStart("run-1"), NEXT]
    [relayed] = [m for m in bot.fake.messages_on("kfp-bot-events") if m.message_id != first.message_id]
    assert relayed.attributes[STEP_ATTRIBUTE].isdigit()
    assert outcomes(bot, relayed.message_id) == [(200, "processed")]
    assert bot.store.pending_work() == 0


def test_a_step_that_cannot_be_recorded_queues_nothing_and_runs_again(bot: Bot) -> None:
    # The outbox is unavailable as the step completes: remembering the message and queueing the
    # next step fail together, Pub/Sub is answered 503, and the redelivery runs the step again.
    publish_next_step(bot, before=["ALTER TABLE outbox RENAME TO outbox_away",
                                   "ALTER TABLE outbox_away RENAME TO outbox"])
    bot.subscribe()

    message = bot.fake.deliver(*our_message(RunStart("run-1")), topic="kfp-bot-events")
    assert bot.fake.wait_idle()

    assert outcomes(bot, message.message_id) == [(503, "retry"), (200, "processed")]
    assert bot.handlers.dispatched == [RunStart("run-1"), RunStart("run-1"), NEXT]  # the next step once
    assert len(bot.fake.messages_on("kfp-bot-events")) == 2


def test_an_outbox_row_published_twice_runs_once(bot: Bot) -> None:
    # A relay that stopped between Pub/Sub's answer and marking the row sent publishes it again:
    # a new message id, the same row.
    data, attributes = our_message(RunStart("run-1"))
    attributes[STEP_ATTRIBUTE] = "41"

    answers = [bot.post(envelope(message_id, data, attributes)) for message_id in ("m-1", "m-2")]
    other_row = bot.post(envelope("m-3", data, {**attributes, STEP_ATTRIBUTE: "42"}))

    assert [(a.status_code, a.json()["status"]) for a in answers] == [(200, "processed"), (200, "duplicate")]
    assert (other_row.status_code, other_row.json()["status"]) == (200, "processed")
    assert bot.handlers.dispatched == [RunStart("run-1"), RunStart("run-1")]
