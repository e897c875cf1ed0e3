"""The Pub/Sub event bus: publishing accepted events (`publisher`) and receiving push deliveries (`push`).

`PubSubBus` replaces the in-process queue when KFP_BOT_BUS=pubsub; the push subscription
brings each message back to `POST /pubsub/push`, whose OIDC token `oidc` verifies.
"""

from bot.pubsub.oidc import PushAuthError, PushTokenVerifier
from bot.pubsub.publisher import PubSubBus, make_publisher, message_attributes, topic_path
from bot.pubsub.push import PUSH_PATH, PushHandler, PushOutcome, push_blueprint, push_blueprint_for_services

__all__ = ["PUSH_PATH", "PubSubBus", "PushAuthError", "PushHandler", "PushOutcome", "PushTokenVerifier",
           "make_publisher", "message_attributes", "push_blueprint", "push_blueprint_for_services",
           "topic_path"]
