"""A run's state change and what it causes (its notification) are one transaction, on SQLite and PostgreSQL.

A crash between storing a change and queueing its notification would lose the notification for
good (the resumed step finds the run moved and moves nothing); queueing it first would notify a
change that never happened. So both commit together, or neither does.
"""

from __future__ import annotations

import threading

import pytest

from bot.store import SqlStore
from handlers.models import Notification
from handlers.notifications import notification_for
from handlers.run_models import Run, RunState
from tests.bot.test_store import make_run


def notified(store: SqlStore) -> list[tuple[str, RunState, RunState | None]]:
    """(run, state, previous state) of every notification in the outbox, in order."""
    return [(n.run_id, n.state, n.previous_state) for n in store.queued_events(pending=False)
            if isinstance(n, Notification)]


def notify(run: Run) -> tuple[Notification]:
    return (notification_for(run),)


def test_a_state_change_queues_its_notification_in_its_transaction(store: SqlStore) -> None:
    assert store.create_run(make_run())
    woken: list[tuple[int, ...]] = []
    store.on_queued(woken.append)

    moved = store.transition("run-1", RunState.BUILDING, detail="building images", then=notify)

    assert moved is not None and moved.state is RunState.BUILDING
    assert notified(store) == [("run-1", RunState.BUILDING, RunState.QUEUED)]
    assert len(woken) == 1 and len(woken[0]) == 1  # the workers (or the relay) hear of it once committed
    claimed = store.claim("worker", 30.0, ids=woken[0])
    assert claimed is not None and claimed.repo == "octo-org/ml-monorepo"  # fairness: the run's repository


def test_when_the_notification_cannot_be_queued_the_state_does_not_change(store: SqlStore) -> None:
    assert store.create_run(make_run())

    def broken(run: Run) -> tuple[Notification]:
        raise ValueError("the notification cannot be built")

    with pytest.raises(ValueError, match="cannot be built"):
        store.transition("run-1", RunState.BUILDING, then=broken)

    run = store.get_run("run-1")
    assert run is not None and run.state is RunState.QUEUED and len(run.transitions) == 1
    assert notified(store) == []


def test_a_change_made_again_after_a_crash_is_neither_stored_nor_notified_twice(store: SqlStore) -> None:
    assert store.create_run(make_run())
    assert store.transition("run-1", RunState.BUILDING, then=notify) is not None

    # The step is resumed by another owner: the same move is not forward any more.
    assert store.transition("run-1", RunState.BUILDING, then=notify) is None

    assert notified(store) == [("run-1", RunState.BUILDING, RunState.QUEUED)]


def test_racing_changes_notify_each_stored_change_once(store: SqlStore) -> None:
    assert store.create_run(make_run())
    states = [RunState.BUILDING, RunState.COMPILING, RunState.RUNNING, RunState.SUCCEEDED] * 3
    start = threading.Barrier(len(states))

    def move(state: RunState) -> None:
        start.wait()
        store.transition("run-1", state, then=notify)

    threads = [threading.Thread(target=move, args=(state,)) for state in states]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    run = store.get_run("run-1")
    assert run is not None and run.state is RunState.SUCCEEDED
    history = [t.state for t in run.transitions]
    pairs = list(zip(history[1:], history[:-1], strict=True))
    assert [(state, previous) for _, state, previous in notified(store)] == pairs
