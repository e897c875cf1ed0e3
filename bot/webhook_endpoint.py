"""The GitHub webhook's HTTP endpoint, answered in front of Flask.

The webhook is the bot's hot path: a burst of deliveries must each be answered in a few
milliseconds on a machine whose cores also process the events. Flask's per-request machinery
(request and app contexts, URL matching, hooks, sessions, `jsonify`) cost about as much as
verifying and parsing a delivery, so `webhook_wsgi` answers `POST /github/webhook` itself on
Werkzeug's plain request and response objects, and hands every other request to Flask. What
Flask's hooks and error handlers do for the other routes is done here too: every line logged
while a delivery is answered carries its delivery id, one access line is logged per request
(INFO, ERROR for a 5xx), and every error is JSON with a reason, never a traceback.

Per request: verify the signature while reading the body (`bot.webhook.read_signed_body`),
parse and bound it, then record the delivery and queue its event in one transaction (the
outbox, `Store.accept_delivery`), wake the bus and answer 202; everything slow happens on the bus.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request, Response

from bot.config import Settings
from bot.edge import DeadlineStream, client_socket, stop_reading
from bot.logs import log_context
from bot.payloads import Ignored
from bot.services import Services
from bot.webhook import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    HeaderLookup,
    WebhookRejected,
    parse_delivery,
    read_signed_body,
)
from handlers.ports.store import IncomingDelivery, Store
from handlers.receipt import announced_head
from handlers.run_models import FailureStage

log = logging.getLogger("kfp_bot.app")

WEBHOOK_PATH = "/github/webhook"
INTERNAL_ERROR = "internal error; the bot's log has the details"
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def webhook_wsgi(other: WsgiApp, settings: Settings, services: Services) -> WsgiApp:
    """A WSGI app answering `POST` on `WEBHOOK_PATH` and passing every other request to `other`."""
    # Werkzeug also refuses a body announced over the limit when the stream is opened (413).
    request_class = type("WebhookRequest", (Request,), {"max_content_length": settings.max_body_bytes})
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != WEBHOOK_PATH or environ.get("REQUEST_METHOD") != "POST":
            return other(environ, start_response)
        started = time.monotonic()
        request = request_class(environ)
        with log_context(delivery_id=delivery_tag(request.headers)):
            try:
                response = handle_webhook(request, settings, services, secret)
            except HTTPException as exc:
                response = to_response(refused(*http_error_reason(exc, settings.max_body_bytes)))
            except Exception:
                log.exception("unexpected error on POST %s", WEBHOOK_PATH)
                response = to_response(refused(HTTPStatus.INTERNAL_SERVER_ERROR, INTERNAL_ERROR))
            log_answer(response.status_code, started, request.headers)
        return response(environ, start_response)

    return app


def delivery_tag(headers: HeaderLookup) -> str | None:
    """The delivery id the request's log lines carry (bounded: it is not validated yet)."""
    return (headers.get(DELIVERY_HEADER) or "")[:100] or None


def log_answer(status: int, started: float, headers: HeaderLookup) -> None:
    """The webhook's access line, whichever server answered (INFO; ERROR for a 5xx)."""
    level = logging.ERROR if status >= 500 else logging.INFO
    if log.isEnabledFor(level):
        log.log(level, "POST %s %d", WEBHOOK_PATH, status,
                extra={"http_method": "POST", "path": WEBHOOK_PATH, "status": status,
                       "duration_ms": round((time.monotonic() - started) * 1000, 1),
                       "github_event": headers.get(EVENT_HEADER)})


@dataclass(frozen=True)
class Answer:
    """What the webhook answers, whichever server carries it: a status and a JSON object.

    `close`: the request's body was left unread, so the connection ends after the answer.
    """

    status: int
    payload: dict[str, Any]
    close: bool = False

    def encoded(self) -> bytes:
        """The JSON body as Flask's `jsonify` writes it (compact, keys in order, a final newline)."""
        return (json.dumps(self.payload, separators=(",", ":")) + "\n").encode()


def answered(code: int, /, **payload: Any) -> Answer:
    """An `Answer` with status `code` and the JSON object `payload`."""
    return Answer(int(code), payload)


def refused(status: int, reason: str, *, close: bool = False) -> Answer:
    """An error answer with its reason."""
    return Answer(int(status), {"status": "error", "reason": reason}, close)


NO_SECRET = refused(HTTPStatus.SERVICE_UNAVAILABLE, "the bot has no webhook secret configured")


def handle_webhook(request: Request, settings: Settings, services: Services, secret: str) -> Response:
    """Verify (while reading the body from the WSGI server), then answer one delivery."""
    if not secret:
        log.error("webhook refused: KFP_BOT_WEBHOOK_SECRET is not configured")
        return to_response(NO_SECRET)
    sock = client_socket(request.environ)
    stream = DeadlineStream(lambda: request.stream, sock, settings.read_timeout_seconds)
    length = request.content_length
    try:
        body = read_signed_body(stream, length=length, limit=settings.max_body_bytes,
                                secret=secret, header=request.headers.get(SIGNATURE_HEADER))
    except WebhookRejected as exc:
        log.warning("webhook rejected (%d): %s", exc.status, exc)
        ended = exc.status != HTTPStatus.REQUEST_TIMEOUT and stream.drain(length)
        stream.restore()
        if not ended:  # close instead of reading (or waiting for) the rest of the body
            stop_reading(sock)
        return to_response(refused(exc.status, str(exc), close=not ended))
    stream.restore()
    return to_response(answer_delivery(request.headers, body, settings, services))


