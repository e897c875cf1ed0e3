"""The `Chat` port on Slack with `slack_sdk`: a bot token (Web API) or an incoming webhook.

Both clients get `slack_sdk`'s `RateLimitErrorRetryHandler` added to their retry handlers (the
library only installs the connection-error one by default), so an HTTP 429 waits for its
`Retry-After` and tries again. Server errors are not retried here: a 5xx may come after Slack
did post, and the notification is redelivered by Pub/Sub anyway.

Failures become `SlackUnavailable` (transient: 429 after retries, 5xx, network; also a
`ConnectionError`, so `/pubsub/push` answers 503 and Pub/Sub redelivers) or `SlackRejected`
(Slack refused the request: bad token, unknown channel; a retry will not help). Neither ever
carries the token or the webhook URL: messages are built from the method, the HTTP status and
Slack's error code only, scrubbed of both secrets, and raised without the library's exception
chained (its text may hold the webhook URL). The SDK's own logger is kept at INFO, since its
DEBUG lines print the webhook URL.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from handlers.ports.chat import ChatMessage
from handlers.run_models import RunState
from handlers.slack_notifier import ChatSettings
from kfp_bot_errors import KfpBotError

if TYPE_CHECKING:
    from slack_sdk import WebClient
    from slack_sdk.webhook import WebhookClient

    from bot.config import Settings

log = logging.getLogger("kfp_bot.slack")

_SDK_LOG = logging.getLogger("kfp_bot.slack.sdk")
_SDK_LOG.setLevel(logging.INFO)

RATE_LIMIT_RETRIES = 3
TIMEOUT_SECONDS = 10


class SlackUnavailable(KfpBotError, ConnectionError):
    """Slack did not take the message (down, rate limited after retries, network): retry later."""


class SlackRejected(KfpBotError):
    """Slack refused the request (invalid token, unknown channel, bad message): fix the settings."""


def _rate_limited(retries: int) -> Any:
    from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

    return RateLimitErrorRetryHandler(max_retry_count=retries)


class _Scrubber:
    """Removes secrets from any text before it reaches an error message or a log line."""

    def __init__(self, *secrets: str) -> None:
        self._secrets = tuple(s for s in secrets if s)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


class SlackChat:
    """`Chat` through the Web API with a bot token: chat.postMessage and chat.update."""

    def __init__(self, client: WebClient, settings: ChatSettings, *, token: str = "") -> None:
        self._client = client
        self.settings = settings
        self._scrub = _Scrubber(token, client.token or "")

    @classmethod
    def connect(cls, token: str, settings: ChatSettings, *, api_url: str = "https://slack.com/api/",
                rate_limit_retries: int = RATE_LIMIT_RETRIES, timeout: int = TIMEOUT_SECONDS) -> SlackChat:
        """A client for `api_url` (KFP_BOT_SLACK_API_URL) with the rate-limit retry handler added."""
        from slack_sdk import WebClient

        base_url = api_url if api_url.endswith("/") else api_url + "/"
        client = WebClient(token=token, base_url=base_url, timeout=timeout, logger=_SDK_LOG)
        client.retry_handlers.append(_rate_limited(rate_limit_retries))
        return cls(client, settings, token=token)

    def post(self, channel: str, message: Mapping[str, Any], *, thread: str | None = None) -> ChatMessage:
        """Post to `channel` (name or ID; in the thread of `thread`): the new message's ts and the
        channel's ID as Slack answers it (chat.update accepts only the ID)."""
        extra: dict[str, Any] = {"thread_ts": thread} if thread else {}
        response = self._call("chat.postMessage", lambda: self._client.chat_postMessage(
            channel=channel, text=str(message.get("text", "")), blocks=list(message.get("blocks") or []),
            unfurl_links=False, unfurl_media=False, **extra))
        return ChatMessage(channel=str(response.get("channel") or channel), ts=str(response.get("ts") or ""))

    def update(self, channel: str, message_id: str, message: Mapping[str, Any]) -> None:
        """Replace the text and blocks of message `message_id` in `channel` (the channel's ID)."""
        self._call("chat.update", lambda: self._client.chat_update(
            channel=channel, ts=message_id, text=str(message.get("text", "")),
            blocks=list(message.get("blocks") or [])))

    def _call(self, method: str, call: Callable[[], Any]) -> Any:
        from slack_sdk.errors import SlackApiError, SlackClientError

        try:
            return call()
        except SlackApiError as exc:
            status = getattr(exc.response, "status_code", None)
            data = getattr(exc.response, "data", None)
            code = data.get("error") if isinstance(data, dict) else None
            raise _api_error(method, status, code, self._scrub) from None
        except (SlackClientError, OSError, ValueError) as exc:
            raise SlackUnavailable(self._scrub(f"Slack {method} failed: {type(exc).__name__}"),
                                   hint="the notification is retried") from None


