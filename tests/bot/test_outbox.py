"""The outbox on real databases (a SQLite file and PostgreSQL): the store is the queue.

What the workers and the relay rely on: a delivery and its event are stored together exactly
once, however many copies arrive at once; a step's follow-ups are queued only by the owner that
finishes it; finished rows are purged after a while. Claims: test_outbox_claims.py; lanes:
test_outbox_lanes.py.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from bot.store import SqlStore
from handlers.models import BuildStatus, PushEvent, RepoRef, RunStart
from handlers.run_models import RunState
from tests.bot.conftest import ManualClock
from tests.bot.test_store import make_run

LEASE = 30.0


def push(repo: str = "octo/alpha", n: int = 0) -> PushEvent:
    return PushEvent(delivery_id=f"d-{repo}-{n}", repo=RepoRef(full_name=repo, clone_url=f"https://x/{repo}.git"),
                     ref="refs/heads/main", before="0" * 40, after=f"{n:040x}", pusher="octocat")


def all_at_once(count: int, work: Callable[[int], Any]) -> list[Any]:
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def body(i: int) -> None:
        barrier.wait()
        results[i] = work(i)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_a_delivery_and_its_event_are_stored_once_whatever_arrives_at_once(store: SqlStore) -> None:
    event = push()
    results = all_at_once(8, lambda i: store.accept_delivery("same-delivery", "push", event))

    accepted = [r for r in results if r is not None]
    assert len(accepted) == 1 and len(accepted[0]) == 1
    assert store.has_delivery("same-delivery")
    assert store.queued_events() == [event]
    assert store.accept_delivery("same-delivery", "push", event) is None


def test_only_the_owner_that_holds_a_row_finishes_it_and_queues_its_follow_ups(
        store: SqlStore, clock: ManualClock) -> None:
    store.create_run(make_run("run-1"))
    store.enqueue([RunStart("run-1")])
    stale = store.claim("stale", LEASE)
    clock.advance(LEASE + 1)
    fresh = store.claim("fresh", LEASE)
    assert stale is not None and fresh is not None

    follow_up = BuildStatus("run-1", RunState.COMPILING)
    assert store.finish(stale.id, "stale", [follow_up]) is None
    assert store.queued_events() == [RunStart("run-1")]

    assert store.finish(fresh.id, "fresh", [follow_up], repo=fresh.repo)
    assert store.queued_events() == [follow_up]
    assert store.pending_work() == 1
    assert store.run_has_work("run-1")
    next_step = store.claim("fresh", LEASE)
    assert next_step is not None and next_step.repo == make_run().repo


def test_finished_rows_are_kept_for_a_while_then_purged(store: SqlStore, clock: ManualClock) -> None:
    store.enqueue([push()])
    claimed = store.claim("w", LEASE)
    assert claimed is not None
    store.finish(claimed.id, "w")
    assert store.pending_work() == 0
    assert store.queued_events(pending=False) == [push()]
    clock.advance(3600)
    from datetime import timedelta

    assert store.purge_done(timedelta(minutes=30)) == 1
    assert store.queued_events(pending=False) == []
