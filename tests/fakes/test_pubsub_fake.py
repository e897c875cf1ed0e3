"""The Pub/Sub fake speaks Publish to the real client library and pushes like a push subscription."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from flask import Flask, request
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions
from google.auth.credentials import AnonymousCredentials
from google.auth.transport.requests import Request
from google.cloud import pubsub_v1
from google.oauth2 import id_token
from google.pubsub_v1.services.publisher.transports.grpc import PublisherGrpcTransport

from tests.fakes.oidc import OidcSigner
from tests.fakes.pubsub import DEFAULT_PUSH_ACCOUNT, FakePubSub
from tests.support.server import serve


class Receiver:
    """A push endpoint that answers the scripted statuses (then 204) and keeps what it got."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.received: list[tuple[dict[str, str], Any]] = []
        self._lock = threading.Lock()
        self.app = Flask(__name__)
        self.app.add_url_rule("/push", "push", self._push, methods=["POST"])

    def _push(self) -> tuple[str, int]:
        with self._lock:
            self.received.append((dict(request.headers), request.get_json()))
            return "", self.statuses.pop(0) if self.statuses else 204


@pytest.fixture
def fake() -> Iterator[FakePubSub]:
    with FakePubSub() as fake:
        yield fake


@pytest.fixture
def signer() -> Iterator[OidcSigner]:
    with OidcSigner() as signer:
        yield signer


@pytest.fixture
def publisher(fake: FakePubSub) -> Iterator[pubsub_v1.PublisherClient]:
    transport = PublisherGrpcTransport(channel=grpc.insecure_channel(fake.endpoint),
                                       credentials=AnonymousCredentials())
    client = pubsub_v1.PublisherClient(transport=transport)
    yield client
    client.stop()
    transport.close()


def serve_receiver(receiver: Receiver) -> Any:
    return serve(receiver.app)


def test_the_real_client_publishes_and_the_fake_records_each_message(
        fake: FakePubSub, publisher: pubsub_v1.PublisherClient) -> None:
    topic = fake.topic("kfp-bot-events")

    first = publisher.publish(topic, b'{"n": 1}', kind="run.start").result(timeout=30)
    second = publisher.publish(topic, b'{"n": 2}').result(timeout=30)

    assert [m.message_id for m in fake.messages] == [first, second]
    assert [(m.topic, m.json, dict(m.attributes)) for m in fake.messages] == [
        (topic, {"n": 1}, {"kind": "run.start"}), (topic, {"n": 2}, {})]
    assert all(call.code is grpc.StatusCode.OK for call in fake.calls)


def test_an_unavailable_publish_is_retried_by_the_library(
        fake: FakePubSub, publisher: pubsub_v1.PublisherClient) -> None:
    fake.fail_next(grpc.StatusCode.UNAVAILABLE, times=2)

    message_id = publisher.publish(fake.topic("t"), b"x").result(timeout=30)

    assert [call.code for call in fake.calls] == [grpc.StatusCode.UNAVAILABLE] * 2 + [grpc.StatusCode.OK]
    assert [m.message_id for m in fake.messages] == [message_id]


def test_a_refused_publish_fails_in_the_client_with_the_status(
        fake: FakePubSub, publisher: pubsub_v1.PublisherClient) -> None:
    fake.fail_next(grpc.StatusCode.PERMISSION_DENIED, detail="no pubsub.topics.publish on the topic")

    with pytest.raises(api_exceptions.PermissionDenied, match="no pubsub.topics.publish"):
        publisher.publish(fake.topic("t"), b"x").result(timeout=30)
    with pytest.raises(api_exceptions.InvalidArgument, match="Invalid resource name"):
        publisher.publish("topics/t", b"x").result(timeout=30)
    assert fake.messages == []


