"""A local Pub/Sub: the `google.pubsub.v1.Publisher` gRPC service, and push subscriptions.

`FakePubSub` serves Publish on 127.0.0.1 with the client library's own message types, so the
real `google-cloud-pubsub` PublisherClient talks to it over a real socket (insecure channel).
It records every PublishRequest, assigns message ids and publish times, and can be told to
fail the next calls with a gRPC status. As a push subscription (`push_to`) it POSTs each
message to an endpoint in the standard push envelope with a signed OIDC token
(`tests.fakes.oidc.OidcSigner`), redelivers on any non-2xx answer with a short backoff, and
dead-letters a message after `max_attempts`. `deliver` publishes a message as another
publisher would (Cloud Build notifications, a log sink), and `redeliver` pushes a message
again, as at-least-once delivery may.
"""

from __future__ import annotations

import base64
import concurrent.futures
import heapq
import itertools
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import grpc
import requests
from google.pubsub_v1.types import PublishRequest, PublishResponse

from tests.fakes.oidc import OidcSigner

SERVICE = "google.pubsub.v1.Publisher"
DEFAULT_PROJECT = "test-project"
DEFAULT_PUSH_ACCOUNT = "kfp-bot-push@test-project.iam.gserviceaccount.com"
# What Pub/Sub takes as an acknowledgement of a push.
_ACK_STATUSES = frozenset({102, 200, 201, 202, 204})


@dataclass(frozen=True)
class StoredMessage:
    """A message the fake accepted, with the id and time it gave it."""

    message_id: str
    topic: str
    data: bytes
    attributes: Mapping[str, str]
    publish_time: str

    @property
    def json(self) -> Any:
        """The data parsed as JSON."""
        return json.loads(self.data)


@dataclass(frozen=True)
class PublishCall:
    """One Publish RPC as received, and the status it got (`grpc.StatusCode.OK` when accepted)."""

    request: PublishRequest
    code: grpc.StatusCode
    message_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class PushAttempt:
    """One POST of a message to the push endpoint; status 0 when the endpoint could not be reached."""

    message_id: str
    attempt: int
    status: int
    body: str = ""


@dataclass
class _Fault:
    code: grpc.StatusCode
    times: int
    detail: str


@dataclass(frozen=True)
class _Push:
    url: str
    audience: str
    email: str
    signer: OidcSigner | None
    subscription: str
    topic: str | None
    max_attempts: int
    backoff_seconds: float
    timeout_seconds: float


@dataclass(order=True)
class _Due:
    due: float
    seq: int
    message: StoredMessage = field(compare=False)
    attempt: int = field(compare=False)


