"""Claiming outbox rows on real databases (a SQLite file and PostgreSQL): one owner at a time.

A row is owned by one instance at a time, and taken over only once its owner's lease expired
(never while its owner is known to be running); a released row can be claimed again at once; a
busy repository does not starve the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

from bot.store import SqlStore
from bot.store.outbox_lanes import Lane
from handlers.models import RunStart
from tests.bot.conftest import ManualClock
from tests.bot.test_outbox import LEASE, all_at_once, push


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


def test_released_rows_can_be_claimed_again_at_once(store: SqlStore) -> None:
    store.enqueue([push()])
    claimed = store.claim("relay", LEASE)
    assert claimed is not None and store.claim("relay-2", LEASE) is None
    assert store.release(claimed.id, "relay")
    again = store.claim("relay-2", LEASE)
    assert again is not None and again.id == claimed.id


def test_a_busy_repository_does_not_starve_the_others(store: SqlStore) -> None:
    store.enqueue([push("octo/busy", n) for n in range(5)])
    store.enqueue([push("octo/quiet", 0)])

    first = store.claim("w1", LEASE, lane=Lane.LONG)
    second = store.claim("w2", LEASE, lane=Lane.LONG)

    assert first is not None and first.repo == "octo/busy"
    assert second is not None and second.repo == "octo/quiet"  # not busy's second row


@contextmanager
def write_transactions() -> Iterator[list[list[str]]]:
    """The statements of each `BEGIN IMMEDIATE` transaction run meanwhile (SQLite's write lock)."""
    found: list[list[str]] = []
    inside = [False]

    def executed(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("BEGIN IMMEDIATE"):
            found.append([])
            inside[0] = True
        elif inside[0]:
            found[-1].append(" ".join(statement.split()))

    def ended(_conn: Any) -> None:
        inside[0] = False

    event.listen(Engine, "before_cursor_execute", executed)
    event.listen(Engine, "commit", ended)
    event.listen(Engine, "rollback", ended)
    try:
        yield found
    finally:
        event.remove(Engine, "before_cursor_execute", executed)
        event.remove(Engine, "commit", ended)
        event.remove(Engine, "rollback", ended)


def test_on_sqlite_a_claim_chooses_its_row_before_it_takes_the_write_lock(tmp_path: Path, clock: ManualClock) -> None:
    # Ordering the claimable rows by busy repository reads every one of them: milliseconds on a
    # long queue, which every webhook commit (the same write lock) would wait for. (PostgreSQL
    # locks rows, not the database: there a row is chosen and taken in one transaction.)
    store = SqlStore(f"sqlite:///{tmp_path / 'kfp-bot.db'}", clock=clock)
    store.enqueue([push("octo/busy", n) for n in range(20)])
    store.enqueue([push("octo/quiet", 0)])
    assert store.claim("w1", LEASE) is not None

    with write_transactions() as transactions:
        second = store.claim("w2", LEASE)

    assert second is not None and second.repo == "octo/quiet"  # the order is kept
    [statements] = transactions
    assert statements and all(s.startswith("UPDATE outbox SET") and "WHERE outbox.id = ?" in s
                              for s in statements), statements
    store.close()


def test_on_sqlite_a_claim_orders_the_queue_from_an_index_alone(tmp_path: Path, clock: ManualClock) -> None:
    # A queued row holds its event's JSON before the columns a claim orders by; reading past it
    # for every queued row (overflow pages for a large event) cost milliseconds a claim.
    store = SqlStore(f"sqlite:///{tmp_path / 'kfp-bot.db'}", clock=clock)
    store.enqueue([push(f"octo/repo-{n % 3}", n) for n in range(30)])
    reads: list[tuple[str, Any]] = []

    def executed(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.startswith("SELECT outbox.id, outbox.owner"):
            reads.append((statement, parameters))

    event.listen(Engine, "before_cursor_execute", executed)
    try:
        assert store.claim("w1", LEASE, lane=Lane.LONG) is not None
    finally:
        event.remove(Engine, "before_cursor_execute", executed)
    [(statement, parameters)] = reads
    with store._engine.connect() as conn:
        plan = [row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)]
    store.close()
    scans = [step for step in plan if step.startswith(("SCAN outbox", "SEARCH outbox"))]
    assert len(scans) == 2 and all("USING COVERING INDEX ix_outbox_claim" in step for step in scans), plan
