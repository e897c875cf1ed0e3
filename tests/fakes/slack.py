"""A fake Slack on 127.0.0.1: the Web API methods the notifier uses, and incoming webhooks.

`slack_sdk.WebClient(base_url=slack.api_url)` and `WebhookClient(slack.webhook_url)` talk to
it over real HTTP. It answers `chat.postMessage` and `chat.update` like Slack (`ok`, `ts`,
`channel`, `message`; `invalid_auth` for a wrong token, `channel_not_found`, `message_not_found`,
`thread_not_found`), keeps the messages per channel with their threads, and records every call
(method, JSON or form body, whether a token came) for assertions. `fail_next` (from the base)
answers 429 with Retry-After or 5xx on demand.

Channels have IDs (`C0FAKE001`, ...), as in Slack. `chat.postMessage` takes an ID or a name and
answers with the channel's ID (https://api.slack.com/methods/chat.postMessage: "channel: An
encoded ID or channel name"; the response's `channel` is the ID). `chat.update` takes the ID
only and answers `channel_not_found` for a name (https://api.slack.com/methods/chat.update:
"channel: Channel containing the message to be updated", an ID; the method's errors list
`channel_not_found`), which is what real Slack answers for `#name` there. Messages are kept
under the channel's ID; the helpers (`in_channel`, `thread`) take either.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from tests.fakes.http import FakeHTTPServer, Incoming, JsonResponse

TOKEN = "xoxb-fake-slack-token-0123456789"
WEBHOOK_PATH = "/services/T0FAKE/B0FAKE/fakewebhooksecret0123456789"
WEBHOOK_CHANNEL = "#webhook-channel"


@dataclass(frozen=True)
class SlackCall:
    """One call as the fake received it."""

    method: str
    body: dict[str, Any]
    has_token: bool
    status: int


@dataclass
class SlackMessage:
    """A message in a channel, as it is now (after edits)."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None
    edits: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def mrkdwn(self) -> str:
        """Every mrkdwn text of the blocks, joined: what a person reads."""
        texts = []
        for block in self.blocks:
            if isinstance(block.get("text"), dict):
                texts.append(block["text"].get("text", ""))
            for element in block.get("elements") or ():
                texts.append(element.get("text", ""))
        return "\n".join(texts)


