"""A push step and the next steps it publishes complete together; a step is run once per outbox row.

The app, the Pub/Sub fake's push subscription and the relay are those of `test_pubsub_push`; the
handlers here publish a next step through the bot's bus, as `handlers.runs` does.
"""

from __future__ import annotations

import sqlite3

from bot.pubsub.envelope import STEP_ATTRIBUTE
from handlers.models import BuildStatus, Event, RunStart, RunState
from tests.bot.test_pubsub_push import Bot, bot, envelope, our_message, outcomes, settings, signer  # noqa: F401

NEXT = BuildStatus(run_id="run-1", state=RunState.COMPILING, detail="images built")


def publish_next_step(bot: Bot, before: list[str] | None = None) -> None:
    """Handlers that answer RunStart with NEXT on the bus; `before` lists SQL run before publishing."""
    def step(event: Event) -> None:
        if isinstance(event, RunStart):
            if before:
                with sqlite3.connect(bot.db_path) as db:
                    db.execute(before.pop(0))
            bot.services.bus.publish(NEXT)

    bot.handlers.then = step


def test_the_next_step_is_queued_when_the_step_completes_and_relayed_with_its_row_id(bot: Bot) -> None:
    publish_next_step(bot)
    bot.subscribe()

    first = bot.fake.deliver(*our_message(RunStart("run-1")), topic="kfp-bot-events")
    assert bot.fake.wait_idle()

    assert bot.handlers.dispatched == [RunStart("run-1"), NEXT]
    [relayed] = [m for m in bot.fake.messages_on("kfp-bot-events") if m.message_id != first.message_id]
    assert relayed.attributes[STEP_ATTRIBUTE].isdigit()
    assert outcomes(bot, relayed.message_id) == [(200, "processed")]
    assert bot.store.pending_work() == 0


def test_a_step_that_cannot_be_recorded_queues_nothing_and_runs_again(bot: Bot) -> None:
    # The outbox is unavailable as the step completes: remembering the message and queueing the
    # next step fail together, Pub/Sub is answered 503, and the redelivery runs the step again.
    publish_next_step(bot, before=["ALTER TABLE outbox RENAME TO outbox_away",
                                   "ALTER TABLE outbox_away RENAME TO outbox"])
    bot.subscribe()

    message = bot.fake.deliver(*our_message(RunStart("run-1")), topic="kfp-bot-events")
    assert bot.fake.wait_idle()

    assert outcomes(bot, message.message_id) == [(503, "retry"), (200, "processed")]
    assert bot.handlers.dispatched == [RunStart("run-1"), RunStart("run-1"), NEXT]  # the next step once
    assert len(bot.fake.messages_on("kfp-bot-events")) == 2


def test_an_outbox_row_published_twice_runs_once(bot: Bot) -> None:
    # A relay that stopped between Pub/Sub's answer and marking the row sent publishes it again:
    # a new message id, the same row.
    data, attributes = our_message(RunStart("run-1"))
    attributes[STEP_ATTRIBUTE] = "41"

    answers = [bot.post(envelope(message_id, data, attributes)) for message_id in ("m-1", "m-2")]
    other_row = bot.post(envelope("m-3", data, {**attributes, STEP_ATTRIBUTE: "42"}))

    assert [(a.status_code, a.json()["status"]) for a in answers] == [(200, "processed"), (200, "duplicate")]
    assert (other_row.status_code, other_row.json()["status"]) == (200, "processed")
    assert bot.handlers.dispatched == [RunStart("run-1"), RunStart("run-1")]