class FakePubSub:
    """The Publisher service and one push subscription; use as a context manager."""

    def __init__(self, project: str = DEFAULT_PROJECT) -> None:
        self.project = project
        self._lock = threading.Condition()
        self._ids = itertools.count(4_000_000_000_001)
        self._seq = itertools.count()
        self._faults: list[_Fault] = []
        self._calls: list[PublishCall] = []
        self._messages: list[StoredMessage] = []
        self._attempts: list[PushAttempt] = []
        self._acked: list[str] = []
        self._dead: list[StoredMessage] = []
        self._due: list[_Due] = []
        self._busy = 0
        self._push: _Push | None = None
        self._closing = False
        self._server: grpc.Server | None = None
        self._worker: threading.Thread | None = None
        self.port = 0

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Self:
        """Serve Publish on an ephemeral port of 127.0.0.1 and start the push worker."""
        handler = grpc.method_handlers_generic_handler(SERVICE, {
            "Publish": grpc.unary_unary_rpc_method_handler(
                self._publish, request_deserializer=PublishRequest.deserialize,
                response_serializer=PublishResponse.serialize)})
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="fake-pubsub")
        self._server = grpc.server(pool)
        self._server.add_generic_rpc_handlers((handler,))
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()
        self._worker = threading.Thread(target=self._push_loop, name="fake-pubsub-push", daemon=True)
        self._worker.start()
        return self

    def stop(self) -> None:
        """Stop serving and pushing; messages not yet delivered stay undelivered."""
        with self._lock:
            self._closing = True
            self._lock.notify_all()
        if self._server is not None:
            self._server.stop(grace=None).wait(10)
        if self._worker is not None:
            self._worker.join(timeout=10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        """`127.0.0.1:<port>`, for KFP_BOT_PUBSUB_ENDPOINT or PUBSUB_EMULATOR_HOST."""
        return f"127.0.0.1:{self.port}"

    def topic(self, name: str) -> str:
        """The full path of topic `name` in the fake's project."""
        return f"projects/{self.project}/topics/{name}"

    # -- what was received -----------------------------------------------------------------

    @property
    def calls(self) -> list[PublishCall]:
        """Every Publish RPC, failed ones included, oldest first."""
        with self._lock:
            return list(self._calls)

    @property
    def messages(self) -> list[StoredMessage]:
        """Every message accepted (published or delivered), oldest first."""
        with self._lock:
            return list(self._messages)

    def messages_on(self, topic: str) -> list[StoredMessage]:
        """Messages accepted on `topic` (a name or a full path)."""
        path = topic if topic.startswith("projects/") else self.topic(topic)
        return [m for m in self.messages if m.topic == path]

    @property
    def attempts(self) -> list[PushAttempt]:
        """Every push POST with the status it got, oldest first."""
        with self._lock:
            return list(self._attempts)

    def attempts_for(self, message_id: str) -> list[PushAttempt]:
        """The push POSTs of one message, oldest first."""
        return [a for a in self.attempts if a.message_id == message_id]

    @property
    def acked(self) -> list[str]:
        """Ids of pushed messages the endpoint acknowledged (2xx), in order (twice if redelivered)."""
        with self._lock:
            return list(self._acked)

    @property
    def dead_letters(self) -> list[StoredMessage]:
        """Messages given up on after `max_attempts` pushes without an acknowledgement."""
        with self._lock:
            return list(self._dead)

    # -- steering ---------------------------------------------------------------------------

    def fail_next(self, code: grpc.StatusCode, times: int = 1, detail: str | None = None) -> None:
        """Answer the next `times` Publish calls with `code` (e.g. UNAVAILABLE, PERMISSION_DENIED)."""
        with self._lock:
            self._faults.append(_Fault(code, times, detail or f"injected {code.name}"))

    def clear_faults(self) -> None:
        """Forget injected failures not used up yet."""
        with self._lock:
            self._faults.clear()

    def push_to(self, url: str, *, signer: OidcSigner | None, audience: str | None = None,
                email: str = DEFAULT_PUSH_ACCOUNT, subscription: str = "kfp-bot-push", topic: str | None = None,
                max_attempts: int = 5, backoff_seconds: float = 0.02, timeout_seconds: float = 60.0) -> None:
        """Push messages accepted from now on (on `topic`, or any) to `url`, like a push subscription.

        Tokens are signed by `signer` for `audience` (default: `url`, as Pub/Sub does) and
        `email`; with no signer the requests carry no Authorization header.
        """
        with self._lock:
            self._push = _Push(url=url, audience=audience or url, email=email, signer=signer,
                               subscription=f"projects/{self.project}/subscriptions/{subscription}",
                               topic=(topic if topic is None or topic.startswith("projects/") else self.topic(topic)),
                               max_attempts=max_attempts, backoff_seconds=backoff_seconds,
                               timeout_seconds=timeout_seconds)

    def deliver(self, data: bytes, attributes: Mapping[str, str] | None = None,
                topic: str = "cloud-builds") -> StoredMessage:
        """Accept a message as if another publisher sent it (and push it when subscribed)."""
        path = topic if topic.startswith("projects/") else self.topic(topic)
        with self._lock:
            return self._accept(path, data, dict(attributes or {}))

    def redeliver(self, message_id: str) -> None:
        """Push an already accepted message again (at-least-once delivery)."""
        with self._lock:
            message = next(m for m in self._messages if m.message_id == message_id)
            self._schedule(message, 1, 0.0)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """True once every message to push was acknowledged or dead-lettered; False after `timeout`."""
        with self._lock:
            return self._lock.wait_for(lambda: not self._due and not self._busy, timeout)

    # -- the Publisher service ---------------------------------------------------------------

    def _publish(self, request: PublishRequest, context: grpc.ServicerContext) -> PublishResponse:
        with self._lock:
            fault = next((f for f in self._faults if f.times > 0), None)
            if fault is not None:
                fault.times -= 1
                self._calls.append(PublishCall(request, fault.code))
                code, detail = fault.code, fault.detail
            else:
                problem = _invalid(request)
                if problem is None:
                    ids = tuple(self._accept(request.topic, m.data, dict(m.attributes)).message_id
                                for m in request.messages)
                    self._calls.append(PublishCall(request, grpc.StatusCode.OK, ids))
                    return PublishResponse(message_ids=list(ids))
                self._calls.append(PublishCall(request, grpc.StatusCode.INVALID_ARGUMENT))
                code, detail = grpc.StatusCode.INVALID_ARGUMENT, problem
        context.abort(code, detail)
        raise AssertionError("unreachable: abort raises")

    def _accept(self, topic: str, data: bytes, attributes: dict[str, str]) -> StoredMessage:
        stamp = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        message = StoredMessage(str(next(self._ids)), topic, bytes(data), attributes, stamp)
        self._messages.append(message)
        push = self._push
        if push is not None and push.topic in (None, topic):
            self._schedule(message, 1, 0.0)
        return message

    # -- the push subscription ---------------------------------------------------------------

    def _schedule(self, message: StoredMessage, attempt: int, delay: float) -> None:
        heapq.heappush(self._due, _Due(time.monotonic() + delay, next(self._seq), message, attempt))
        self._lock.notify_all()

    def _push_loop(self) -> None:
        while True:
            with self._lock:
                while not self._closing and (not self._due or self._due[0].due > time.monotonic()):
                    wait = self._due[0].due - time.monotonic() if self._due else None
                    self._lock.wait(wait)
                if self._closing:
                    return
                item = heapq.heappop(self._due)
                push = self._push
                self._busy += 1
            status, body = 0, "no push subscription"
            try:
                if push is not None:
                    status, body = self._post(push, item)
            finally:
                with self._lock:
                    self._settle(push, item, status, body)
                    self._busy -= 1
                    self._lock.notify_all()

    def _settle(self, push: _Push | None, item: _Due, status: int, body: str) -> None:
        self._attempts.append(PushAttempt(item.message.message_id, item.attempt, status, body))
        if status in _ACK_STATUSES:
            self._acked.append(item.message.message_id)
        elif push is not None and item.attempt < push.max_attempts:
            delay = min(push.backoff_seconds * 2 ** (item.attempt - 1), 1.0)
            self._schedule(item.message, item.attempt + 1, delay)
        else:
            self._dead.append(item.message)

    def _post(self, push: _Push, item: _Due) -> tuple[int, str]:
        message = item.message
        body = {"message": {"data": base64.b64encode(message.data).decode(), "messageId": message.message_id,
                            "message_id": message.message_id, "publishTime": message.publish_time,
                            "publish_time": message.publish_time},
                "subscription": push.subscription, "deliveryAttempt": item.attempt}
        if message.attributes:
            body["message"]["attributes"] = dict(message.attributes)
        headers = {"Content-Type": "application/json",
                   "User-Agent": "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)"}
        if push.signer is not None:
            headers["Authorization"] = f"Bearer {push.signer.token(push.audience, push.email)}"
        try:
            response = requests.post(push.url, data=json.dumps(body), headers=headers,
                                     timeout=push.timeout_seconds)
        except requests.RequestException as exc:
            return 0, f"{type(exc).__name__}: {exc}"
        return response.status_code, response.text


def _invalid(request: PublishRequest) -> str | None:
    """Pub/Sub's own checks of a Publish request that the client could get wrong."""
    parts = request.topic.split("/")
    if len(parts) != 4 or parts[0] != "projects" or parts[2] != "topics" or not parts[1] or not parts[3]:
        return f"Invalid resource name given (name={request.topic})"
    if not request.messages:
        return "At least one message is required"
    for message in request.messages:
        if not message.data and not message.attributes:
            return "A message must have data or at least one attribute"
        for key, value in message.attributes.items():
            if len(key.encode()) > 256 or len(value.encode()) > 1024:
                return f"Attribute {key[:40]!r} is too long"
    return None
