"""The embedded bus on a real SQLite store: lanes of workers, follow-ups committed with their step,
failures that do not stop it, leases, takeovers, stopping and starting again."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.embedded_bus import OutboxBus
from bot.logs import current_ids
from bot.payloads import parse_event
from bot.store import SqlStore
from bot.store.outbox_lanes import Lane
from handlers.context import step_resumed
from handlers.models import Event, RunStart, RunStatus
from handlers.run_models import RunState
from tests.support.webhooks import load_payload

WAIT = 10.0
ONE_EACH = {Lane.SHORT: 1, Lane.LONG: 1}


class Recorder:
    """A dispatch function that records what it got, the log ids and whether it was a takeover."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.ids: list[dict[str, str | None]] = []
        self.resumed: list[bool] = []
        self.lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self.lock:
            self.events.append(event)
            self.ids.append(current_ids())
            self.resumed.append(step_resumed())


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    with SqlStore(f"sqlite:///{tmp_path / 'bot.db'}") as store:
        yield store


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def make_bus(store: SqlStore, dispatch, **options) -> OutboxBus:
    options.setdefault("lanes", ONE_EACH)
    options.setdefault("poll_seconds", 0.05)
    return OutboxBus(store, dispatch, **options)


@pytest.fixture
def bus(store: SqlStore, recorder: Recorder) -> Iterator[OutboxBus]:
    bus = make_bus(store, recorder)
    bus.start()
    yield bus
    bus.stop(WAIT)


def test_events_of_a_lane_are_dispatched_in_order_by_a_single_worker(bus: OutboxBus, recorder: Recorder) -> None:
    events = [RunStart(f"run-{i}") for i in range(20)]
    for event in events:
        bus.publish(event)

    assert bus.wait_idle(WAIT)
    assert recorder.events == events
    assert recorder.resumed == [False] * 20  # first attempts, not takeovers
    assert bus.pending == 0


def test_each_event_is_handled_under_its_delivery_and_run_ids(bus: OutboxBus, recorder: Recorder) -> None:
    pull = parse_event("pull_request", "delivery-7", load_payload("pull_request.opened"))
    bus.publish(pull)  # type: ignore[arg-type]
    assert bus.wait_idle(WAIT)
    bus.publish(RunStatus("run-9", RunState.RUNNING))

    assert bus.wait_idle(WAIT)
    assert recorder.ids == [{"delivery_id": "delivery-7", "run_id": None},
                            {"delivery_id": None, "run_id": "run-9"}]


def test_a_failing_handler_is_reported_and_the_worker_keeps_going(
        store: SqlStore, caplog: pytest.LogCaptureFixture) -> None:
    handled: list[str] = []
    errors: list[tuple[Event, BaseException]] = []

    def dispatch(event: Event) -> None:
        if event == RunStart("run-bad"):
            raise RuntimeError("settings.yaml exploded")
        handled.append(event.run_id)  # type: ignore[union-attr]

    bus = make_bus(store, dispatch, on_error=lambda e, exc: errors.append((e, exc)))
    bus.start()
    with caplog.at_level(logging.ERROR, logger="kfp_bot.bus"):
        for run_id in ("run-1", "run-bad", "run-2"):
            bus.publish(RunStart(run_id))
        assert bus.wait_idle(WAIT)
    bus.stop(WAIT)

    assert handled == ["run-1", "run-2"]
    assert [(event, str(exc)) for event, exc in errors] == [(RunStart("run-bad"), "settings.yaml exploded")]
    assert "handler failed for run-start:run-bad: settings.yaml exploded" in caplog.text
    assert store.pending_work() == 0  # the failed event is done: its failure is what is visible


def test_a_failing_on_error_does_not_kill_the_worker(store: SqlStore, caplog: pytest.LogCaptureFixture) -> None:
    handled: list[Event] = []

    def dispatch(event: Event) -> None:
        if event.key == "run-start:bad":
            raise ValueError("boom")
        handled.append(event)

    def on_error(event: Event, exc: BaseException) -> None:
        raise RuntimeError("the store is down too")

    bus = make_bus(store, dispatch, on_error=on_error)
    bus.start()
    bus.publish(RunStart("bad"))
    bus.publish(RunStart("good"))
    assert bus.wait_idle(WAIT)
    bus.stop(WAIT)

    assert handled == [RunStart("good")]
    assert "on_error failed for run-start:bad" in caplog.text


