"""The in-process bus: worker threads, failures that do not stop it, follow-ups, stopping."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

from bot.bus import BusUnavailable, InProcessBus
from bot.logs import current_ids
from bot.payloads import parse_event
from handlers.models import Event, RunStart, RunState, RunStatus
from tests.support.webhooks import load_payload

WAIT = 10.0


class Recorder:
    """A dispatch function that records what it got, and the log ids it ran under."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.ids: list[dict[str, str | None]] = []
        self.lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self.lock:
            self.events.append(event)
            self.ids.append(current_ids())


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def bus(recorder: Recorder) -> Iterator[InProcessBus]:
    bus = InProcessBus(recorder, workers=1)
    bus.start()
    yield bus
    bus.stop(WAIT)


def test_events_are_dispatched_in_order_by_a_single_worker(bus: InProcessBus, recorder: Recorder) -> None:
    events = [RunStart(f"run-{i}") for i in range(20)]
    for event in events:
        bus.publish(event)

    assert bus.wait_idle(WAIT)
    assert recorder.events == events
    assert bus.pending == 0


def test_each_event_is_handled_under_its_delivery_and_run_ids(bus: InProcessBus, recorder: Recorder) -> None:
    pull = parse_event("pull_request", "delivery-7", load_payload("pull_request.opened"))
    bus.publish(pull)  # type: ignore[arg-type]
    bus.publish(RunStatus("run-9", RunState.RUNNING))

    assert bus.wait_idle(WAIT)
    assert recorder.ids == [{"delivery_id": "delivery-7", "run_id": None},
                            {"delivery_id": None, "run_id": "run-9"}]


def test_a_failing_handler_is_reported_and_the_worker_keeps_going(caplog: pytest.LogCaptureFixture) -> None:
    handled: list[str] = []
    errors: list[tuple[Event, BaseException]] = []

    def dispatch(event: Event) -> None:
        if event == RunStart("run-bad"):
            raise RuntimeError("settings.yaml exploded")
        handled.append(event.run_id)  # type: ignore[union-attr]

    bus = InProcessBus(dispatch, workers=1, on_error=lambda e, exc: errors.append((e, exc)))
    bus.start()
    with caplog.at_level(logging.ERROR, logger="kfp_bot.bus"):
        for run_id in ("run-1", "run-bad", "run-2"):
            bus.publish(RunStart(run_id))
        assert bus.wait_idle(WAIT)
    bus.stop(WAIT)

    assert handled == ["run-1", "run-2"]
    assert [(event, str(exc)) for event, exc in errors] == [(RunStart("run-bad"), "settings.yaml exploded")]
    assert "handler failed for run-start:run-bad: settings.yaml exploded" in caplog.text
    failure = next(r for r in caplog.records if "run-start:run-bad" in r.getMessage())
    assert failure.exc_info is not None


def test_a_failing_on_error_does_not_kill_the_worker(caplog: pytest.LogCaptureFixture) -> None:
    handled: list[Event] = []

    def dispatch(event: Event) -> None:
        if event.key == "run-start:bad":
            raise ValueError("boom")
        handled.append(event)

    def on_error(event: Event, exc: BaseException) -> None:
        raise RuntimeError("the store is down too")

    bus = InProcessBus(dispatch, workers=1, on_error=on_error)
    bus.start()
    bus.publish(RunStart("bad"))
    bus.publish(RunStart("good"))
    assert bus.wait_idle(WAIT)
    bus.stop(WAIT)

    assert handled == [RunStart("good")]
    assert "on_error failed for run-start:bad" in caplog.text


