"""What `POST /pubsub/push` (`bot.pubsub.push`) does with one push message: the decisions, without Flask.

Pub/Sub push is at-least-once, and every answer that is not 2xx is a nack that Pub/Sub
redelivers (with backoff, until the dead-letter policy takes over), 400 included. So only a
failure that may pass on a retry answers 5xx; a message that can never be processed is
logged with its id and acknowledged. Each message's step runs under a lease and the request
waits for it at most the step budget (`bot.pubsub.steps`), well inside the ack deadline: a
slower step goes on, answered 503 meanwhile, and is never run twice at the same moment.

| the request                                              | answer | what happens                          |
|----------------------------------------------------------|--------|---------------------------------------|
| token missing, unsigned, expired, other audience         | 401    | logged; Pub/Sub retries (misconfig)   |
| valid token of another issuer / account / unverified     | 403    | logged as an error; Pub/Sub retries   |
| token certificates cannot be fetched                     | 503    | Pub/Sub retries                       |
| body is not a push envelope (JSON, message, base64, id)  | 200    | logged with what could be read; acked |
| `kind` attribute of ours but data is not such an event   | 200    | logged; acked                         |
| no `kind` of ours and no decoder claims the message      | 200    | "unknown notification" logged; acked  |
| message id already processed on this subscription        | 200    | duplicate: acked, not processed again |
| its step is running (lease held here or elsewhere)       | 503    | in-progress: nothing run; Pub/Sub     |
|   or ran past the step budget (it goes on)               |        |   delivers it again later             |
| store cannot say whether it was processed                | 503    | Pub/Sub retries                       |
| handlers succeeded                                       | 200    | message remembered, next steps queued |
|                                                          |        |   (one transaction); acked            |
| remembering it (and queueing its next steps) failed      | 503    | nothing queued: the redelivery runs   |
|                                                          |        |   the step again                      |
| handlers raised a transient error (store, bus, backend   | 503    | not remembered: the redelivery is     |
|   unavailable, timeout)                                  |        |   processed                           |
| handlers raised anything else                            | 200    | `on_error(event, exc)` makes it       |
|                                                          |        |   visible (run error, check); acked   |

Processed messages are remembered by subscription *and* message id (`envelope.message_key`):
Pub/Sub makes message ids unique within a topic only, and the bot's four push subscriptions read
four topics, so the same id may arrive from two of them as two different messages; and two
subscriptions of one topic each deliver every message once.

A message our relay published is remembered by subscription and outbox row instead
(`envelope.message_key`): a row published twice arrives under two message ids and runs once.

The events a step's handlers publish (its next steps) are held while it runs
(`OutboxRelay.collecting`) and queued in the outbox in the transaction that remembers the message
as processed (`OutboxStore.complete_step`); the relay publishes them from there. So the step
is complete with its next steps, or not complete and without them: a crash or a 5xx in the
middle never turns the redelivery into a "duplicate" nor queues a next step twice. The run's
state changes and their notifications commit on their own, as the step makes them; a step run
again finds its run moved and moves nothing twice.

Our own events carry a `kind` attribute with an `EventKind` value and `event_to_dict` JSON as
data (`bot.pubsub.publisher`); other messages (Cloud Build's `cloud-builds` topic, the pipeline job
log sink) are offered to each `NotificationDecoder` in turn. The subscriptions must use the
default wrapped payload (not "payload unwrapping").
"""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from http import HTTPStatus
from typing import Protocol

from bot.embedded_bus import BusUnavailable
from bot.logs import log_context
from bot.pubsub.envelope import MalformedEnvelope, PushMessage, message_key, parse_envelope
from bot.pubsub.steps import StepRunner, Wait
from bot.store.errors import StoreError
from handlers.event_codec import event_from_dict
from handlers.models import Event, EventKind
from handlers.ports.events import Ignored, NotificationDecoder
from kfp_bot_errors import KfpBotError

log = logging.getLogger("kfp_bot.pubsub")

MESSAGE_SCOPE = "pubsub-message"
"""Store scope (`get_external`) of processed messages, keyed by `message_key`; the value is the
event key."""

DEFAULT_STEP_SECONDS = 60.0
"""How long a push request waits for its step by default (KFP_BOT_PUBSUB_STEP_SECONDS)."""

_OUR_KINDS = frozenset(kind.value for kind in EventKind)


class PushStore(Protocol):
    """What the push endpoint needs of the store (`bot.store.SqlStore`)."""

    def get_external(self, scope: str, key: str) -> str | None:
        """The value kept under `scope`/`key`, or None."""

    def complete_step(self, scope: str, key: str, value: str, then: Sequence[Event] = (), *,
                      repo: str | None = None) -> tuple[int, ...] | None:
        """Remember `key` as done and queue `then`, atomically; None when it was remembered before."""

    def take_lease(self, scope: str, key: str, owner: str, seconds: float) -> bool:
        """Hold `key` for `owner`; False while someone else holds it."""

    def drop_lease(self, scope: str, key: str, owner: str) -> None:
        """Give up `owner`'s lease on `key`."""


