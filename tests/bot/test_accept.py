"""Accepting deliveries with group commits, on real databases (a SQLite file and PostgreSQL).

What the webhook's 202 relies on: the delivery, its event and the pull request head it announces
are committed together before `accept_delivery` returns; a comment is bound to the head stored
when it is accepted (in arrival order within a batch); deliveries accepted at the same moment
share one transaction without losing or doubling any of them; a delivery that breaks a shared
transaction fails alone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.store import SqlStore
from bot.store.accept import Acceptance, GroupCommit, delivery_record
from bot.store.accept import acceptance as acceptance_of
from bot.store.errors import StoreError
from bot.store.rows import pull_values
from handlers.models import IssueCommentEvent, PullRequestAction, PullRequestEvent
from handlers.ports.store import IncomingDelivery, StoredPull
from tests.bot.test_outbox import all_at_once, push
from tests.bot.test_store import make_pull


def opened(delivery_id: str, number: int, head_sha: str) -> PullRequestEvent:
    repo, pull = make_pull(number=number, head_sha=head_sha)
    return PullRequestEvent(delivery_id=delivery_id, action=PullRequestAction.OPENED, repo=repo, pull=pull,
                            sender="octocat", installation_id=42)


def head_of(event: PullRequestEvent) -> StoredPull:
    return StoredPull(repo=event.repo, pull=event.pull, installation_id=event.installation_id)


def test_many_deliveries_at_once_are_each_stored_once_with_their_heads(store: SqlStore) -> None:
    events = [opened(f"d-{i}", number=i + 1, head_sha=f"{i + 1:040x}") for i in range(12)]

    # 24 requests at once: every delivery arrives twice.
    results = all_at_once(24, lambda i: store.accept_delivery(events[i % 12].delivery_id, "pull_request",
                                                              events[i % 12], head=head_of(events[i % 12])))

    for i, event in enumerate(events):
        pair = [results[i], results[i + 12]]
        assert sorted(r is None for r in pair) == [False, True], event.delivery_id  # one accepted, one duplicate
        stored = store.get_pull(event.repo.full_name, event.pull.number)
        assert stored is not None and stored.pull.head_sha == event.pull.head_sha and stored.installation_id == 42
    assert sorted(e.delivery_id for e in store.queued_events()) == sorted(e.delivery_id for e in events)


def test_a_duplicate_does_not_move_the_stored_head_back(store: SqlStore) -> None:
    first = opened("d-1", number=7, head_sha="1" * 40)
    later = opened("d-2", number=7, head_sha="2" * 40)
    store.accept_delivery("d-1", "pull_request", first, head=head_of(first))
    store.accept_delivery("d-2", "pull_request", later, head=head_of(later))

    assert store.accept_delivery("d-1", "pull_request", first, head=head_of(first)) is None

    stored = store.get_pull(later.repo.full_name, 7)
    assert stored is not None and stored.pull.head_sha == "2" * 40


def accept_in_one_batch(committer: GroupCommit, items: list[Acceptance]) -> list[Any]:
    """Submit `items` from threads while a commit is in progress, so that they queue together
    and the next commit takes them all; each thread's result or exception."""
    outcomes: list[Any] = [None] * len(items)

    def submit(i: int) -> None:
        try:
            outcomes[i] = committer.accept(items[i])
        except Exception as exc:  # the test looks at it
            outcomes[i] = exc

    with committer._commit_lock:  # a commit "in progress"
        threads = [threading.Thread(target=submit, args=(i,)) for i in range(len(items))]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while len(committer._pending) < len(items):
            assert time.monotonic() < deadline
            time.sleep(0.001)
    for thread in threads:
        thread.join()
    return outcomes


def acceptance(store: SqlStore, delivery_id: str) -> Acceptance:
    event = push(n=int(delivery_id.split("-")[1]))
    now = datetime.now(UTC)
    return Acceptance(delivery_record(delivery_id, "push", now), store._row(None, event, now, None))