def test_push_posts_the_standard_envelope_with_a_token_google_auth_verifies(
        fake: FakePubSub, signer: OidcSigner) -> None:
    receiver = Receiver()
    with serve_receiver(receiver) as server:
        url = f"{server.url}/push"
        fake.push_to(url, signer=signer)
        message = fake.deliver(b'{"status": "SUCCESS"}', {"buildId": "b-1", "status": "SUCCESS"})
        assert fake.wait_idle()

    [(headers, body)] = receiver.received
    assert body == {
        "message": {"data": base64.b64encode(b'{"status": "SUCCESS"}').decode(),
                    "attributes": {"buildId": "b-1", "status": "SUCCESS"},
                    "messageId": message.message_id, "message_id": message.message_id,
                    "publishTime": message.publish_time, "publish_time": message.publish_time},
        "subscription": "projects/test-project/subscriptions/kfp-bot-push",
        "deliveryAttempt": 1,
    }
    scheme, token = headers["Authorization"].split(" ")
    claims = id_token.verify_token(token, Request(), audience=url, certs_url=signer.certs_url)
    assert scheme == "Bearer"
    assert (claims["iss"], claims["email"], claims["email_verified"]) == (
        "https://accounts.google.com", DEFAULT_PUSH_ACCOUNT, True)
    assert fake.acked == [message.message_id]


def test_push_redelivers_until_acknowledged_then_dead_letters(fake: FakePubSub) -> None:
    receiver = Receiver(503, 500, 204, 400, 400, 400)
    with serve_receiver(receiver) as server:
        fake.push_to(f"{server.url}/push", signer=None, max_attempts=3, backoff_seconds=0.001)
        delivered = fake.deliver(b"one")
        assert fake.wait_idle()
        lost = fake.deliver(b"two")
        assert fake.wait_idle()

    assert [(a.attempt, a.status) for a in fake.attempts_for(delivered.message_id)] == [
        (1, 503), (2, 500), (3, 204)]
    assert [(a.attempt, a.status) for a in fake.attempts_for(lost.message_id)] == [(1, 400), (2, 400), (3, 400)]
    assert fake.acked == [delivered.message_id]
    assert fake.dead_letters == [lost]
    assert [body["deliveryAttempt"] for _, body in receiver.received] == [1, 2, 3, 1, 2, 3]
    assert all("Authorization" not in headers for headers, _ in receiver.received)


def test_redeliver_pushes_a_message_again_and_published_messages_are_pushed(
        fake: FakePubSub, publisher: pubsub_v1.PublisherClient) -> None:
    receiver = Receiver()
    with serve_receiver(receiver) as server:
        fake.push_to(f"{server.url}/push", signer=None, topic="kfp-bot-events")
        published = publisher.publish(fake.topic("kfp-bot-events"), b"event", kind="run.start").result(timeout=30)
        fake.deliver(b"other topic", topic="cloud-builds")
        assert fake.wait_idle()
        fake.redeliver(published)
        assert fake.wait_idle()

    assert fake.acked == [published, published]
    assert [base64.b64decode(body["message"]["data"]) for _, body in receiver.received] == [b"event", b"event"]


def test_an_unreachable_endpoint_counts_as_a_failed_push(fake: FakePubSub) -> None:
    with serve(Flask(__name__)) as server:
        url = f"{server.url}/push"
    fake.push_to(url, signer=None, max_attempts=2, backoff_seconds=0.001)

    message = fake.deliver(b"x")

    assert fake.wait_idle()
    assert [a.status for a in fake.attempts_for(message.message_id)] == [0, 0]
    assert fake.dead_letters == [message]


def test_the_signer_serves_cacheable_certificates_and_forged_tokens_do_not_verify(signer: OidcSigner) -> None:
    good = signer.token("aud-1", "a@example.com")
    forged = signer.forged_token("aud-1", "a@example.com")

    assert id_token.verify_token(good, Request(), audience="aud-1", certs_url=signer.certs_url)["email"] == (
        "a@example.com")
    with pytest.raises(auth_exceptions.GoogleAuthError):
        id_token.verify_token(forged, Request(), audience="aud-1", certs_url=signer.certs_url)
    with pytest.raises(auth_exceptions.GoogleAuthError, match="audience"):
        id_token.verify_token(good, Request(), audience="aud-2", certs_url=signer.certs_url)
    certs = Request()(signer.certs_url)
    assert list(json.loads(certs.data)) == [signer.key_id]
    assert "max-age=300" in certs.headers["Cache-Control"]
