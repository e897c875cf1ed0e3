"""The bot's HTTP edge: the GitHub webhook, the runs API, health, the dashboard and each run's page.

`create_app` builds a Flask app around already-built services; importing this module does
nothing (no environment, no clients, no threads). The webhook answers in milliseconds: verify,
parse, record the delivery and queue its event in one transaction (the outbox), wake the bus,
answer 202; everything slow happens on the bus.
Every error on these routes is JSON with a reason, never a traceback; the pages (dashboard, a
run's page) answer an unknown run with an HTML 404 page.
"""

from __future__ import annotations

import logging
import time
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import BadRequest, HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge

from bot import __version__
from bot.bounds import MAX_NUMBER
from bot.config import BusKind, Settings
from bot.dashboard import dashboard_blueprint
from bot.edge import DeadlineStream, client_socket, stop_reading
from bot.logs import log_context
from bot.payloads import Ignored
from bot.queries import bool_arg, int_arg, state_arg, text_arg, text_value
from bot.run_page import run_page_blueprint
from bot.services import Services
from bot.webhook import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    WebhookRejected,
    parse_delivery,
    read_signed_body,
)
from handlers.queue_view import queue_spot
from handlers.receipt import announced_head
from handlers.run_models import FailureStage, Run, RunState

log = logging.getLogger("kfp_bot.app")

WEBHOOK_PATH = "/github/webhook"
DEFAULT_RUN_LIMIT = 50
MAX_RUN_LIMIT = 500


def create_app(settings: Settings, services: Services) -> Flask:
    """The Flask app serving `services` with `settings`; starts nothing by itself."""
    app = Flask(__name__)
    # Also bounds what Werkzeug itself will read; the webhook checks the limit explicitly.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""

    _register_request_logging(app)
    _register_error_handlers(app, settings)

    @app.post(WEBHOOK_PATH)
    def github_webhook() -> tuple[Response, int]:
        return _handle_webhook(settings, services, secret)

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok", version=__version__)

    @app.get("/api/runs")
    def list_runs() -> Response:
        args = request.args
        runs = services.store.list_runs(
            repo=text_arg(args, "repo"),
            pr=int_arg(args, "pr", low=1, high=MAX_NUMBER),
            sha=text_arg(args, "sha"),
            pipeline=text_arg(args, "pipeline"),
            state=state_arg(args, "state"),
            active=bool_arg(args, "active"),
            limit=int_arg(args, "limit", default=DEFAULT_RUN_LIMIT, low=1, high=MAX_RUN_LIMIT),
        )
        return jsonify(runs=[_run_json(services, run) for run in runs])

    @app.get("/api/deliveries")
    def list_deliveries() -> Response:
        """Deliveries that failed: refused signed ones and ones whose handler failed after the 202."""
        if bool_arg(request.args, "failed") is not True:
            raise BadRequest("add failed=1: the bot keeps the deliveries that failed, with the reason "
                             "(what accepted deliveries started is in /api/runs)")
        limit = int_arg(request.args, "limit", default=DEFAULT_RUN_LIMIT, low=1, high=MAX_RUN_LIMIT)
        failures = services.store.list_delivery_failures(delivery_id=text_arg(request.args, "delivery"),
                                                         limit=limit or DEFAULT_RUN_LIMIT)
        return jsonify(deliveries=[failure.to_json() for failure in failures])

    @app.get("/api/runs/<run_id>")
    def get_run(run_id: str) -> tuple[Response, int]:
        run = services.store.get_run(text_value("run id", run_id))
        if run is None:
            return _error(HTTPStatus.NOT_FOUND, f"run '{run_id}' not found")
        return jsonify(_run_json(services, run)), HTTPStatus.OK

    app.register_blueprint(dashboard_blueprint(services.store, settings))
    app.register_blueprint(run_page_blueprint(services.store, settings))
    from bot.tasks import tasks_blueprint

    app.register_blueprint(tasks_blueprint(settings, services, redeliverer=services.redeliverer,
                                           verify=_scheduler_verifier(settings)))
    if settings.bus is BusKind.PUBSUB:
        from bot.pubsub.push import push_blueprint_for_services

        app.register_blueprint(push_blueprint_for_services(settings, services, services.decoders))
    return app


def _handle_webhook(settings: Settings, services: Services, secret: str) -> tuple[Response, int]:
    """Verify, parse, de-duplicate and publish one delivery; the status GitHub should see."""
    if not secret:
        log.error("webhook refused: KFP_BOT_WEBHOOK_SECRET is not configured")
        return _error(HTTPStatus.SERVICE_UNAVAILABLE, "the bot has no webhook secret configured")
    sock = client_socket(request.environ)
    stream = DeadlineStream(lambda: request.stream, sock, settings.read_timeout_seconds)
    try:
        body = read_signed_body(stream, length=request.content_length, limit=settings.max_body_bytes,
                                secret=secret, header=request.headers.get(SIGNATURE_HEADER))
    except WebhookRejected as exc:
        log.warning("webhook rejected (%d): %s", exc.status, exc)
        ended = exc.status != HTTPStatus.REQUEST_TIMEOUT and stream.drain(request.content_length)
        stream.restore()
        response, status = _error(exc.status, str(exc))
        if not ended:  # close instead of reading (or waiting for) the rest of the body
            response.headers["Connection"] = "close"
            stop_reading(sock)
        return response, status
    stream.restore()
    try:
        delivery = parse_delivery(request.headers, body, bot_login=settings.bot_login,
                                  deploy_branches=settings.deploy_branches)
    except WebhookRejected as exc:
        log.warning("webhook rejected (%d): %s", exc.status, exc)
        _record_rejection(services, str(exc))
        return _error(exc.status, str(exc))
    outcome = delivery.outcome
    if isinstance(outcome, Ignored):
        log.info("%s ignored: %s", delivery.event_name, outcome.reason)
        return jsonify(status="ignored", reason=outcome.reason, delivery=delivery.delivery_id), HTTPStatus.OK
    try:
        rows = services.store.accept_delivery(delivery.delivery_id, delivery.event_name, outcome,
                                              head=announced_head(outcome))
    except Exception:
        log.exception("could not record delivery of %s", outcome.key)
        return _error(HTTPStatus.SERVICE_UNAVAILABLE, "could not record the delivery; redeliver it later")
    if rows is None:
        log.info("duplicate delivery of %s", outcome.key)
        return jsonify(status="duplicate", delivery=delivery.delivery_id), HTTPStatus.OK
    try:
        services.bus.notify(rows)
    except Exception as exc:  # the event is in the store: a worker or the relay picks it up later
        log.warning("accepted %s, but could not wake the bus: %s: %s", outcome.key, type(exc).__name__, exc)
    log.info("accepted %s", outcome.key)
    return jsonify(status="accepted", delivery=delivery.delivery_id,
                   event=outcome.kind.value), HTTPStatus.ACCEPTED