class FakeSlack(FakeHTTPServer):
    """Slack's Web API under `/api/` and an incoming webhook at `webhook_url`."""

    def __init__(self, token: str = TOKEN, channels: tuple[str, ...] = ("#ml-ci",)) -> None:
        super().__init__()
        self.token = token
        names = sorted(set(channels) | {WEBHOOK_CHANNEL})
        self.channel_ids: dict[str, str] = {name: f"C0FAKE{i:03d}" for i, name in enumerate(names, 1)}
        self.messages: list[SlackMessage] = []
        self.calls: list[SlackCall] = []
        self._clock = itertools.count(1)
        self.add_route("POST", "/api/chat.postMessage", self._post_message)
        self.add_route("POST", "/api/chat.update", self._update)
        self.add_route("POST", WEBHOOK_PATH, self._webhook)

    @property
    def api_url(self) -> str:
        """The `base_url` for `slack_sdk.WebClient`."""
        return f"{self.url}/api/"

    @property
    def webhook_url(self) -> str:
        """The incoming webhook's URL (its path is the secret)."""
        return f"{self.url}{WEBHOOK_PATH}"

    def channel_id(self, channel: str) -> str:
        """The ID of channel `channel` (a name, with or without `#`, or already an ID)."""
        return self._resolve(channel, names=True) or channel

    def in_channel(self, channel: str) -> list[SlackMessage]:
        """Top-level messages of `channel` (name or ID), oldest first."""
        channel = self.channel_id(channel)
        with self.lock:
            return [m for m in self.messages if m.channel == channel and m.thread_ts is None]

    def thread(self, channel: str, ts: str) -> list[SlackMessage]:
        """Replies in the thread of message `ts` in `channel` (name or ID), oldest first."""
        channel = self.channel_id(channel)
        with self.lock:
            return [m for m in self.messages if m.channel == channel and m.thread_ts == ts]

    def calls_to(self, method: str) -> list[SlackCall]:
        with self.lock:
            return [c for c in self.calls if c.method == method]

    # -- the API --------------------------------------------------------------------------

    def default_fault(self, status: int) -> tuple[Any, dict[str, str]]:
        if status == 429:
            return {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"}
        return {"ok": False, "error": "fatal_error"}, {}

    def _answer(self, incoming: Incoming) -> JsonResponse:
        response = super()._answer(incoming)
        method = incoming.path.rsplit("/", 1)[-1] if incoming.path.startswith("/api/") else "webhook"
        self.calls.append(SlackCall(method, self._body(incoming), self._token(incoming) is not None,
                                    response.status))
        return response

    def _post_message(self, incoming: Incoming) -> JsonResponse:
        body = self._body(incoming)
        refused = self._refuse(incoming, body, names=True)
        if refused:
            return refused
        thread = body.get("thread_ts") or None
        channel = self._resolve(body["channel"], names=True)
        if thread and not any(m.ts == thread and m.channel == channel and m.thread_ts is None
                              for m in self.messages):
            return JsonResponse(200, {"ok": False, "error": "thread_not_found"})
        message = SlackMessage(channel=channel, ts=self._ts(), text=str(body.get("text", "")),
                               blocks=_blocks(body), thread_ts=thread)
        self.messages.append(message)
        return JsonResponse(200, {"ok": True, "channel": channel, "ts": message.ts,
                                  "message": {"text": message.text, "ts": message.ts}})

    def _update(self, incoming: Incoming) -> JsonResponse:
        body = self._body(incoming)
        refused = self._refuse(incoming, body, names=False)  # chat.update: the channel's ID only
        if refused:
            return refused
        target = next((m for m in self.messages if m.channel == body["channel"] and m.ts == body.get("ts")), None)
        if target is None:
            return JsonResponse(200, {"ok": False, "error": "message_not_found"})
        target.history.append({"text": target.text, "blocks": target.blocks})
        target.text, target.blocks = str(body.get("text", "")), _blocks(body)
        target.edits += 1
        return JsonResponse(200, {"ok": True, "channel": target.channel, "ts": target.ts, "text": target.text})

    def _webhook(self, incoming: Incoming) -> JsonResponse:
        body = self._body(incoming)
        if not body.get("text") and not body.get("blocks"):
            return JsonResponse(400, "no_text")
        self.messages.append(SlackMessage(channel=self.channel_ids[WEBHOOK_CHANNEL], ts=self._ts(), text=str(body.get("text", "")),
                                          blocks=_blocks(body)))
        return JsonResponse(200, "ok")

    def _refuse(self, incoming: Incoming, body: dict[str, Any], *, names: bool) -> JsonResponse | None:
        if self._token(incoming) != self.token:
            return JsonResponse(200, {"ok": False, "error": "invalid_auth"})
        if self._resolve(str(body.get("channel") or ""), names=names) is None:
            return JsonResponse(200, {"ok": False, "error": "channel_not_found"})
        return None

    def _resolve(self, channel: str, *, names: bool) -> str | None:
        """The ID of `channel`: an ID is taken as it is; a name only where `names` (postMessage)."""
        if channel in self.channel_ids.values():
            return channel
        if not names:
            return None
        return self.channel_ids.get(channel) or self.channel_ids.get(f"#{channel}")

    def _ts(self) -> str:
        return f"1700000000.{next(self._clock):06d}"

    @staticmethod
    def _token(incoming: Incoming) -> str | None:
        header = next((v for k, v in incoming.headers.items() if k.lower() == "authorization"), "")
        return header.split(" ", 1)[1] if header.startswith("Bearer ") else None

    @staticmethod
    def _body(incoming: Incoming) -> dict[str, Any]:
        content_type = next((v for k, v in incoming.headers.items() if k.lower() == "content-type"), "")
        if "application/x-www-form-urlencoded" in content_type:
            return dict(parse_qsl(incoming.body.decode(), keep_blank_values=True))
        try:
            data = incoming.json()
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}


def _blocks(body: dict[str, Any]) -> list[dict[str, Any]]:
    import json

    blocks = body.get("blocks") or []
    if isinstance(blocks, str):  # form-encoded calls send blocks as a JSON string
        blocks = json.loads(blocks)
    return list(blocks)
