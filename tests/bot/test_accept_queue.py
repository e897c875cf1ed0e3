"""Accepting deliveries from the web process's event loop (`bot.accept_queue`), on real databases
(a SQLite file and PostgreSQL): deliveries that wait at the same moment share one commit on the
committer thread, each learns its own outcome, and the bus hears of the batch's rows once."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

from bot.accept_queue import Accepted, AcceptQueue
from bot.store import SqlStore
from handlers.ports.store import IncomingDelivery
from tests.bot.test_accept import head_of, opened


class RecordingBus:
    """A bus that remembers what it was told (or fails to be woken, when `broken`)."""

    def __init__(self, broken: bool = False) -> None:
        self.told: list[tuple[int, ...]] = []
        self.broken = broken

    def notify(self, ids: Sequence[int] = ()) -> None:
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