def _record_rejection(services: Services, reason: str) -> None:
    """Keep a signed but refused delivery queryable (GitHub signed it: not a stranger's spam).

    Only once its headers were found well formed: the delivery id is what the list is keyed by.
    """
    if reason.startswith(("missing ", DELIVERY_HEADER, EVENT_HEADER)):
        return
    delivery_id = (request.headers.get(DELIVERY_HEADER) or "").strip()
    event = (request.headers.get(EVENT_HEADER) or "").strip()
    try:
        services.store.record_delivery_failure(delivery_id, event, FailureStage.REJECTED, reason)
    except Exception:
        log.exception("could not record the rejection of delivery %s", delivery_id)


def _run_json(services: Services, run: Run) -> dict[str, Any]:
    """A run as the API shows it; a run waiting for a slot also has its `queue` place (position,
    runs holding the repository's slots, limits)."""
    shown = run.to_json()
    ctx = services.context
    spot = queue_spot(ctx, run) if ctx is not None and run.state is RunState.QUEUED else None
    if spot is not None:
        shown["queue"] = spot.to_json()
    return shown


def _error(status: int, reason: str, **extra: Any) -> tuple[Response, int]:
    return jsonify(status="error", reason=reason, **extra), int(status)


def _register_error_handlers(app: Flask, settings: Settings) -> None:
    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc: RequestEntityTooLarge) -> tuple[Response, int]:
        return _error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                      f"body is larger than the limit of {settings.max_body_bytes} bytes")

    @app.errorhandler(NotFound)
    def not_found(exc: NotFound) -> tuple[Response, int]:
        return _error(HTTPStatus.NOT_FOUND, f"no such page: {request.path}")

    @app.errorhandler(MethodNotAllowed)
    def wrong_method(exc: MethodNotAllowed) -> tuple[Response, int]:
        allowed = ", ".join(sorted(m for m in exc.valid_methods or () if m not in ("HEAD", "OPTIONS")))
        response, status = _error(HTTPStatus.METHOD_NOT_ALLOWED,
                                  f"{request.method} is not allowed on {request.path} (use {allowed})")
        response.headers["Allow"] = ", ".join(exc.valid_methods or ())
        return response, status

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        return _error(exc.code or HTTPStatus.INTERNAL_SERVER_ERROR, exc.description or exc.name)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> tuple[Response, int]:
        if isinstance(exc, HTTPException):
            return http_error(exc)
        log.exception("unexpected error on %s %s", request.method, request.path)
        return _error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error; the bot's log has the details")


def _register_request_logging(app: Flask) -> None:
    """One log line per request, tagged with the delivery id (INFO for webhooks, DEBUG otherwise)."""

    @app.before_request
    def enter() -> None:
        g.kfp_started = time.monotonic()
        delivery = (request.headers.get(DELIVERY_HEADER) or "")[:100] or None
        context = log_context(delivery_id=delivery)
        context.__enter__()
        g.kfp_log_context = context

    @app.after_request
    def access_log(response: Response) -> Response:
        started = g.get("kfp_started")
        elapsed_ms = round((time.monotonic() - started) * 1000, 1) if started else None
        level = logging.INFO if request.path == WEBHOOK_PATH else logging.DEBUG
        if response.status_code >= 500:
            level = logging.ERROR
        log.log(level, "%s %s %d", request.method, request.path, response.status_code,
                extra={"http_method": request.method, "path": request.path,
                       "status": response.status_code, "duration_ms": elapsed_ms,
                       "github_event": request.headers.get(EVENT_HEADER)})
        return response

    @app.teardown_request
    def leave(_exc: BaseException | None) -> None:
        context = g.pop("kfp_log_context", None)
        if context is not None:
            context.__exit__(None, None, None)


def _scheduler_verifier(settings: Settings):
    """Cloud Scheduler calls /tasks/reconcile with the push subscriptions' OIDC identity."""
    if not (settings.pubsub_verify_token and settings.pubsub_push_audience
            and settings.pubsub_push_service_account):
        return None
    from bot.pubsub.oidc import PushTokenVerifier

    verifier = PushTokenVerifier(settings.pubsub_push_audience, settings.pubsub_push_service_account,
                                 certs_url=settings.oidc_certs_url)

    def verify(request) -> bool:
        verifier.verify(request.headers.get("Authorization"))
        return True

    return verify