def answer_delivery(headers: HeaderLookup, body: bytes, settings: Settings, services: Services) -> Answer:
    """Parse, de-duplicate and queue one delivery whose signature was verified; the answer
    GitHub should see. Blocks until the delivery is committed (`Store.accept_delivery`)."""
    decided = decide_delivery(headers, body, settings)
    if isinstance(decided, Refused):
        return keep_refusal(services.store, decided)
    if isinstance(decided, Answer):
        return decided
    try:
        rows = services.store.accept_delivery(decided.delivery_id, decided.event_name, decided.event,
                                              head=decided.head)
    except Exception as exc:
        return answer_accepted(decided, exc)
    if rows is not None:
        try:
            services.bus.notify(rows)
        except Exception as exc:  # the event is in the store: a worker or the relay picks it up later
            log.warning("accepted %s, but could not wake the bus: %s: %s", decided.event.key,
                        type(exc).__name__, exc)
    return answer_accepted(decided, rows)


@dataclass(frozen=True)
class Refused:
    """A signed delivery refused once parsed: its answer, and what `keep_refusal` keeps of it in
    the failed deliveries (GitHub signed it: not a stranger's spam). `delivery_id` is None when
    its headers are too broken to key that list."""

    answer: Answer
    delivery_id: str | None
    event_name: str
    reason: str


def decide_delivery(headers: HeaderLookup, body: bytes, settings: Settings) -> Answer | IncomingDelivery | Refused:
    """What a verified delivery is: an event to accept, its answer (ignored), or refused. Pure:
    the store is written by the caller, off the HTTP server's event loop."""
    try:
        delivery = parse_delivery(headers, body, bot_login=settings.bot_login,
                                  deploy_branches=settings.deploy_branches)
    except WebhookRejected as exc:
        log.warning("webhook rejected (%d): %s", exc.status, exc)
        reason = str(exc)
        keyed = not reason.startswith(("missing ", DELIVERY_HEADER, EVENT_HEADER))
        return Refused(refused(exc.status, reason), (headers.get(DELIVERY_HEADER) or "").strip() if keyed else None,
                       (headers.get(EVENT_HEADER) or "").strip(), reason)
    outcome = delivery.outcome
    if isinstance(outcome, Ignored):
        log.info("%s ignored: %s", delivery.event_name, outcome.reason)
        return answered(HTTPStatus.OK, status="ignored", reason=outcome.reason, delivery=delivery.delivery_id)
    return IncomingDelivery(delivery.delivery_id, delivery.event_name, outcome, announced_head(outcome))


def keep_refusal(store: Store, refusal: Refused) -> Answer:
    """Keep `refusal` queryable in the failed deliveries when it can be keyed; its answer."""
    if refusal.delivery_id is not None:
        try:
            store.record_delivery_failure(refusal.delivery_id, refusal.event_name, FailureStage.REJECTED,
                                          refusal.reason)
        except Exception:
            log.exception("could not record the rejection of delivery %s", refusal.delivery_id)
    return refusal.answer


def answer_accepted(incoming: IncomingDelivery, result: tuple[int, ...] | None | Exception) -> Answer:
    """The answer once `incoming` was committed (its rows), found seen before (None) or refused
    by the store (the error, logged here)."""
    if isinstance(result, Exception):
        log.error("could not record delivery of %s: %s: %s", incoming.event.key, type(result).__name__, result)
        return refused(HTTPStatus.SERVICE_UNAVAILABLE, "could not record the delivery; redeliver it later")
    if result is None:
        log.info("duplicate delivery of %s", incoming.event.key)
        return answered(HTTPStatus.OK, status="duplicate", delivery=incoming.delivery_id)
    log.info("accepted %s", incoming.event.key)
    return answered(HTTPStatus.ACCEPTED, status="accepted", delivery=incoming.delivery_id,
                    event=incoming.event.kind.value)


def to_response(answer: Answer) -> Response:
    """`answer` as a Werkzeug response."""
    response = Response(answer.encoded(), status=answer.status, mimetype="application/json")
    if answer.close:
        response.headers["Connection"] = "close"
    return response


def http_error_reason(exc: HTTPException, max_body_bytes: int) -> tuple[int, str]:
    """The status and reason every route answers for an HTTP error (the webhook here, the others
    through the Flask app's error handlers)."""
    if exc.code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE:
        return exc.code, f"body is larger than the limit of {max_body_bytes} bytes"
    return exc.code or HTTPStatus.INTERNAL_SERVER_ERROR, exc.description or exc.name
