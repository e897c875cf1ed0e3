"""The outbox on real databases (a SQLite file and PostgreSQL): the store is the queue.

What the workers and the relay rely on: a delivery and its event are stored together exactly
once, however many copies arrive at once; a row is owned by one instance at a time, and taken
over only once its owner's lease expired; a step's follow-ups are queued only by the owner that
finishes it; short bookkeeping has its own lane; a busy repository does not starve the others.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from bot.store import SqlStore
from bot.store.outbox import Lane, lane_for
from handlers.models import BuildStatus, Notification, PushEvent, RepoRef, RunStart, RunStatus
from handlers.run_models import RunState, Trigger
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


def test_concurrent_owners_never_get_the_same_row(open_store: Callable[[], SqlStore]) -> None:
    first = open_store()
    first.enqueue([push(n=n) for n in range(12)])
    stores = [first, open_store(), open_store()]  # three instances on one database

    def drain(i: int) -> list[int]:
        got = []
        while (claimed := stores[i % 3].claim(f"owner-{i}", LEASE)) is not None:
            got.append(claimed.id)
        return got

    claimed = [row for rows in all_at_once(6, drain) for row in rows]
    assert sorted(claimed) == sorted(set(claimed)) and len(claimed) == 12


def test_a_live_lease_is_never_taken_over_and_an_expired_one_is(store: SqlStore, clock: ManualClock) -> None:
    [row] = store.enqueue([RunStart("run-1")])
    mine = store.claim("alive", LEASE)
    assert mine is not None and mine.id == row and mine.attempts == 1

    clock.advance(LEASE - 1)
    assert store.claim("other", LEASE) is None
    assert store.renew("alive", LEASE) == 1  # the heartbeat
    clock.advance(LEASE - 1)
    assert store.claim("other", LEASE) is None

    clock.advance(2)  # the owner stopped renewing: it is gone
    taken = store.claim("other", LEASE)
    assert taken is not None and taken.id == row and taken.attempts == 2
    assert taken.event == RunStart("run-1")


def test_a_late_lease_of_an_owner_known_to_be_running_is_renewed_not_taken_over(
        store: SqlStore, clock: ManualClock) -> None:
    [slow_row, dead_row] = store.enqueue([RunStart("run-1"), RunStart("run-2")])
    assert store.claim("slow", LEASE, ids=[slow_row]) is not None
    assert store.claim("dead", LEASE, ids=[dead_row]) is not None
    clock.advance(LEASE + 1)  # neither renewed in time: "slow" is running still, "dead" is not

    taken = store.claim("other", LEASE, alive=lambda owner: owner == "slow")

    assert taken is not None and taken.id == dead_row and taken.attempts == 2
    assert store.claim("other", LEASE, alive=lambda owner: owner == "slow") is None
    assert store.finish(slow_row, "slow") == ()  # still the slow owner's to finish
    assert store.pending_work() == 1


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


def test_released_rows_can_be_claimed_again_at_once(store: SqlStore) -> None:
    store.enqueue([push()])
    claimed = store.claim("relay", LEASE)
    assert claimed is not None and store.claim("relay-2", LEASE) is None
    assert store.release(claimed.id, "relay")
    again = store.claim("relay-2", LEASE)
    assert again is not None and again.id == claimed.id


def test_state_changes_and_notifications_have_a_lane_of_their_own(store: SqlStore) -> None:
    notification = Notification(run_id="r", repo="octo/alpha", sha="a" * 40, pipeline="p",
                                trigger=Trigger.AUTORUN, state=RunState.RUNNING, at="2024-05-01T10:00:00+00:00")
    assert lane_for(RunStatus("r", RunState.SUCCEEDED)) is Lane.SHORT
    assert lane_for(notification) is Lane.SHORT
    assert lane_for(BuildStatus("r", RunState.FAILED)) is Lane.SHORT
    assert lane_for(BuildStatus("r", RunState.COMPILING)) is Lane.LONG
    assert lane_for(RunStart("r")) is Lane.LONG
    assert lane_for(push()) is Lane.LONG

    store.enqueue([RunStart("r"), push(), RunStatus("r", RunState.SUCCEEDED)])
    short = store.claim("w", LEASE, lane=Lane.SHORT)
    assert short is not None and short.event == RunStatus("r", RunState.SUCCEEDED)
    assert store.claim("w", LEASE, lane=Lane.SHORT) is None


def test_a_busy_repository_does_not_starve_the_others(store: SqlStore) -> None:
    store.enqueue([push("octo/busy", n) for n in range(5)])
    store.enqueue([push("octo/quiet", 0)])

    first = store.claim("w1", LEASE, lane=Lane.LONG)
    second = store.claim("w2", LEASE, lane=Lane.LONG)

    assert first is not None and first.repo == "octo/busy"
    assert second is not None and second.repo == "octo/quiet"  # not busy's second row


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
