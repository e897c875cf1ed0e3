"""`POST /pubsub/push`: the endpoint of the push subscriptions, turning messages into handler calls.

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
| handlers succeeded                                       | 200    | message id remembered; acked          |
| handlers raised a transient error (store, bus, backend   | 503    | not remembered: the redelivery is     |
|   unavailable, timeout)                                  |        |   processed                           |
| handlers raised anything else                            | 200    | `on_error(event, exc)` makes it       |
|                                                          |        |   visible (run error, check); acked   |

Processed messages are remembered by subscription *and* message id (`envelope.message_key`):
Pub/Sub makes message ids unique within a topic only, and the bot's four push subscriptions read
four topics, so the same id may arrive from two of them as two different messages; and two
subscriptions of one topic each deliver every message once.

A message is remembered as processed only after its handlers finished (or their failure was
made visible), so a crash or a 5xx in the middle never turns the redelivery into a
"duplicate". Two copies processed at the same moment are left to the handlers' idempotency
(deterministic build ids, job ids, check runs, forward-only run states).

Our own events carry a `kind` attribute with an `EventKind` value and `event_to_dict` JSON as
data (`bot.pubsub.publisher`); other messages (Cloud Build's `cloud-builds` topic, the pipeline job
log sink) are offered to each `NotificationDecoder` in turn. The subscriptions must use the
default wrapped payload (not "payload unwrapping").
"""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Callable, Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from bot.config import ConfigurationError
from bot.embedded_bus import BusUnavailable
from bot.logs import log_context
from bot.pubsub.envelope import MalformedEnvelope, PushMessage, message_key, parse_envelope
from bot.pubsub.oidc import PushAuthError, PushAuthFailure, PushTokenVerifier
from bot.pubsub.steps import StepRunner, Wait
from bot.store.errors import StoreError
from handlers.models import Event, EventKind, event_from_dict
from handlers.ports import Ignored, NotificationDecoder, Store
from kfp_bot_errors import KfpBotError

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.services import Services

log = logging.getLogger("kfp_bot.pubsub")

PUSH_PATH = "/pubsub/push"
MESSAGE_SCOPE = "pubsub-message"
"""Store scope (`get_external`/`set_external`) of processed messages, keyed by `message_key`; the
value is the event key."""

DEFAULT_STEP_SECONDS = 60.0
"""How long a push request waits for its step by default (KFP_BOT_PUBSUB_STEP_SECONDS)."""

_OUR_KINDS = frozenset(kind.value for kind in EventKind)


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

    def __init__(self, store: Store, decoders: Sequence[NotificationDecoder], dispatch: Callable[[Event], None],
                 on_error: Callable[[Event, BaseException], None], *,
                 transient: Callable[[BaseException], bool] = is_transient,
                 steps: StepRunner | None = None) -> None:
        """`steps` bounds how long a request waits for its step (default: `DEFAULT_STEP_SECONDS`)."""
        self._store = store
        self._decoders = tuple(decoders)
        self._dispatch = dispatch
        self._on_error = on_error
        self._transient = transient
        self._steps = steps or StepRunner(store, DEFAULT_STEP_SECONDS)  # type: ignore[arg-type]

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
                    outcome, reason = self._run(message, event)
                    if outcome is not PushOutcome.RETRY:
                        self._remember(message, event)
                    return outcome, reason

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

    def _remember(self, message: PushMessage, event: Event) -> None:
        try:
            self._store.set_external(MESSAGE_SCOPE, message_key(message), event.key)
        except Exception as exc:  # the work is done; a redelivery is harmless to idempotent handlers
            log.warning("could not remember message %s (%s) as processed: %s", message.message_id,
                        event.key, exc)


def push_blueprint(settings: Settings, services: Services, decoders: Sequence[NotificationDecoder],
                   dispatch: Callable[[Event], None], *, on_error: Callable[[Event, BaseException], None],
                   verifier: PushTokenVerifier | None = None,
                   transient: Callable[[BaseException], bool] = is_transient) -> Blueprint:
    """The `/pubsub/push` route: verify the token (unless KFP_BOT_PUBSUB_VERIFY_TOKEN=0), then `PushHandler`.

    `verifier` defaults to one for KFP_BOT_PUBSUB_PUSH_AUDIENCE and
    KFP_BOT_PUBSUB_PUSH_SERVICE_ACCOUNT against Google's certificates.
    """
    if settings.pubsub_verify_token and verifier is None:
        if not (settings.pubsub_push_audience and settings.pubsub_push_service_account):
            raise ConfigurationError("/pubsub/push verifies push tokens: set KFP_BOT_PUBSUB_PUSH_AUDIENCE and "
                                     "KFP_BOT_PUBSUB_PUSH_SERVICE_ACCOUNT (or KFP_BOT_PUBSUB_VERIFY_TOKEN=0 "
                                     "for an emulator)")
        verifier = PushTokenVerifier(settings.pubsub_push_audience, settings.pubsub_push_service_account,
                                     certs_url=settings.oidc_certs_url)
    if not settings.pubsub_verify_token:
        log.warning("KFP_BOT_PUBSUB_VERIFY_TOKEN=0: %s accepts push requests without a token", PUSH_PATH)
        verifier = None
    handler = PushHandler(services.store, decoders, dispatch, on_error, transient=transient,
                          steps=StepRunner(services.store, settings.pubsub_step_seconds))  # type: ignore[arg-type]
    blueprint = Blueprint("pubsub_push", __name__)

    @blueprint.post(PUSH_PATH)
    def pubsub_push() -> tuple[Response, int]:
        if verifier is not None:
            try:
                verifier.verify(request.headers.get("Authorization"))
            except PushAuthError as exc:
                level = logging.WARNING if exc.failure is PushAuthFailure.UNAUTHENTICATED else logging.ERROR
                log.log(level, "push request refused (%d): %s", exc.status, exc)
                return jsonify(status="error", reason=str(exc)), exc.status
        try:
            body = request.get_data(cache=False)
        except RequestEntityTooLarge:
            log.error("push message larger than %s bytes acknowledged unread", request.max_content_length)
            return jsonify(status=PushOutcome.MALFORMED.value, reason="message too large"), HTTPStatus.OK
        outcome, reason = handler.handle(body)
        return jsonify(status=outcome.value, reason=reason), outcome.status

    return blueprint


def push_blueprint_for_services(settings: Settings, services: Services,
                                decoders: Sequence[NotificationDecoder] = (), *,
                                verifier: PushTokenVerifier | None = None) -> Blueprint:
    """`push_blueprint` dispatching to the handlers (`handlers.routes`) with the services' context."""
    from handlers.routes import dispatch, handle_failure

    context = services.context
    if context is None:
        raise ConfigurationError("KFP_BOT_BUS=pubsub: the push endpoint needs the handler context "
                                 "(build the services with bot.wiring.build_services)")
    return push_blueprint(settings, services, decoders, lambda event: dispatch(event, context),
                          on_error=lambda event, error: handle_failure(event, error, context),
                          verifier=verifier)
