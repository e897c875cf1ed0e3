"""Leases in the store (bot/store/leases.py), on SQLite and PostgreSQL: one holder at a time,
renewed by its holder, taken over only once expired, given up by its holder only."""

from __future__ import annotations

import threading
from collections.abc import Callable

from bot.store import SqlStore
from tests.bot.conftest import ManualClock

SCOPE = "pubsub-step"
KEY = "projects/p/subscriptions/kfp-bot-events-push 42"


def test_a_lease_has_one_holder_until_it_expires(store: SqlStore, clock: ManualClock) -> None:
    assert store.take_lease(SCOPE, KEY, "a", 30)
    assert not store.take_lease(SCOPE, KEY, "b", 30)
    assert store.take_lease(SCOPE, "another message", "b", 30)

    clock.advance(20)
    assert store.take_lease(SCOPE, KEY, "a", 30)  # renewed by its holder: until 50 s from the start
    clock.advance(20)
    assert not store.take_lease(SCOPE, KEY, "b", 30)
    clock.advance(11)
    assert store.take_lease(SCOPE, KEY, "b", 30)  # expired: its holder is presumed dead
    assert not store.take_lease(SCOPE, KEY, "a", 30)


def test_only_the_holder_gives_a_lease_up(store: SqlStore) -> None:
    assert store.take_lease(SCOPE, KEY, "a", 30)
    store.drop_lease(SCOPE, KEY, "b")
    assert not store.take_lease(SCOPE, KEY, "b", 30)
    store.drop_lease(SCOPE, KEY, "a")
    assert store.take_lease(SCOPE, KEY, "b", 30)


def test_of_many_takers_at_once_in_two_processes_one_wins(open_store: Callable[[], SqlStore],
                                                          clock: ManualClock) -> None:
    stores = [open_store(), open_store()]
    assert stores[0].take_lease(SCOPE, KEY, "old", 5)
    clock.advance(10)  # expired: everyone races to take it over
    won: list[str] = []
    barrier = threading.Barrier(8)

    def take(name: str, store: SqlStore) -> None:
        barrier.wait()
        if store.take_lease(SCOPE, KEY, name, 30):
            won.append(name)

    threads = [threading.Thread(target=take, args=(f"t{i}", stores[i % 2])) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(won) == 1