def test_follow_ups_are_stored_only_with_the_end_of_the_step_that_published_them(store: SqlStore) -> None:
    seen: list[str] = []
    queued_during_step: list[list[Event]] = []
    holder: dict[str, OutboxBus] = {}

    def dispatch(event: Event) -> None:
        seen.append(event.key)
        if isinstance(event, RunStart):
            holder["bus"].publish(RunStatus(event.run_id, RunState.BUILDING))
            queued_during_step.append(store.queued_events())
        elif event.state is RunState.BUILDING:  # type: ignore[union-attr]
            holder["bus"].publish(RunStatus(event.run_id, RunState.SUCCEEDED))

    bus = holder["bus"] = make_bus(store, dispatch)
    bus.start()
    bus.publish(RunStart("run-1"))

    assert bus.wait_idle(WAIT)
    assert seen == ["run-start:run-1", "status:run-1:building", "status:run-1:succeeded"]
    assert queued_during_step == [[RunStart("run-1")]]  # the follow-up was not in the store yet
    bus.stop(WAIT)


def test_bookkeeping_does_not_wait_behind_long_work(store: SqlStore) -> None:
    long_running = threading.Event()
    release = threading.Event()
    handled: list[str] = []

    def dispatch(event: Event) -> None:
        if isinstance(event, RunStart):
            long_running.set()
            release.wait(WAIT)
        handled.append(event.key)

    bus = make_bus(store, dispatch)
    bus.start()
    try:
        bus.publish(RunStart("compiling-for-ages"))
        bus.publish(RunStart("queued-behind-it"))
        assert long_running.wait(WAIT)
        bus.publish(RunStatus("other-run", RunState.SUCCEEDED))
        for _ in range(int(WAIT / 0.01)):
            if handled:
                break
            threading.Event().wait(0.01)
        assert handled == ["status:other-run:succeeded"]  # while the long lane is still busy
    finally:
        release.set()
        assert bus.wait_idle(WAIT)
        bus.stop(WAIT)
    assert handled[1:] == ["run-start:compiling-for-ages", "run-start:queued-behind-it"]


def test_work_left_at_a_stop_stays_in_the_store_for_the_next_start(store: SqlStore, recorder: Recorder) -> None:
    before = make_bus(store, recorder)
    before.publish(RunStart("early"))  # never started: nothing runs, nothing is lost
    assert not before.wait_idle(0)  # one look, no wait: the row is still to do
    assert before.stop(WAIT)
    assert recorder.events == []

    after = make_bus(store, recorder)
    after.start()
    assert after.wait_idle(WAIT)
    after.stop(WAIT)
    assert recorder.events == [RunStart("early")]


def test_a_live_owner_keeps_its_work_and_a_dead_ones_is_taken_over(store: SqlStore, recorder: Recorder) -> None:
    store.enqueue([RunStart("held"), RunStart("orphaned")])
    alive = store.claim("alive-instance", 60)
    dead = store.claim("dead-instance", 0.5)  # stops renewing: its lease runs out
    assert alive is not None and dead is not None

    bus = make_bus(store, recorder)
    bus.start()
    for _ in range(int(WAIT / 0.05)):
        if recorder.events:
            break
        threading.Event().wait(0.05)
    bus.stop(WAIT, drain=False)

    assert recorder.events == [RunStart("orphaned")]
    assert recorder.resumed == [True]
    assert store.pending_work() == 1  # the live owner's row is still its own
    assert store.claim("anyone-else", 1.0) is None  # the same claim the bus makes: no waiting for a non-event


def test_the_heartbeat_renews_the_leases_of_work_in_progress(store: SqlStore) -> None:
    release = threading.Event()
    started = threading.Event()

    def slow(event: Event) -> None:
        started.set()
        release.wait(WAIT)

    bus = make_bus(store, slow, lease_seconds=1.0)
    bus.start()
    bus.publish(RunStart("slow"))
    assert started.wait(WAIT)
    threading.Event().wait(1.5)  # longer than the lease: only renewals keep it
    assert store.claim("intruder", 1.0) is None
    release.set()
    assert bus.wait_idle(WAIT)
    bus.stop(WAIT)


def test_every_lane_needs_a_worker(store: SqlStore, recorder: Recorder) -> None:
    with pytest.raises(ValueError, match="at least one worker"):
        OutboxBus(store, recorder, lanes={Lane.SHORT: 0, Lane.LONG: 1})
