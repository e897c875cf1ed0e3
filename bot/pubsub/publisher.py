"""The production event bus: each accepted event is published to the events topic on Pub/Sub.

`publish` waits until Pub/Sub has the message (the library retries UNAVAILABLE and the other
transient codes itself, within our time limit), so that a failure reaches the webhook as
`BusUnavailable` and GitHub sees a 503 it can redeliver: an event the bot answered 202 for is
never only in memory. Delivery back to the handlers is the push subscription's job
(`bot.pubsub.push`), so there are no worker threads here: `start` has nothing to run and
`stop` only refuses later publishes.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import threading
from typing import TYPE_CHECKING, Any

from bot.config import ConfigurationError
from bot.embedded_bus import BusUnavailable
from bot.pubsub.envelope import STEP_ATTRIBUTE
from deploy.google_clients import google_client
from handlers.event_codec import event_to_dict
from handlers.models import Event

if TYPE_CHECKING:
    from google.auth.credentials import Credentials
    from google.cloud.pubsub_v1 import PublisherClient

    from bot.config import Settings

log = logging.getLogger("kfp_bot.pubsub")

# GitHub gives up on a webhook after 10 s: the publish, retries and grace included, must fit.
DEFAULT_TIMEOUT_SECONDS = 5.0
# The library's retry gives up after the timeout; waiting a little longer lets its own error
# (with the gRPC status) arrive instead of a bare timeout.
_WAIT_GRACE_SECONDS = 2.0


class PubSubBus:
    """Publishes events as JSON (`event_to_dict`) with `kind`, `key` and `delivery_id` attributes."""

    def __init__(self, publisher: PublisherClient, topic_path: str, *,
                 timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        """`topic_path` is `projects/<project>/topics/<topic>`; a publish gives up after `timeout_seconds`."""
        if timeout_seconds <= 0:
            raise ValueError("a publish timeout must be positive")
        self._publisher = publisher
        self._topic_path = topic_path
        self._timeout = timeout_seconds
        self._retry = _bounded_library_retry(publisher, timeout_seconds)
        self._lock = threading.Lock()
        self._stopped = False

    @classmethod
    def from_settings(cls, settings: Settings, publisher: PublisherClient, *,
                      timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS) -> PubSubBus:
        """The bus for KFP_BOT_GCP_PROJECT and KFP_BOT_EVENTS_TOPIC (a name or a full topic path)."""
        if not settings.gcp_project and not settings.events_topic.startswith("projects/"):
            raise ConfigurationError("KFP_BOT_BUS=pubsub needs KFP_BOT_GCP_PROJECT")
        return cls(publisher, topic_path(settings.gcp_project or "", settings.events_topic),
                   timeout_seconds=timeout_seconds)

    @property
    def topic_path(self) -> str:
        """The full path of the events topic."""
        return self._topic_path

    @property
    def timeout_seconds(self) -> float:
        """How long a publish may take, the library's retries included."""
        return self._timeout

    def start(self) -> None:
        """Nothing to start: Pub/Sub pushes events to `/pubsub/push`."""

    def stop(self, timeout: float = 30.0) -> bool:
        """Refuse later publishes; True, since nothing is buffered (publishes under way end by their timeout)."""
        with self._lock:
            self._stopped = True
        return True

    def publish(self, event: Event, *, step: int | None = None) -> None:
        """Publish `event` and wait for Pub/Sub's message id; `BusUnavailable` when it did not get it.

        `step`: the outbox row the event comes from, carried as an attribute so that the push
        endpoint runs a row published twice only once (`bot.pubsub.envelope.message_key`)."""
        with self._lock:
            if self._stopped:
                raise BusUnavailable(f"the event bus is stopped: {event.key} was not published")
        data = json.dumps(event_to_dict(event), separators=(",", ":")).encode()
        attributes = message_attributes(event)
        if step is not None:
            attributes[STEP_ATTRIBUTE] = str(step)
        try:
            future = self._publisher.publish(self._topic_path, data, retry=self._retry,
                                             timeout=self._timeout, **attributes)
            message_id = future.result(timeout=self._timeout + _WAIT_GRACE_SECONDS)
        except concurrent.futures.TimeoutError:
            raise BusUnavailable(f"Pub/Sub did not confirm {event.key} on {self.topic_path} within "
                                 f"{self._timeout + _WAIT_GRACE_SECONDS:g} s", hint="retry later") from None
        except Exception as exc:  # any failure of the client means the event is not on the topic
            raise BusUnavailable(f"could not publish {event.key} to {self.topic_path}: {_describe(exc)}",
                                 hint="retry later") from exc
        log.debug("published %s as Pub/Sub message %s", event.key, message_id)