class StepOutbox(Protocol):
    """The bus as a push step sees it (`bot.pubsub.relay.OutboxRelay`): it holds what the step's
    handlers publish until the step completes."""

    def collecting(self) -> AbstractContextManager[list[Event]]:
        """Hold the events published on this thread in the list given."""


class PushOutcome(enum.Enum):
    """What became of one push request; the status code is what Pub/Sub sees."""

    PROCESSED = "processed"
    FAILED = "failed"
    DUPLICATE = "duplicate"
    MALFORMED = "malformed"
    UNKNOWN = "unknown"
    IGNORED = "ignored"
    RETRY = "retry"
    IN_PROGRESS = "in-progress"

    @property
    def status(self) -> int:
        """200 acknowledges; 503 has Pub/Sub redeliver."""
        if self in (PushOutcome.RETRY, PushOutcome.IN_PROGRESS):
            return HTTPStatus.SERVICE_UNAVAILABLE
        return HTTPStatus.OK


def is_transient(error: BaseException) -> bool:
    """True for failures that may pass on a retry: store or bus down, a backend unavailable, timeouts."""
    from google.api_core import exceptions as api

    retryable = (api.ServiceUnavailable, api.DeadlineExceeded, api.InternalServerError,
                 api.TooManyRequests, api.Aborted, api.RetryError)
    return isinstance(error, (StoreError, BusUnavailable, ConnectionError, TimeoutError, *retryable))


