"""`POST /pubsub/push`: the endpoint of the push subscriptions, turning messages into handler calls.

The route verifies the push token (`bot.pubsub.oidc`) and reads the body; what becomes of the
message, and what Pub/Sub is answered, is `bot.pubsub.push_handler.PushHandler`'s decision (its
module docstring has the table). The subscriptions must use the default wrapped payload (not
"payload unwrapping").
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from bot.config import ConfigurationError
from bot.pubsub.oidc import PushAuthError, PushAuthFailure, PushTokenVerifier
from bot.pubsub.push_handler import DEFAULT_STEP_SECONDS, MESSAGE_SCOPE, PushHandler, PushOutcome, is_transient
from bot.pubsub.relay import OutboxRelay
from bot.pubsub.steps import StepRunner
from handlers.models import Event
from handlers.ports.events import NotificationDecoder

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.services import Services

log = logging.getLogger("kfp_bot.pubsub")

PUSH_PATH = "/pubsub/push"

__all__ = ["DEFAULT_STEP_SECONDS", "MESSAGE_SCOPE", "PUSH_PATH", "PushHandler", "PushOutcome", "is_transient",
           "push_blueprint", "push_blueprint_for_services"]


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
    # The relay (KFP_BOT_BUS=pubsub) holds what a step publishes until the step completes.
    outbox = services.bus if isinstance(services.bus, OutboxRelay) else None
    handler = PushHandler(services.store, decoders, dispatch, on_error, transient=transient,  # type: ignore[arg-type]
                          steps=StepRunner(services.store, settings.pubsub_step_seconds),  # type: ignore[arg-type]
                          outbox=outbox)
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
