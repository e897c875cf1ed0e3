"""`POST /tasks/reconcile`: the periodic pass that makes lost events harmless.

Cloud Scheduler calls it every few minutes. It runs the reconcile pass (the backends are asked
where every active run is, and the lost build and run events are published again) and then has
GitHub redeliver the App's failed webhook deliveries, and answers the counts as JSON.

Only the scheduler may call it: either with `Authorization: Bearer <KFP_BOT_TASKS_TOKEN>`
(compared in constant time) or with a Google-signed OIDC token, checked by the injected
`verify(request) -> bool` (the Pub/Sub push verifier, when the scheduler job uses the push
service account and audience). Answers: 200 with counts; 401 without valid credentials; 503
when the store is unavailable (the scheduler retries); 502 when GitHub refused the redelivery
pass (the reconcile counts are in the body).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from datetime import timedelta
from http import HTTPStatus

from flask import Blueprint, Request, Response, jsonify, request

from bot.config import Settings
from bot.github.client import GitHubError
from bot.github.deliveries import NoRedelivery, Redeliverer
from bot.services import Services
from bot.store.errors import StoreError
from handlers.reconcile import DEFAULT_LOST_AFTER, DEFAULT_STUCK_AFTER, reconcile

log = logging.getLogger("kfp_bot.tasks")

RECONCILE_PATH = "/tasks/reconcile"

Verify = Callable[[Request], bool]


def tasks_blueprint(settings: Settings, services: Services, *, redeliverer: Redeliverer | None = None,
                    verify: Verify | None = None, stuck_after: timedelta = DEFAULT_STUCK_AFTER,
                    lost_after: timedelta = DEFAULT_LOST_AFTER) -> Blueprint:
    """The blueprint serving `POST /tasks/reconcile` for `services`.

    `redeliverer`: from `bot.github.deliveries.webhook_redeliverer` (None: redelivery is skipped
    and the answer says so). `verify`: accepts a request carrying a valid OIDC token (None: only
    the tasks token is accepted).
    """
    blueprint = Blueprint("tasks", __name__)
    token = settings.tasks_token.get_secret_value().encode() if settings.tasks_token else b""
    redelivery = redeliverer or NoRedelivery("webhook redelivery is not configured for this bot")

    @blueprint.post(RECONCILE_PATH)
    def reconcile_task() -> tuple[Response, int]:
        refused = _refusal(request, token, verify)
        if refused is not None:
            log.warning("reconcile task refused: %s", refused)
            return _answer(HTTPStatus.UNAUTHORIZED, status="error", reason=refused)
        if services.context is None:
            return _answer(HTTPStatus.SERVICE_UNAVAILABLE, status="error",
                           reason="the bot's handlers are not running in this process")
        try:
            runs = reconcile(services.context, stuck_after=stuck_after, lost_after=lost_after)
        except StoreError as exc:
            log.error("reconcile task: the store is unavailable: %s", exc)
            return _answer(HTTPStatus.SERVICE_UNAVAILABLE, status="error",
                           reason=f"the store is unavailable, try again later: {exc}")
        try:
            redelivered = redelivery.redeliver_failed(services.store.has_delivery)
        except StoreError as exc:
            log.error("webhook redelivery: the store is unavailable: %s", exc)
            return _answer(HTTPStatus.SERVICE_UNAVAILABLE, status="error", reconcile=runs.to_json(),
                           reason=f"the store is unavailable, try again later: {exc}")
        except GitHubError as exc:
            log.error("webhook redelivery failed: %s", exc)
            return _answer(HTTPStatus.BAD_GATEWAY, status="error", reconcile=runs.to_json(),
                           reason=str(exc), hint=exc.hint)
        return _answer(HTTPStatus.OK, status="ok", reconcile=runs.to_json(), redelivery=redelivered.to_json())

    return blueprint


def _refusal(incoming: Request, token: bytes, verify: Verify | None) -> str | None:
    """Why the request may not run the task, or None when it may."""
    if not token and verify is None:
        log.error("reconcile task refused: neither KFP_BOT_TASKS_TOKEN nor an OIDC verifier is configured")
        return "the bot accepts no credentials for tasks: set KFP_BOT_TASKS_TOKEN (or configure OIDC)"
    scheme, _, credential = (incoming.headers.get("Authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        return "missing 'Authorization: Bearer ...' header"
    if token and hmac.compare_digest(credential.strip().encode(), token):
        return None
    if verify is not None:
        try:
            if verify(incoming):
                return None
        except Exception as exc:  # a verifier's failure is a refusal, never a 500 that bypasses it
            log.warning("reconcile task: the OIDC verifier failed: %s: %s", type(exc).__name__, exc)
    return "invalid credentials"


def _answer(code: HTTPStatus, **body: object) -> tuple[Response, int]:
    return jsonify(**{k: v for k, v in body.items() if v is not None}), int(code)