def test_deliveries_queued_together_share_one_transaction(store: SqlStore) -> None:
    transactions = []
    committer = GroupCommit(lambda: (transactions.append(1), store._acceptor._write())[1], store._engine.dialect)
    items = [acceptance(store, f"d-{i}") for i in range(5)] + [acceptance(store, "d-2")]

    outcomes = accept_in_one_batch(committer, items)

    assert len(transactions) == 1
    assert all(isinstance(o, tuple) and len(o) == 1 for o in outcomes[:5])
    assert outcomes[5] is None  # the same id twice in one batch: the first one wins
    assert len(store.queued_events()) == 5


def test_a_delivery_that_breaks_the_batch_fails_alone(store: SqlStore) -> None:
    committer = GroupCommit(store._acceptor._write, store._engine.dialect)
    items = [acceptance(store, f"d-{i}") for i in range(4)]
    items[2].row["kind"] = None  # NOT NULL: this row cannot be stored

    outcomes = accept_in_one_batch(committer, items)

    assert isinstance(outcomes[2], Exception)
    assert [isinstance(o, tuple) for i, o in enumerate(outcomes) if i != 2] == [True, True, True]
    assert store.has_delivery("d-0") and store.has_delivery("d-3")
    assert not store.has_delivery("d-2")  # nothing of it was kept: its redelivery will be accepted
    assert len(store.queued_events()) == 3


@pytest.mark.parametrize("count", [1, 3])
def test_accept_returns_only_after_the_commit(open_store: Callable[[], SqlStore], count: int) -> None:
    store, other = open_store(), open_store()  # `other`: another process's connection
    committer = GroupCommit(store._acceptor._write, store._engine.dialect)
    items = [acceptance(store, f"d-{i}") for i in range(count)]

    accept_in_one_batch(committer, items)

    assert all(other.has_delivery(f"d-{i}") for i in range(count))


def comment(delivery_id: str, number: int) -> IssueCommentEvent:
    repo, _ = make_pull(number=number, head_sha="0" * 40)
    return IssueCommentEvent(delivery_id=delivery_id, repo=repo, number=number, comment_id=1, body="/run",
                             author="octocat", author_is_bot=False, installation_id=42)


def test_a_comment_is_queued_bound_to_the_head_stored_when_it_is_accepted(store: SqlStore) -> None:
    pr = opened("d-pr", number=7, head_sha="1" * 40)
    store.accept_delivery("d-pr", "pull_request", pr, head=head_of(pr))

    store.accept_delivery("d-c1", "issue_comment", comment("d-c1", 7))
    store.accept_delivery("d-c2", "issue_comment", comment("d-c2", 8))  # a pull request the bot never saw
    assert store.accept_delivery("d-c1", "issue_comment", comment("d-c1", 7)) is None

    queued = {e.delivery_id: e for e in store.queued_events()}
    assert len(queued) == 3
    assert isinstance(queued["d-c1"], IssueCommentEvent) and queued["d-c1"].head_sha == "1" * 40
    assert isinstance(queued["d-c2"], IssueCommentEvent) and queued["d-c2"].head_sha is None


def test_in_one_batch_a_comment_sees_the_heads_of_the_deliveries_before_it(store: SqlStore) -> None:
    first = opened("d-1", number=7, head_sha="1" * 40)
    store.accept_delivery("d-1", "pull_request", first, head=head_of(first))
    moved = opened("d-2", number=7, head_sha="2" * 40)
    committer = store._acceptor
    now = datetime.now(UTC)

    def item(delivery_id: str, event: Any, head: StoredPull | None = None) -> Acceptance:
        pull = pull_values(head.repo, head.pull, head.installation_id, now) if head else None
        return acceptance_of(delivery_record(delivery_id, "x", now), event, store._row(None, event, now, None), pull)

    outcomes = accept_in_one_batch(committer, [item("d-c1", comment("d-c1", 7)),
                                               item("d-2", moved, head_of(moved)),
                                               item("d-c2", comment("d-c2", 7)),
                                               item("d-1", first, head_of(first))])  # a redelivery

    assert [o is None for o in outcomes] == [False, False, False, True]
    queued = {e.delivery_id: e for e in store.queued_events()}
    assert [getattr(queued[d], "head_sha", None) for d in ("d-c1", "d-c2")] == ["1" * 40, "2" * 40]
    stored = store.get_pull(first.repo.full_name, 7)
    assert stored is not None and stored.pull.head_sha == "2" * 40  # the redelivery did not move it back