def message_attributes(event: Event) -> dict[str, str]:
    """The attributes an event's message carries: what `/pubsub/push` and filters route on."""
    attributes = {"kind": event.kind.value, "key": event.key}
    delivery_id = getattr(event, "delivery_id", None)
    if delivery_id:
        attributes["delivery_id"] = str(delivery_id)
    return attributes


def topic_path(project: str, topic: str) -> str:
    """`projects/<project>/topics/<topic>`; a topic already given as a full path is kept."""
    if topic.startswith("projects/"):
        return topic
    return f"projects/{project}/topics/{topic}"


def make_publisher(endpoint: str | None = None, *,
                   credentials: Credentials | None = None) -> PublisherClient:
    """A Pub/Sub publisher client for `endpoint` (KFP_BOT_PUBSUB_ENDPOINT) or Google's default.

    A loopback endpoint (an emulator, a test fake) gets an insecure channel and anonymous
    credentials; any other endpoint (a regional one) TLS and `credentials` or the application
    default credentials. With no endpoint the library's own defaults apply, which include
    honouring PUBSUB_EMULATOR_HOST.
    """
    from google.cloud import pubsub_v1
    from google.pubsub_v1.services.publisher.transports.grpc import PublisherGrpcTransport

    return google_client(pubsub_v1.PublisherClient, endpoint, transport=PublisherGrpcTransport, credentials=credentials,
                         refuse=lambda why: ConfigurationError(
                             f"KFP_BOT_BUS=pubsub: no Google Cloud credentials for Pub/Sub: {why}",
                             hint="run with a service account on Google Cloud, set GOOGLE_APPLICATION_CREDENTIALS, "
                                  "or point KFP_BOT_PUBSUB_ENDPOINT (or PUBSUB_EMULATOR_HOST) at an emulator"))


def _bounded_library_retry(publisher: PublisherClient, timeout_seconds: float) -> Any:
    """The library's own retry policy for Publish, with its total time cut to `timeout_seconds`.

    Without the cut the library keeps retrying for ten minutes after the webhook has answered
    503, and a message published that late would duplicate GitHub's redelivery. The policy is
    read the way the client itself reads it for ordered publishing; a client without it keeps
    the library default (the wait is still bounded by `result(timeout)`).
    """
    from google.api_core import gapic_v1

    try:
        transport = publisher._transport
        retry = transport._wrapped_methods[transport.publish]._retry
    except (AttributeError, KeyError):
        return gapic_v1.method.DEFAULT
    if retry is None:
        return None
    return retry.with_timeout(timeout_seconds)


def _describe(exc: BaseException) -> str:
    """`PERMISSION_DENIED: ...` for gRPC errors (the cause of an exhausted retry), else type and text."""
    from google.api_core.exceptions import GoogleAPICallError, RetryError

    if isinstance(exc, RetryError) and exc.cause is not None:
        return f"gave up retrying: {_describe(exc.cause)}"
    if isinstance(exc, GoogleAPICallError):
        code = getattr(exc.grpc_status_code, "name", None) or exc.code
        return f"{code}: {exc.message}"
    return f"{type(exc).__name__}: {exc}"