def test_events_published_by_a_handler_are_handled_before_the_bus_is_idle() -> None:
    seen: list[str] = []
    holder: dict[str, InProcessBus] = {}

    def dispatch(event: Event) -> None:
        seen.append(event.key)
        if isinstance(event, RunStart):
            holder["bus"].publish(RunStatus(event.run_id, RunState.BUILDING))
        elif event.state is RunState.BUILDING:  # type: ignore[union-attr]
            holder["bus"].publish(RunStatus(event.run_id, RunState.SUCCEEDED))

    bus = holder["bus"] = InProcessBus(dispatch, workers=2)
    bus.start()
    bus.publish(RunStart("run-1"))

    assert bus.wait_idle(WAIT)
    assert seen == ["run-start:run-1", "status:run-1:building", "status:run-1:succeeded"]
    bus.stop(WAIT)


def test_workers_handle_events_concurrently() -> None:
    # Both handlers must be inside dispatch at the same time to pass the barrier.
    barrier = threading.Barrier(2, timeout=WAIT)
    passed: list[str] = []

    def dispatch(event: Event) -> None:
        barrier.wait()
        passed.append(event.key)

    bus = InProcessBus(dispatch, workers=2)
    bus.start()
    bus.publish(RunStart("a"))
    bus.publish(RunStart("b"))

    assert bus.wait_idle(WAIT)
    assert sorted(passed) == ["run-start:a", "run-start:b"]
    bus.stop(WAIT)


def test_nothing_is_dispatched_before_start(recorder: Recorder) -> None:
    bus = InProcessBus(recorder, workers=1)
    bus.publish(RunStart("early"))

    assert not bus.wait_idle(0.05)
    assert recorder.events == []

    bus.start()
    assert bus.wait_idle(WAIT)
    assert recorder.events == [RunStart("early")]
    bus.stop(WAIT)


def test_stop_drains_queued_work_and_follow_ups_but_refuses_new_events(recorder: Recorder) -> None:
    gate = threading.Event()
    holder: dict[str, InProcessBus] = {}

    def dispatch(event: Event) -> None:
        gate.wait(WAIT)
        recorder(event)
        if event == RunStart("run-0"):
            holder["bus"].publish(RunStatus("run-0", RunState.BUILDING))  # a follow-up while draining

    bus = holder["bus"] = InProcessBus(dispatch, workers=1)
    bus.start()
    for i in range(3):
        bus.publish(RunStart(f"run-{i}"))
    stopped: list[bool] = []
    stopper = threading.Thread(target=lambda: stopped.append(bus.stop(WAIT)))
    stopper.start()
    while bus.accepting:
        threading.Event().wait(0.005)

    with pytest.raises(BusUnavailable, match="the event bus is stopped: run-start:late was not queued"):
        bus.publish(RunStart("late"))
    gate.set()
    stopper.join(WAIT)

    assert stopped == [True]
    assert [e.key for e in recorder.events] == ["run-start:run-0", "run-start:run-1", "run-start:run-2",
                                                "status:run-0:building"]
    with pytest.raises(BusUnavailable):
        bus.start()


def test_stopping_a_bus_that_never_started_reports_what_it_drops(recorder: Recorder,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    bus = InProcessBus(recorder, workers=1)
    bus.publish(RunStart("orphan"))

    assert bus.stop(WAIT) is True
    assert recorder.events == []
    assert "event bus stopped with 1 unhandled event(s): run-start:orphan" in caplog.text
    assert bus.wait_idle(0) is True


def test_a_bounded_queue_refuses_instead_of_blocking(recorder: Recorder) -> None:
    bus = InProcessBus(recorder, workers=1, max_queue=2)
    bus.publish(RunStart("1"))
    bus.publish(RunStart("2"))

    with pytest.raises(BusUnavailable, match=r"queue is full \(2 events\): run-start:3 was not queued"):
        bus.publish(RunStart("3"))

    bus.start()
    assert bus.wait_idle(WAIT)
    assert [e.run_id for e in recorder.events] == ["1", "2"]  # type: ignore[union-attr]
    bus.stop(WAIT)


def test_a_bus_needs_a_worker(recorder: Recorder) -> None:
    with pytest.raises(ValueError, match="at least one worker"):
        InProcessBus(recorder, workers=0)