@contextmanager
def writing_meanwhile(store: SqlStore) -> Iterator[threading.Event]:
    """`store`'s write lock held by another thread until the block ends or the event it gives is set."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store._write():
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        yield release
    finally:
        release.set()
        holder.join()


def test_a_delivery_waits_for_another_writer_then_commits(open_store: Callable[[], SqlStore]) -> None:
    store, other = open_store(), open_store()  # `other`: another process holding the write lock
    with writing_meanwhile(other) as release:
        threading.Timer(0.05, release.set).start()
        rows = store.accept_delivery("d-1", "push", push(n=1))

    assert rows is not None and other.has_delivery("d-1")


def test_a_write_lock_held_past_the_busy_timeout_fails_the_delivery_alone(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    with SqlStore(url, busy_timeout=0.05) as store, SqlStore(url) as other:
        with other._write():  # held for longer than the store waits
            with pytest.raises(StoreError, match="accept_delivery failed .*locked"):
                store.accept_delivery("d-1", "push", push(n=1))
        assert store.accept_delivery("d-1", "push", push(n=1)) is not None  # its redelivery is accepted


def wal_pages(database: Path) -> int:
    """Frames in the WAL of `database` (what the writers appended since it last started over)."""
    import sqlite3

    connection = sqlite3.connect(database)
    try:
        return int(connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])
    finally:
        connection.close()


def test_the_accept_path_leaves_checkpoints_to_the_other_writers(tmp_path: Path) -> None:
    # A checkpoint syncs the database file inside the commit that triggers it: tens of
    # milliseconds for every webhook waiting on that group commit. The processing process's
    # writes checkpoint at SQLite's default threshold (1,000 pages) instead.
    database = tmp_path / "bot.db"
    with SqlStore(f"sqlite:///{database}") as store:
        for i in range(250):  # ~5 pages each
            store.accept_delivery(f"d-{i}", "push", push(n=i))

        assert wal_pages(database) > 1000


def incoming_opened(delivery_id: str, number: int) -> IncomingDelivery:
    event = opened(delivery_id, number, f"{number:040x}")
    return IncomingDelivery(delivery_id, "pull_request", event, head_of(event))


def test_accepting_now_commits_on_sqlite_and_leaves_postgresql_to_a_thread(store: SqlStore) -> None:
    batch = [incoming_opened("d-1", 1), incoming_opened("d-2", 2), incoming_opened("d-1", 1)]

    results = store.accept_deliveries_now(batch)

    if store.url.startswith("postgresql"):  # reached over the network: never on an event loop
        assert results is None and store.queued_events() == [] and not store.has_delivery("d-1")
        return
    assert results is not None and [type(r) for r in results] == [tuple, tuple, type(None)]
    assert sorted(e.delivery_id for e in store.queued_events()) == ["d-1", "d-2"]
    stored = store.get_pull(batch[1].event.repo.full_name, 2)
    assert stored is not None and stored.pull.head_sha == f"{2:040x}"
    assert store.accept_deliveries_now([incoming_opened("d-2", 2)]) == [None]  # a duplicate stores nothing


def test_accepting_now_does_not_wait_for_another_connections_write_lock(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    with SqlStore(url, busy_timeout=30) as store, SqlStore(url) as other:
        with other._write():  # another process writing
            started = time.monotonic()
            assert store.accept_deliveries_now([incoming_opened("d-1", 1)]) is None
            assert time.monotonic() - started < 1  # refused at once, not after the busy timeout
        assert not store.has_delivery("d-1")
        assert store.accept_deliveries([incoming_opened("d-1", 1)])[0] is not None  # the thread's way commits it


def test_accepting_now_does_not_wait_for_another_thread_of_the_process(tmp_path: Path) -> None:
    with SqlStore(f"sqlite:///{tmp_path / 'bot.db'}") as store:
        with writing_meanwhile(store):
            assert store.accept_deliveries_now([incoming_opened("d-1", 1)]) is None
        assert not store.has_delivery("d-1")
        assert store.accept_deliveries_now([incoming_opened("d-1", 1)]) is not None