class SlackWebhookChat:
    """`Chat` through an incoming webhook: it posts to the webhook's own channel and can neither
    edit a message nor reply in a thread (the notifier posts each change on its own)."""

    def __init__(self, client: WebhookClient, settings: ChatSettings) -> None:
        self._client = client
        self.settings = settings
        self._scrub = _Scrubber(client.url)

    @classmethod
    def connect(cls, url: str, settings: ChatSettings, *, rate_limit_retries: int = RATE_LIMIT_RETRIES,
                timeout: int = TIMEOUT_SECONDS) -> SlackWebhookChat:
        """A webhook client for `url` (KFP_BOT_SLACK_WEBHOOK_URL) with the rate-limit retry handler added."""
        from slack_sdk.webhook import WebhookClient

        client = WebhookClient(url, timeout=timeout, logger=_SDK_LOG)
        client.retry_handlers.append(_rate_limited(rate_limit_retries))
        return cls(client, settings)

    def post(self, channel: str, message: Mapping[str, Any], *, thread: str | None = None) -> ChatMessage:
        """Post `message` to the webhook's channel (`channel` and `thread` cannot be honoured);
        a webhook answers no ids, so the message has none."""
        try:
            response = self._client.send(text=str(message.get("text", "")),
                                         blocks=list(message.get("blocks") or []),
                                         unfurl_links=False, unfurl_media=False)
        except Exception as exc:  # the SDK's errors may quote the URL: only the type is kept
            raise SlackUnavailable(self._scrub(f"Slack incoming webhook failed: {type(exc).__name__}"),
                                   hint="the notification is retried") from None
        if response.status_code != 200:
            code = (response.body or "").strip()[:100] or None
            raise _api_error("incoming webhook", response.status_code, code, self._scrub)
        return ChatMessage(channel=channel, ts="")

    def update(self, channel: str, message_id: str, message: Mapping[str, Any]) -> None:
        """Incoming webhooks cannot edit messages."""
        raise SlackRejected("a Slack incoming webhook cannot edit messages",
                            hint="set KFP_BOT_SLACK_BOT_TOKEN for threads and edited messages")


def _api_error(method: str, status: int | None, code: str | None, scrub: Callable[[str], str]) -> KfpBotError:
    """`SlackUnavailable` for 429/5xx/no answer, `SlackRejected` for Slack refusing the request."""
    detail = f"HTTP {status}" if status else "no answer"
    if code:
        detail += f", {code}"
    if status is None or status == 429 or status >= 500:
        return SlackUnavailable(scrub(f"Slack {method} failed ({detail})"), hint="the notification is retried")
    hint = ("check KFP_BOT_SLACK_BOT_TOKEN and that the app is in the channel"
            if code in ("invalid_auth", "not_authed", "not_in_channel", "channel_not_found", "account_inactive")
            else "check the Slack settings")
    return SlackRejected(scrub(f"Slack refused {method} ({detail})"), hint=hint)


def chat_settings_from(settings: Settings, *, threads: bool) -> ChatSettings:
    """The notifier's settings from KFP_BOT_SLACK_* (unknown state names are a configuration error)."""
    from bot.config import ConfigurationError

    names = {s.value for s in RunState}
    unknown = [s for s in settings.slack_notify_states if s not in names]
    if unknown:
        raise ConfigurationError(f"KFP_BOT_SLACK_NOTIFY_STATES: unknown state(s) {', '.join(unknown)}",
                                 hint=f"use some of: {', '.join(sorted(names))}")
    return ChatSettings(channel=settings.slack_channel, deploy_channel=settings.slack_deploy_channel,
                        notify_states=frozenset(RunState(s) for s in settings.slack_notify_states),
                        threads=threads)


def chat_from_settings(settings: Settings) -> SlackChat | SlackWebhookChat | None:
    """The Slack chat the settings ask for: the bot token first, then the webhook URL, else None."""
    if settings.slack_bot_token is not None and settings.slack_bot_token.get_secret_value():
        return SlackChat.connect(settings.slack_bot_token.get_secret_value(),
                                 chat_settings_from(settings, threads=True), api_url=settings.slack_api_url)
    if settings.slack_webhook_url is not None and settings.slack_webhook_url.get_secret_value():
        return SlackWebhookChat.connect(settings.slack_webhook_url.get_secret_value(),
                                        chat_settings_from(settings, threads=False))
    return None
