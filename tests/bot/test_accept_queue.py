"""Accepting deliveries from the web process's event loop (`bot.accept_queue`), on real databases
(a SQLite file and PostgreSQL): deliveries that wait at the same moment share one commit (on the
loop where nothing can make it wait, else on the committer thread), each learns its own outcome,
and the bus hears of the batch's rows once."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from bot.accept_queue import Accepted, AcceptQueue
from bot.store import SqlStore
from handlers.ports.store import IncomingDelivery
from tests.bot.test_accept import head_of, opened


class RecordingBus:
    """A bus that remembers what it was told and on which thread (or fails to be woken, when
    `broken`); `blocks`: its `notify` may wait, as the Pub/Sub relay's."""

    def __init__(self, broken: bool = False, blocks: bool = False) -> None:
        self.told: list[tuple[int, ...]] = []
        self.threads: list[str] = []
        self.broken = broken
        self.notify_blocks = blocks

    def notify(self, ids: Sequence[int] = ()) -> None:
        self.threads.append(threading.current_thread().name)
        if self.broken:
            raise OSError("the bus's pipe is gone")
        self.told.append(tuple(ids))


def incoming(delivery_id: str, number: int) -> IncomingDelivery:
    event = opened(delivery_id, number, f"{number:040x}")
    return IncomingDelivery(delivery_id, "pull_request", event, head_of(event))


def accept_at_once(queue: AcceptQueue, deliveries: list[IncomingDelivery]) -> list[Accepted]:
    async def all_of_them() -> list[Accepted]:
        return list(await asyncio.gather(*(queue.accept(one) for one in deliveries)))

    try:
        return asyncio.run(all_of_them())
    finally:
        queue.close()


def test_deliveries_waiting_together_are_committed_once_each_and_the_bus_hears_once(store: SqlStore) -> None:
    bus = RecordingBus()
    deliveries = [incoming(f"d-{i}", i + 1) for i in range(20)] + [incoming("d-3", 4)]

    outcomes = accept_at_once(AcceptQueue(store, bus), deliveries)

    assert all(isinstance(o, tuple) and len(o) == 1 for o in outcomes[:20])
    assert outcomes[20] is None  # the same delivery again: a duplicate, nothing stored twice
    assert len(store.queued_events()) == 20
    assert all(store.has_delivery(f"d-{i}") for i in range(20))
    # One batch: one commit, and one wake-up naming every row it queued.
    assert bus.told == [tuple(row for o in outcomes[:20] for row in o)]  # type: ignore[union-attr]


def test_deliveries_arriving_while_a_batch_commits_go_in_the_next_one(store: SqlStore) -> None:
    bus = RecordingBus()
    queue = AcceptQueue(store, bus)

    async def in_two_waves() -> list[Accepted]:
        first = asyncio.ensure_future(queue.accept(incoming("early", 1)))
        await asyncio.sleep(0)  # the first batch has gone to the committer
        later = await asyncio.gather(*(queue.accept(incoming(f"late-{i}", i + 2)) for i in range(3)))
        return [await first, *later]

    try:
        outcomes = asyncio.run(in_two_waves())
    finally:
        queue.close()

    assert all(isinstance(o, tuple) for o in outcomes)
    assert len(store.queued_events()) == 4
    assert [len(told) for told in bus.told] == [1, 3]


def test_a_bus_that_cannot_be_woken_loses_no_delivery(store: SqlStore) -> None:
    outcomes = accept_at_once(AcceptQueue(store, RecordingBus(broken=True)), [incoming("d-1", 1)])

    assert isinstance(outcomes[0], tuple)
    assert store.has_delivery("d-1")  # stored: a worker polling the outbox takes it


class UnreachableStore:
    """A store whose database cannot be reached (the committer's call itself fails)."""

    def accept_deliveries_now(self, incoming: Sequence[IncomingDelivery]) -> None:
        return None  # as a store on the network: never on the event loop

    def accept_deliveries(self, incoming: Sequence[IncomingDelivery]) -> list[Accepted]:
        raise ConnectionError("could not connect to the database")


def test_when_the_store_cannot_be_reached_every_waiting_delivery_learns_why() -> None:
    bus = RecordingBus()

    outcomes = accept_at_once(AcceptQueue(UnreachableStore(), bus),  # type: ignore[arg-type]
                              [incoming("d-1", 1), incoming("d-2", 2)])

    assert [type(o) for o in outcomes] == [ConnectionError, ConnectionError]
    assert bus.told == []


def test_another_write_runs_on_the_committer_thread_not_the_event_loop(store: SqlStore) -> None:
    queue = AcceptQueue(store, RecordingBus())

    async def write_from_the_loop() -> tuple[str, str]:
        return threading.current_thread().name, await queue.write(lambda: threading.current_thread().name)

    try:
        loop_thread, writer_thread = asyncio.run(write_from_the_loop())
    finally:
        queue.close()

    assert writer_thread.startswith("kfp-bot-accept") and writer_thread != loop_thread


@pytest.mark.parametrize("blocks", [False, True], ids=["local bus", "bus that publishes"])
def test_a_batch_commits_on_the_loop_only_on_sqlite_with_a_bus_that_does_not_block(store: SqlStore,
                                                                                  blocks: bool) -> None:
    bus = RecordingBus(blocks=blocks)

    outcomes = accept_at_once(AcceptQueue(store, bus), [incoming("d-1", 1), incoming("d-2", 2)])

    assert all(isinstance(o, tuple) for o in outcomes) and len(store.queued_events()) == 2
    on_the_loop = store.url.startswith("sqlite") and not blocks
    assert [name.startswith("kfp-bot-accept") for name in bus.threads] == [not on_the_loop]


def test_while_another_process_holds_sqlites_write_lock_the_loop_goes_on(tmp_path: Path) -> None:
    database = tmp_path / "bot.db"
    with SqlStore(f"sqlite:///{database}") as store:
        bus = RecordingBus()
        queue = AcceptQueue(store, bus)
        holding, release = threading.Event(), threading.Event()

        def other_process_writing() -> None:  # another connection, as the processing process's
            connection = sqlite3.connect(database, isolation_level=None)
            connection.execute("BEGIN IMMEDIATE")
            holding.set()
            release.wait(10)
            connection.rollback()
            connection.close()

        async def accept_while_ticking() -> tuple[Accepted, int]:
            ticks = 0

            async def tick() -> None:
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.01)
                    ticks += 1

            ticker = asyncio.ensure_future(tick())
            outcome = await queue.accept(incoming("d-1", 1))
            ticker.cancel()
            return outcome, ticks

        writer = threading.Thread(target=other_process_writing)
        writer.start()
        assert holding.wait(10)
        threading.Timer(0.3, release.set).start()
        try:
            outcome, ticks = asyncio.run(accept_while_ticking())
        finally:
            release.set()
            writer.join()
            queue.close()

    assert isinstance(outcome, tuple)  # committed once the lock was free, by the committer thread
    assert bus.threads and bus.threads[0].startswith("kfp-bot-accept")
    assert ticks >= 10  # the loop ran on while the commit waited (0.3 s)
