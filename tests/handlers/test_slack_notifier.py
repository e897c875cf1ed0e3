"""The Slack notifier: what people see in Slack for a PR whose pipelines succeed and fail.

End to end, the embedded bot (with a bot token) posts to a fake Slack over HTTP through
`slack_sdk`; the message texts themselves are pinned by golden files (tests/golden/messages/).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from handlers.messages.slack_blocks import MAX_SLACK_ERROR_CHARS, slack_change, slack_thread
from handlers.models import Notification
from handlers.run_models import Run, RunState, Trigger
from tests.fakes.slack import FakeSlack
from tests.handlers.conftest import PR, REPO, Bot
from tests.support.golden import assert_golden

HELLO_SETTINGS = "pipelines/hello-pipeline/settings.yaml"
DATASET_SETTINGS = "pipelines/dataset-pipeline/settings.yaml"


def test_a_pr_gets_one_thread_per_channel_updated_in_place_with_each_change_as_a_reply(
        slack_bot: tuple[Bot, FakeSlack]) -> None:
    bot, slack = slack_bot
    hello = (bot.repo.root / HELLO_SETTINGS).read_text().replace("repeat: 3", "repeat: 4")
    head = bot.branch("two-pipelines", {HELLO_SETTINGS: hello,
                                        DATASET_SETTINGS: "arguments:\n  rows: [3\n"})
    bot.open_pull(head)
    bot.settle()
    states = {r["pipeline"]: r["state"] for r in bot.runs(pr=PR)}
    assert states == {"hello-pipeline": "succeeded", "dataset-pipeline": "failed"}

    # .kfp-bot.yaml: dataset-pipeline goes to #data, the rest of the repository to #ml-ci.
    [ml_parent] = slack.in_channel("#ml-ci")
    [data_parent] = slack.in_channel("#data")
    assert slack.in_channel("#fallback") == []
    for parent in (ml_parent, data_parent):
        assert f"|{REPO}#{PR}>" in parent.mrkdwn  # a link to the PR
        assert f"head `{head[:7]}`" in parent.mrkdwn
    # Each channel's parent shows the pipelines that notify there, at their latest state.
    assert "*hello-pipeline* succeeded" in ml_parent.mrkdwn and "dataset-pipeline" not in ml_parent.mrkdwn
    assert "*dataset-pipeline* failed" in data_parent.mrkdwn and "hello-pipeline" not in data_parent.mrkdwn
    assert f"> {DATASET_SETTINGS}" in data_parent.mrkdwn  # the short error, under the failed pipeline

    hello_replies = slack.thread("#ml-ci", ml_parent.ts)
    assert sorted(r.text for r in hello_replies) == [
        f"✅ hello-pipeline succeeded ({REPO}#{PR})", f"🏃 hello-pipeline running ({REPO}#{PR})"]
    [failed] = slack.thread("#data", data_parent.ts)
    assert failed.text == f"❌ dataset-pipeline failed ({REPO}#{PR})"
    assert DATASET_SETTINGS in failed.mrkdwn and "(was compiling)" in failed.mrkdwn

    # One parent per channel, edited (never re-posted) as the pipelines moved.
    posts = slack.calls_to("chat.postMessage")
    assert len([c for c in posts if not c.body.get("thread_ts")]) == 2
    assert len(posts) == 2 + 3
    assert ml_parent.edits >= 1 and all(c.has_token for c in slack.calls)


def test_states_not_configured_to_notify_post_nothing(slack_bot: tuple[Bot, FakeSlack]) -> None:
    bot, slack = slack_bot
    head = bot.branch("dataset-only", {DATASET_SETTINGS: "arguments:\n  rows: [3\n"})
    bot.open_pull(head)
    bot.settle()
    [parent] = slack.in_channel("#data")
    # building and compiling are not in KFP_BOT_SLACK_NOTIFY_STATES' default: only the failure is posted.
    assert [r.text.split()[-2] for r in slack.thread("#data", parent.ts)] == ["failed"]


# --- the messages, pinned --------------------------------------------------------------------

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
SHA = "4f1c2a9d0e8b7c6a5f4e3d2c1b0a9f8e7d6c5b4a"
PR_URL = "https://github.com/octo/monorepo/pull/42"


def _note(pipeline: str = "head-pose-pipeline", state: RunState = RunState.FAILED, **changes) -> Notification:
    values = dict(run_id="run-0123456789abcdef", repo="octo/monorepo", sha=SHA, pipeline=pipeline,
                  trigger=Trigger.AUTORUN, state=state, at=T0.isoformat(), previous_state=RunState.RUNNING,
                  pr=42, pr_title="Faster <training> & evaluation", pr_author="alice", pr_url=PR_URL,
                  url="https://console.cloud.google.com/vertex-ai/pipelines/runs/hp-1", duration_seconds=125.0,
                  error="Traceback (most recent call last):\n  File x\nValueError: bad lr")
    values.update(changes)
    return Notification(**values)


def _run(pipeline: str, state: RunState, *, error: str | None = None, url: str | None = None) -> Run:
    return Run(id=f"run-{pipeline}", repo="octo/monorepo", pr=42, sha=SHA, base_sha=None, pipeline=pipeline,
               trigger=Trigger.AUTORUN, state=state, created_at=T0, updated_at=T0 + timedelta(seconds=125),
               url=url, error=error)


def _json(message: dict) -> str:
    return json.dumps(message, indent=2, ensure_ascii=False) + "\n"


def test_golden_thread_parent() -> None:
    runs = [_run("head-pose-pipeline", RunState.FAILED, error="ValueError: bad lr\nmore",
                 url="https://console.cloud.google.com/vertex-ai/pipelines/runs/hp-1"),
            _run("mnist-pipeline", RunState.SUCCEEDED, url="https://kfp.example.com/#/runs/details/m-1"),
            _run("dataset-pipeline", RunState.RUNNING, url="/tmp/local/run")]
    message = slack_thread(_note(), runs)
    assert_golden(_json(message), "messages/slack_thread.json")
    text = message["blocks"][0]["text"]["text"]
    assert f"<{PR_URL}|octo/monorepo#42>" in text and "&lt;training&gt; &amp;" in text


def test_golden_change_reply() -> None:
    message = slack_change(_note(trigger=Trigger.COMMAND, triggered_by="bob",
                                          overrides={"epochs": 1, "lr": "0.01"}))
    assert_golden(_json(message), "messages/slack_change_failed.json")
    assert "`epochs=1`" in message["blocks"][-1]["elements"][0]["text"]


def test_golden_deploy_change() -> None:
    message = slack_change(_note(state=RunState.SUCCEEDED, trigger=Trigger.DEPLOY, triggered_by="maria",
                                          pr=None, pr_title=None, pr_author=None, pr_url=None, error=None))
    assert_golden(_json(message), "messages/slack_change_deploy.json")


def test_a_long_error_is_cut_to_its_first_line() -> None:
    message = slack_change(_note(error="x" * 5000 + "\nsecond line"))
    error_block = message["blocks"][1]["text"]["text"]
    assert len(error_block) <= MAX_SLACK_ERROR_CHARS + 2 and "second line" not in error_block
