"""The Slack adapter (`bot.slack_chat`) against a fake Slack over HTTP, and the retry of a notification
whose post failed (Pub/Sub redelivers it: `/pubsub/push` answers 503)."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import pytest

from bot.config import ConfigurationError, Settings
from bot.pubsub.push import PushHandler, PushOutcome
from bot.slack_chat import SlackChat, SlackRejected, SlackUnavailable, SlackWebhookChat, chat_from_settings
from bot.store import SqlStore
from handlers import slack_notifier as notifier
from handlers.context import HandlerContext
from handlers.event_codec import event_to_dict
from handlers.models import Notification
from handlers.run_models import RunState, Trigger
from handlers.slack_notifier import ChatSettings
from tests.fakes.slack import TOKEN, WEBHOOK_CHANNEL, FakeSlack

MESSAGE = {"text": "✅ hello-pipeline succeeded", "blocks": [
    {"type": "section", "text": {"type": "mrkdwn", "text": "✅ *hello-pipeline* succeeded"}}]}


@pytest.fixture
def slack() -> FakeSlack:
    with FakeSlack() as fake:
        yield fake


def test_a_429_waits_for_retry_after_and_the_message_is_delivered_once(slack: FakeSlack) -> None:
    chat = SlackChat.connect(TOKEN, ChatSettings(), api_url=slack.api_url)
    slack.fail_next("POST", "/api/chat.postMessage", 429, headers={"Retry-After": "1"})
    posted = chat.post("#ml-ci", MESSAGE)
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [429, 200]
    [message] = slack.in_channel("#ml-ci")
    assert (message.ts, message.text, message.blocks) == (posted.ts, MESSAGE["text"], MESSAGE["blocks"])


def test_replies_and_edits_go_to_the_thread_and_the_parent(slack: FakeSlack) -> None:
    chat = SlackChat.connect(TOKEN, ChatSettings(), api_url=slack.api_url)
    parent = chat.post("#ml-ci", {"text": "parent"})
    assert parent.channel == slack.channel_id("#ml-ci") and parent.channel.startswith("C")
    chat.post(parent.channel, MESSAGE, thread=parent.ts)
    chat.update(parent.channel, parent.ts, {"text": "parent, edited"})
    [top] = slack.in_channel("#ml-ci")
    assert (top.text, top.edits) == ("parent, edited", 1)
    assert [m.text for m in slack.thread("#ml-ci", parent.ts)] == [MESSAGE["text"]]


def test_an_edit_by_channel_name_is_refused_as_slack_does(slack: FakeSlack) -> None:
    chat = SlackChat.connect(TOKEN, ChatSettings(), api_url=slack.api_url)
    parent = chat.post("#ml-ci", {"text": "parent"})
    with pytest.raises(SlackRejected, match="channel_not_found"):
        chat.update("#ml-ci", parent.ts, {"text": "parent, edited"})


@pytest.mark.parametrize("status", [500, 503])
def test_a_slack_outage_is_a_transient_error_without_secrets(slack: FakeSlack, status: int, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    chat = SlackChat.connect(TOKEN, ChatSettings(), api_url=slack.api_url)
    slack.fail_next("POST", "/api/chat.postMessage", status)
    with pytest.raises(SlackUnavailable) as caught:
        chat.post("#ml-ci", MESSAGE)
    assert isinstance(caught.value, ConnectionError)
    assert f"HTTP {status}" in str(caught.value) and TOKEN not in str(caught.value)
    assert TOKEN not in caplog.text
    assert len(slack.calls_to("chat.postMessage")) == 1  # 5xx is left to Pub/Sub, never retried here


def test_a_refused_request_is_a_permanent_error_that_says_what_to_check(slack: FakeSlack) -> None:
    chat = SlackChat.connect("xoxb-wrong-token-42", ChatSettings(), api_url=slack.api_url)
    with pytest.raises(SlackRejected) as caught:
        chat.post("#ml-ci", MESSAGE)
    assert "invalid_auth" in str(caught.value) and "KFP_BOT_SLACK_BOT_TOKEN" in str(caught.value)
    assert "xoxb-wrong-token-42" not in str(caught.value)
    assert not isinstance(caught.value, ConnectionError)


def test_an_incoming_webhook_posts_and_never_leaks_its_url(slack: FakeSlack, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    chat = SlackWebhookChat.connect(slack.webhook_url, ChatSettings(threads=False))
    slack.fail_next("POST", "/services/.*", 429, headers={"Retry-After": "1"})
    chat.post("#ignored", MESSAGE)
    assert [m.text for m in slack.in_channel(WEBHOOK_CHANNEL)] == [MESSAGE["text"]]
    slack.fail_next("POST", "/services/.*", 503)
    with pytest.raises(SlackUnavailable) as caught:
        chat.post("#ignored", MESSAGE)
    secret_path = slack.webhook_url.split("/services/")[1]
    assert secret_path not in str(caught.value) and secret_path not in caplog.text
    assert not any(c.has_token for c in slack.calls)


def test_settings_choose_the_adapter_and_refuse_unknown_states(slack: FakeSlack, tmp_path: Path) -> None:
    token = chat_from_settings(Settings(data_dir=tmp_path, slack_bot_token=TOKEN, slack_api_url=slack.api_url,
                                        slack_channel="#ml-ci", slack_notify_states="failed,error"))
    assert isinstance(token, SlackChat)
    assert token.settings == ChatSettings(channel="#ml-ci", notify_states=frozenset({RunState.FAILED,
                                                                                   RunState.ERROR}))
    webhook = chat_from_settings(Settings(data_dir=tmp_path, slack_webhook_url=slack.webhook_url))
    assert isinstance(webhook, SlackWebhookChat) and webhook.settings.threads is False
    assert chat_from_settings(Settings(data_dir=tmp_path)) is None
    with pytest.raises(ConfigurationError, match="finished"):
        chat_from_settings(Settings(data_dir=tmp_path, slack_bot_token=TOKEN, slack_notify_states="finished"))


def _context(store: SqlStore, chat: SlackChat, tmp_path: Path) -> HandlerContext:
    """What the notifier uses: the store and the chat (the run ports are never called by it)."""
    unused = None
    return HandlerContext(store=store, bus=unused, source=unused, builder=unused, compiler=unused,
                          runner=unused, reporter=unused, permissions=unused, pulls=unused,
                          work_dir=tmp_path, chat=chat)


def _push_body(message_id: str, note: Notification) -> bytes:
    data = base64.b64encode(json.dumps(event_to_dict(note)).encode()).decode()
    return json.dumps({"subscription": "projects/p/subscriptions/kfp-bot-notifications-push",
                       "message": {"messageId": message_id, "data": data,
                                   "attributes": {"kind": "notification", "key": note.key}}}).encode()


def test_a_notification_whose_post_fails_is_retried_by_pubsub_and_delivered_once(
        slack: FakeSlack, tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'bot.db'}")
    chat = SlackChat.connect(TOKEN, ChatSettings(channel="#ml-ci"), api_url=slack.api_url)
    ctx = _context(store, chat, tmp_path)
    handler = PushHandler(store, (), lambda event: notifier.router.dispatch(event, ctx),
                          on_error=lambda event, error: None)
    note = Notification(run_id="run-0123456789abcdef", repo="octo/monorepo", sha="4f1c2a9d0e8b", pr=7,
                        pipeline="hello-pipeline", trigger=Trigger.AUTORUN, state=RunState.FAILED,
                        previous_state=RunState.RUNNING, at="2024-05-01T12:00:00+00:00", error="boom")

    # Slack is down: the post fails and Pub/Sub is asked to redeliver (the message is not remembered).
    slack.fail_next("POST", "/api/chat.postMessage", 503)
    outcome, _ = handler.handle(_push_body("m-1", note))
    assert outcome is PushOutcome.RETRY and outcome.status == 503
    assert slack.messages == []

    outcome, _ = handler.handle(_push_body("m-1", note))  # the redelivery
    assert outcome is PushOutcome.PROCESSED
    outcome, _ = handler.handle(_push_body("m-2", note))  # at-least-once: a second copy
    assert outcome is PushOutcome.PROCESSED
    outcome, _ = handler.handle(_push_body("m-2", note))
    assert outcome is PushOutcome.DUPLICATE

    [parent] = slack.in_channel("#ml-ci")
    assert [m.text for m in slack.thread("#ml-ci", parent.ts)] == ["❌ hello-pipeline failed (octo/monorepo#7)"]
    assert "> boom" in parent.mrkdwn


def _failed(state: RunState = RunState.FAILED, pipeline: str = "hello-pipeline") -> Notification:
    return Notification(run_id=f"run-{pipeline}-{state.value}", repo="octo/monorepo", sha="4f1c2a9d0e8b", pr=7,
                        pipeline=pipeline, trigger=Trigger.AUTORUN, state=state,
                        previous_state=RunState.QUEUED, at="2024-05-01T12:00:00+00:00")


def test_a_restarted_bot_edits_the_thread_it_started_by_the_channel_id(slack: FakeSlack, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    settings = ChatSettings(channel="#ml-ci")
    first = SqlStore(url)
    notifier.notify_slack(_failed(RunState.RUNNING), _context(first, SlackChat.connect(
        TOKEN, settings, api_url=slack.api_url), tmp_path))
    first.close()

    # Another process (a second instance, or the same after a restart) with its own client.
    second = SqlStore(url)
    notifier.notify_slack(_failed(RunState.FAILED), _context(second, SlackChat.connect(
        TOKEN, settings, api_url=slack.api_url), tmp_path))
    [parent] = slack.in_channel("#ml-ci")
    assert parent.edits == 1
    assert [c.body["channel"] for c in slack.calls_to("chat.update")] == [slack.channel_id("#ml-ci")]
    assert [m.text.split()[2] for m in slack.thread("#ml-ci", parent.ts)] == ["running", "failed"]
    assert second.get_chat_thread("octo/monorepo#7@#ml-ci").channel == slack.channel_id("#ml-ci")


def test_a_failed_edit_still_posts_the_reply_and_the_failure_is_logged_and_raised(
        slack: FakeSlack, tmp_path: Path, caplog) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'bot.db'}")
    ctx = _context(store, SlackChat.connect(TOKEN, ChatSettings(channel="#ml-ci"), api_url=slack.api_url,
                                            rate_limit_retries=0), tmp_path)
    notifier.notify_slack(_failed(RunState.RUNNING), ctx)
    slack.fail_next("POST", "/api/chat.update", 503)
    with pytest.raises(SlackUnavailable):
        notifier.notify_slack(_failed(RunState.FAILED), ctx)
    [parent] = slack.in_channel("#ml-ci")
    assert [m.text.split()[2] for m in slack.thread("#ml-ci", parent.ts)] == ["running", "failed"]
    [logged] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "run-hello-pipeline-failed" in logged.getMessage() and "not updated" in logged.getMessage()

    # The redelivery edits the parent again and does not post the reply twice.
    notifier.notify_slack(_failed(RunState.FAILED), ctx)
    assert parent.edits == 1 and len(slack.thread("#ml-ci", parent.ts)) == 2
