"""Run notifications: every state change of a PR's run is published, in the documented schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from handlers.event_codec import event_to_dict
from handlers.models import Notification
from tests.handlers.conftest import PR, REPO, WRITER, Bot
from tests.handlers.test_pull_request import change_hello

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "notification.schema.json").read_text())


def notifications(bot: Bot) -> list[Notification]:
    """The notifications the bot queued, in order (the outbox keeps handled rows for a day)."""
    return [event for event in bot.services.store.queued_events(pending=False) if isinstance(event, Notification)]


def test_every_state_change_of_a_run_is_published_with_the_documented_fields(bot: Bot) -> None:
    head = change_hello(bot)
    bot.open_pull(head)
    bot.settle()

    [run] = bot.runs(pr=PR)
    published = notifications(bot)
    assert [(n.previous_state and n.previous_state.value, n.state.value) for n in published] == [
        ("queued", "building"), ("building", "compiling"), ("compiling", "running"), ("running", "succeeded")]
    for note in published:
        message = event_to_dict(note)
        jsonschema.validate(message, SCHEMA, format_checker=jsonschema.FormatChecker())
        data = message["data"]
        assert (data["version"], data["repo"], data["pr"], data["sha"], data["pipeline"], data["trigger"]) == (
            1, REPO, PR, head, "hello-pipeline", "autorun")
        assert (data["pr_author"], data["run_id"]) == (WRITER, run["id"])
        assert data["pr_url"].startswith("https://") and data["pr_title"]
    last = event_to_dict(published[-1])["data"]
    assert last["duration_seconds"] is not None and last["error"] is None
    assert [t["at"] for t in run["transitions"][1:]] == [n.at for n in published]


def test_a_run_command_carries_who_ran_it_and_the_overrides(bot: Bot) -> None:
    bot.open_pull(change_hello(bot), draft=True)  # planned, not run
    bot.settle()
    bot.comment("/run hello-pipeline repeat=2")
    bot.settle()
    final = notifications(bot)[-1]
    assert (final.trigger.value, final.triggered_by, dict(final.overrides)) == ("command", WRITER, {"repeat": "2"})
    jsonschema.validate(event_to_dict(final), SCHEMA)


def test_the_schema_refuses_a_message_of_another_version() -> None:
    message = {"kind": "notification", "data": {"version": 2, "run_id": "run-0123456789abcdef", "repo": "a/b",
                                                "sha": "abc", "pipeline": "p", "trigger": "autorun",
                                                "state": "running", "at": "2024-05-01T12:00:00+00:00"}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(message, SCHEMA)
