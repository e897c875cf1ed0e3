"""The bot's HTTP edge: the GitHub webhook, the runs API, health, the dashboard and each run's page.

`create_app` builds a Flask app around already-built services; importing this module does
nothing (no environment, no clients, no threads). The webhook answers in milliseconds, in front
of Flask (`bot.webhook_endpoint`): verify, parse, record the delivery and queue its event in one
transaction (the outbox), wake the bus, answer 202; everything slow happens on the bus.
Every error on these routes is JSON with a reason, never a traceback; the pages (dashboard, a
run's page) answer an unknown run with an HTML 404 page.
"""

from __future__ import annotations

import logging
import time
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import BadRequest, HTTPException, MethodNotAllowed, NotFound
from werkzeug.wrappers import Response as WerkzeugResponse

from bot import __version__
from bot.accept_queue import AcceptQueue
from bot.bounds import MAX_NUMBER
from bot.config import BusKind, Settings
from bot.dashboard import dashboard_blueprint
from bot.logs import log_context
from bot.queries import bool_arg, int_arg, state_arg, text_arg, text_value
from bot.run_page import run_page_blueprint
from bot.services import Services
from bot.webhook import DELIVERY_HEADER, EVENT_HEADER
from bot.webhook_asgi import AsgiApp, webhook_asgi
from bot.webhook_endpoint import INTERNAL_ERROR, WEBHOOK_PATH, handle_webhook, http_error_reason, webhook_wsgi
from handlers.queue_view import queue_spot
from handlers.run_models import Run, RunState

log = logging.getLogger("kfp_bot.app")

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
    # The webhook is answered in front of Flask (`bot.webhook_endpoint`); the rule is kept so
    # that Flask knows the route (405 for other methods) and answers alike if called directly.
    app.wsgi_app = webhook_wsgi(app.wsgi_app, settings, services)  # type: ignore[method-assign,assignment]

    @app.post(WEBHOOK_PATH)
    def github_webhook() -> WerkzeugResponse:
        return handle_webhook(request, settings, services, secret)

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


def create_asgi_app(settings: Settings, services: Services, accept: AcceptQueue) -> AsgiApp:
    """The ASGI app `kfp-bot serve` runs: the webhook answered on the event loop, committing
    through `accept` (`bot.webhook_asgi`), and the Flask app of `create_app` for every other
    route, on KFP_BOT_HTTP_THREADS threads (a2wsgi)."""
    from a2wsgi import WSGIMiddleware

    flask_app = create_app(settings, services)
    return webhook_asgi(WSGIMiddleware(flask_app, workers=settings.http_threads),  # type: ignore[arg-type]
                        settings, services, accept)


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
        return _error(*http_error_reason(exc, settings.max_body_bytes))

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> tuple[Response, int]:
        if isinstance(exc, HTTPException):
            return http_error(exc)
        log.exception("unexpected error on %s %s", request.method, request.path)
        return _error(HTTPStatus.INTERNAL_SERVER_ERROR, INTERNAL_ERROR)


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
