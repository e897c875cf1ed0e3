"""The bot's HTTP edge: the GitHub webhook, the runs API, health, and the dashboard.

`create_app` builds a Flask app around already-built services; importing this module does
nothing (no environment, no clients, no threads). The webhook answers in milliseconds: verify,
parse, record the delivery and queue its event in one transaction (the outbox), wake the bus,
answer 202; everything slow happens on the bus.
Every error on these routes is JSON with a reason, never an HTML page or a traceback.
"""

from __future__ import annotations

import logging
import time
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import BadRequest, HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge

from bot import __version__
from bot.config import BusKind, Settings
from bot.dashboard import dashboard_blueprint
from bot.logs import log_context
from bot.payloads import Ignored
from bot.services import Services
from bot.webhook import DELIVERY_HEADER, EVENT_HEADER, WebhookRejected, read_delivery
from handlers.models import RunState

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
            repo=args.get("repo") or None,
            pr=_int_arg("pr"),
            sha=args.get("sha") or None,
            pipeline=args.get("pipeline") or None,
            state=_state_arg("state"),
            active=_bool_arg("active"),
            limit=_int_arg("limit", default=DEFAULT_RUN_LIMIT, low=1, high=MAX_RUN_LIMIT),
        )
        return jsonify(runs=[run.to_json() for run in runs])

    @app.get("/api/runs/<run_id>")
    def get_run(run_id: str) -> tuple[Response, int]:
        run = services.store.get_run(run_id)
        if run is None:
            return _error(HTTPStatus.NOT_FOUND, f"run '{run_id}' not found")
        return jsonify(run.to_json()), HTTPStatus.OK

    app.register_blueprint(dashboard_blueprint(services.store, settings))
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
    body = _read_body(settings.max_body_bytes)
    try:
        delivery = read_delivery(request.headers, body, secret=secret, bot_login=settings.bot_login,
                                 deploy_branches=settings.deploy_branches)
    except WebhookRejected as exc:
        log.warning("webhook rejected (%d): %s", exc.status, exc)
        return _error(exc.status, str(exc))
    outcome = delivery.outcome
    if isinstance(outcome, Ignored):
        log.info("%s ignored: %s", delivery.event_name, outcome.reason)
        return jsonify(status="ignored", reason=outcome.reason, delivery=delivery.delivery_id), HTTPStatus.OK
    try:
        rows = services.store.accept_delivery(delivery.delivery_id, delivery.event_name, outcome)
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


def _read_body(limit: int) -> bytearray:
    """The raw body, refused (413) past `limit` bytes without reading the rest.

    One buffer, filled in place: a body near GitHub's 25 MB cap is held in memory once. A
    chunked body has no announced length, so it is read up to one byte past the limit.
    """
    length = request.content_length
    if length is not None and length > limit:
        raise RequestEntityTooLarge()
    stream = request.stream
    if length is not None:
        body = bytearray(length)
        view = memoryview(body)
        filled = 0
        while filled < length:
            count = stream.readinto(view[filled:])  # type: ignore[attr-defined]
            if not count:
                raise BadRequest(f"body ended after {filled} of the {length} bytes announced")
            filled += count
        view.release()
        return body
    body = bytearray()
    while len(body) <= limit:
        chunk = stream.read(min(64 * 1024, limit + 1 - len(body)))
        if not chunk:
            return body
        body += chunk
    raise RequestEntityTooLarge()


def _int_arg(name: str, *, default: int | None = None, low: int | None = None,
             high: int | None = None) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"'{name}' must be a whole number, got {raw!r}") from None
    if (low is not None and value < low) or (high is not None and value > high):
        raise BadRequest(f"'{name}' must be between {low} and {high}, got {value}")
    return value


def _bool_arg(name: str) -> bool | None:
    raw = (request.args.get(name) or "").lower()
    if not raw:
        return None
    if raw not in ("true", "false", "1", "0"):
        raise BadRequest(f"'{name}' must be true or false, got {raw!r}")
    return raw in ("true", "1")


def _state_arg(name: str) -> RunState | None:
    raw = request.args.get(name)
    if not raw:
        return None
    try:
        return RunState(raw.lower())
    except ValueError:
        valid = ", ".join(state.value for state in RunState)
        raise BadRequest(f"unknown {name} {raw!r}; valid states: {valid}") from None


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