class PushHandler:
    """The decisions of the module docstring's table, independent of Flask (see `push_blueprint`)."""

    def __init__(self, store: PushStore, decoders: Sequence[NotificationDecoder], dispatch: Callable[[Event], None],
                 on_error: Callable[[Event, BaseException], None], *,
                 transient: Callable[[BaseException], bool] = is_transient,
                 steps: StepRunner | None = None, outbox: StepOutbox | None = None) -> None:
        """`steps` bounds how long a request waits for its step (default: `DEFAULT_STEP_SECONDS`);
        `outbox` holds the events a step publishes until it completes (None: they are published
        as the handlers publish them, and only the message is remembered at the end)."""
        self._store = store
        self._decoders = tuple(decoders)
        self._dispatch = dispatch
        self._on_error = on_error
        self._transient = transient
        self._steps = steps or StepRunner(store, DEFAULT_STEP_SECONDS)
        self._outbox = outbox

    def handle(self, body: bytes) -> tuple[PushOutcome, str]:
        """Process one push body; the outcome and a one-line reason (also logged)."""
        try:
            message = parse_envelope(body)
        except MalformedEnvelope as exc:
            log.error("malformed push message %s from %s acknowledged: %s", exc.message_id or "(no id)",
                      exc.subscription or "(no subscription)", exc)
            return PushOutcome.MALFORMED, str(exc)
        decoded = self._decode(message)
        if not isinstance(decoded, tuple):
            return self._process(message, decoded)
        return decoded

    def _decode(self, message: PushMessage) -> Event | tuple[PushOutcome, str]:
        where = f"message {message.message_id} from {message.subscription or '(no subscription)'}"
        if message.attributes.get("kind") in _OUR_KINDS:
            try:
                return event_from_dict(json.loads(message.data))
            except (ValueError, TypeError, KeyError, AttributeError, UnicodeDecodeError) as exc:
                reason = f"{message.attributes['kind']} data is not a kfp-bot event: {exc}"
                log.error("malformed push %s acknowledged: %s", where, reason)
                return PushOutcome.MALFORMED, reason
        for decoder in self._decoders:
            try:
                event = decoder.decode_notification(message.attributes, message.data)
            except Exception as exc:  # a decoder bug must not bounce the message forever
                if self._transient(exc):
                    log.warning("%s: %s failed, Pub/Sub will retry: %s", where, type(decoder).__name__, exc)
                    return PushOutcome.RETRY, str(exc)
                log.exception("%s: %s failed; acknowledged", where, type(decoder).__name__)
                return PushOutcome.MALFORMED, f"{type(decoder).__name__} failed: {exc}"
            if isinstance(event, Ignored):
                log.debug("%s acknowledged: %s", where, event.reason)
                return PushOutcome.IGNORED, event.reason
            if event is not None:
                return event
        names = ", ".join(sorted(message.attributes)) or "none"
        log.warning("unknown notification %s (attributes: %s) acknowledged", where, names)
        return PushOutcome.UNKNOWN, f"no handler for this notification (attributes: {names})"

    def _process(self, message: PushMessage, event: Event) -> tuple[PushOutcome, str]:
        ids = {"delivery_id": getattr(event, "delivery_id", None), "run_id": getattr(event, "run_id", None)}
        with log_context(**ids):
            seen = self._seen(message, event)
            if seen is not None:
                return seen

            def step() -> tuple[PushOutcome, str]:
                with log_context(**ids):
                    # Looked at again under the lease: the step may have ended since the first look.
                    again = self._seen(message, event)
                    if again is not None:
                        return again
                    with self._collecting() as published:
                        outcome, reason = self._run(message, event)
                    if outcome is PushOutcome.RETRY:
                        return outcome, reason  # what it published is dropped: the redelivery runs it again
                    return self._complete(message, event, published) or (outcome, reason)

            try:
                result = self._steps.run(message_key(message), step,
                                         name=f"message {message.message_id} ({event.key})")
            except Exception as exc:  # the lease cannot be taken: retry later
                log.warning("message %s (%s): store unavailable, Pub/Sub will retry: %s",
                            message.message_id, event.key, exc)
                return PushOutcome.RETRY, f"store unavailable: {exc}"
            if result is Wait.BUSY:
                log.info("message %s (%s) is being processed (here or at another instance); answered 503",
                         message.message_id, event.key)
                return PushOutcome.IN_PROGRESS, f"message {message.message_id} is being processed"
            if result is Wait.OVERRAN:
                return PushOutcome.IN_PROGRESS, (f"message {message.message_id} is still being processed after "
                                                 f"{self._steps.budget_seconds:g} s")
            return result

    def _seen(self, message: PushMessage, event: Event) -> tuple[PushOutcome, str] | None:
        """DUPLICATE when the message was processed, RETRY when the store cannot say, else None."""
        try:
            seen = self._store.get_external(MESSAGE_SCOPE, message_key(message))
        except Exception as exc:  # without the store we cannot tell a duplicate: retry later
            log.warning("message %s (%s): store unavailable, Pub/Sub will retry: %s",
                        message.message_id, event.key, exc)
            return PushOutcome.RETRY, f"store unavailable: {exc}"
        if seen is not None:
            log.info("duplicate message %s (%s) acknowledged", message.message_id, event.key)
            return PushOutcome.DUPLICATE, f"message {message.message_id} was already processed"
        return None

    def _run(self, message: PushMessage, event: Event) -> tuple[PushOutcome, str]:
        try:
            self._dispatch(event)
        except Exception as exc:
            if self._transient(exc):
                log.warning("message %s (%s, delivery attempt %s) failed, Pub/Sub will retry: %s: %s",
                            message.message_id, event.key, message.delivery_attempt or "unknown",
                            type(exc).__name__, exc)
                return PushOutcome.RETRY, f"{type(exc).__name__}: {exc}"
            log.error("handler failed for %s (message %s): %s: %s", event.key, message.message_id,
                      type(exc).__name__, exc, exc_info=not isinstance(exc, KfpBotError))
            return self._report_failure(message, event, exc)
        log.info("processed message %s (%s)", message.message_id, event.key)
        return PushOutcome.PROCESSED, event.key

    def _report_failure(self, message: PushMessage, event: Event, error: Exception) -> tuple[PushOutcome, str]:
        reason = f"{type(error).__name__}: {error}"
        try:
            self._on_error(event, error)
        except Exception as exc:
            if self._transient(exc):
                log.warning("could not report the failure of %s, Pub/Sub will retry: %s", event.key, exc)
                return PushOutcome.RETRY, f"{reason}; reporting it failed: {exc}"
            log.exception("could not report the failure of %s (message %s); acknowledged",
                          event.key, message.message_id)
        return PushOutcome.FAILED, reason

    def _collecting(self) -> AbstractContextManager[list[Event]]:
        return self._outbox.collecting() if self._outbox is not None else _published_at_once()

    def _complete(self, message: PushMessage, event: Event,
                  published: Sequence[Event]) -> tuple[PushOutcome, str] | None:
        """Remember the message and queue its step's next steps, together; an outcome that
        replaces the step's when that did not happen."""
        try:
            queued = self._store.complete_step(MESSAGE_SCOPE, message_key(message), event.key, published)
        except Exception as exc:  # nothing is queued: the redelivery runs the step again
            log.warning("could not complete message %s (%s), Pub/Sub will retry: %s", message.message_id,
                        event.key, exc)
            return PushOutcome.RETRY, f"could not record the step as done: {exc}"
        if queued is None:
            log.info("message %s (%s) was completed meanwhile by another delivery; %d event(s) it "
                     "published dropped", message.message_id, event.key, len(published))
            return PushOutcome.DUPLICATE, f"message {message.message_id} was already processed"
        return None


@contextmanager
def _published_at_once() -> Iterator[list[Event]]:
    """Without an outbox to hold them, the handlers' events went out as they were published."""
    yield []
