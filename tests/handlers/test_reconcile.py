"""The reconcile pass: a lost build or run notification delays a status, never loses it.

Runs live in a real SQLite store; the builder and runner are small implementations of the bot's
own ports that answer what a backend would (tests/support/status_ports.py). The bus records what
the pass published; where a test says so, the events also go to the real handlers, so the test
can assert on the run as the API would show it.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path

import pytest

from bot.store import SqlStore
from handlers.models import BuildStatus, RunStart, RunStatus
from handlers.ports.build import BuildOutcome, BuildState
from handlers.ports.run import RunSubmission
from handlers.reconcile import DEFAULT_LOST_AFTER, DEFAULT_STUCK_AFTER, ReconcileReport, reconcile
from handlers.routes import dispatch
from handlers.run_models import RunState
from handlers.runs import DEADLINE_SCOPE
from pipeline_registry.limits import RunLimits
from tests.support.status_ports import (
    FixedBuilder,
    FixedRunner,
    RecordingBus,
    SteppingClock,
    Unreachable,
    make_context,
    stored_run,
)

LOG_URL = "https://console.cloud.google.com/cloud-build/builds/b-1?project=p"
JOB_URL = "https://console.cloud.google.com/vertex-ai/pipelines/runs/job-1?project=p"


class Backends:
    """A store, a clock, fixed backends and a bus, with a context over them."""

    def __init__(self, tmp_path: Path, *, deliver: bool) -> None:
        self.clock = SteppingClock()
        self.store = SqlStore(f"sqlite:///{tmp_path / 'kfp-bot.db'}", clock=self.clock)
        self.builder = FixedBuilder()
        self.runner = FixedRunner()
        self.bus = RecordingBus()
        self.ctx = make_context(self.store, tmp_path, self.clock, builder=self.builder, runner=self.runner,
                                bus=self.bus)
        if deliver:
            self.bus.deliver = lambda event: dispatch(event, self.ctx)

    def run(self, run_id: str, state: RunState) -> None:
        stored_run(self.store, self.clock, run_id, state)

    def state(self, run_id: str) -> RunState:
        run = self.store.get_run(run_id)
        assert run is not None
        return run.state


@pytest.fixture
def backends(tmp_path: Path):
    """Backends whose events are only recorded (nothing moves unless a test dispatches)."""
    made = Backends(tmp_path, deliver=False)
    yield made
    made.store.close()


@pytest.fixture
def live(tmp_path: Path):
    """Backends whose published events go straight to the real handlers."""
    made = Backends(tmp_path, deliver=True)
    yield made
    made.store.close()


def test_a_build_that_finished_while_its_notification_was_lost_moves_on(backends: Backends) -> None:
    backends.run("run-built", RunState.BUILDING)
    backends.run("run-broken", RunState.BUILDING)
    backends.run("run-cached", RunState.BUILDING)
    backends.builder.outcomes.update({
        "run-built": BuildOutcome(BuildState.SUCCEEDED, url=LOG_URL),
        "run-broken": BuildOutcome(BuildState.FAILED, detail="step training: exit status 1", url=LOG_URL),
        "run-cached": BuildOutcome(BuildState.SKIPPED, detail="every image already exists"),
    })

    report = reconcile(backends.ctx)

    assert report == ReconcileReport(checked=3, builds_finished=3)
    published = {event.run_id: event for event in backends.bus.published}
    assert published["run-built"] == BuildStatus(run_id="run-built", state=RunState.COMPILING,
                                                 detail="images built", url=LOG_URL)
    assert published["run-broken"] == BuildStatus(run_id="run-broken", state=RunState.FAILED,
                                                  detail="step training: exit status 1", url=LOG_URL)
    assert published["run-cached"].state is RunState.COMPILING
    # The pass only publishes: the handlers move the runs when the events arrive.
    assert {backends.state(r) for r in published} == {RunState.BUILDING}


def test_a_failed_build_found_by_reconcile_fails_the_run_with_the_build_log(live: Backends) -> None:
    live.run("run-broken", RunState.BUILDING)
    live.builder.outcomes["run-broken"] = BuildOutcome(BuildState.FAILED, detail="step training: exit status 1",
                                                       url=LOG_URL)

    reconcile(live.ctx)

    run = live.store.get_run("run-broken")
    assert run is not None and run.state is RunState.FAILED
    assert run.error == "step training: exit status 1" and run.url == LOG_URL
    assert reconcile(live.ctx) == ReconcileReport()  # nothing is active any more


def test_builds_still_going_or_not_yet_known_are_left_alone(backends: Backends) -> None:
    backends.run("run-started", RunState.BUILDING)
    backends.run("run-unknown", RunState.BUILDING)
    backends.builder.outcomes["run-started"] = BuildOutcome(BuildState.STARTED, url=LOG_URL)

    report = reconcile(backends.ctx)

    assert report == ReconcileReport(checked=2, in_progress=1, unknown=1)
    assert backends.bus.published == []
    assert sorted(backends.builder.asked) == ["run-started", "run-unknown"]


def test_a_pipeline_run_that_ended_unnoticed_gets_its_final_state(live: Backends) -> None:
    live.run("run-done", RunState.RUNNING)
    live.run("run-failed", RunState.RUNNING)
    live.run("run-going", RunState.RUNNING)
    live.runner.statuses.update({
        "run-done": RunSubmission(RunState.SUCCEEDED, url=JOB_URL),
        "run-failed": RunSubmission(RunState.FAILED, url=JOB_URL, detail="task training failed"),
        "run-going": RunSubmission(RunState.RUNNING, url=JOB_URL),
    })

    report = reconcile(live.ctx)

    assert report == ReconcileReport(checked=3, runs_finished=2, in_progress=1)
    assert live.bus.keys().count("status:run-done:succeeded") == 1
    done, failed = live.store.get_run("run-done"), live.store.get_run("run-failed")
    assert done is not None and done.state is RunState.SUCCEEDED and done.url == JOB_URL
    assert failed is not None and failed.state is RunState.FAILED and failed.error == "task training failed"
    assert live.state("run-going") is RunState.RUNNING


def test_a_run_past_its_timeout_is_cancelled_on_its_backend_and_fails_saying_why(live: Backends) -> None:
    live.run("run-long", RunState.RUNNING)
    live.run("run-in-time", RunState.RUNNING)
    live.runner.statuses.update({"run-long": RunSubmission(RunState.RUNNING, url=JOB_URL),
                                 "run-in-time": RunSubmission(RunState.RUNNING, url=JOB_URL)})
    now = live.clock.now()
    live.store.set_external(DEADLINE_SCOPE, "run-long", (now + timedelta(minutes=30)).isoformat())
    live.store.set_external(DEADLINE_SCOPE, "run-in-time", (now + timedelta(hours=2)).isoformat())

    assert reconcile(live.ctx) == ReconcileReport(checked=2, in_progress=2)
    live.clock.advance(timedelta(minutes=31))
    report = reconcile(live.ctx)

    assert report == ReconcileReport(checked=2, timed_out=1, in_progress=1)
    assert live.runner.cancelled == ["run-long"]
    run = live.store.get_run("run-long")
    assert run is not None and run.state is RunState.FAILED
    assert "went past its time limit (run.timeout in settings.yaml)" in (run.error or "")
    assert live.state("run-in-time") is RunState.RUNNING


def test_a_running_run_the_backend_does_not_know_yet_is_not_ended(backends: Backends) -> None:
    """Unlike the start-up recovery of the embedded runner: a remote run outlives the bot's process."""
    backends.run("run-remote", RunState.RUNNING)
    backends.clock.advance(DEFAULT_LOST_AFTER - timedelta(minutes=1))

    report = reconcile(backends.ctx)

    assert report == ReconcileReport(checked=1, unknown=1)
    assert backends.bus.published == []
    assert backends.state("run-remote") is RunState.RUNNING


def test_a_run_its_backend_never_heard_of_ends_as_error_with_what_to_do(live: Backends) -> None:
    live.run("run-lost", RunState.RUNNING)
    live.clock.advance(DEFAULT_LOST_AFTER + timedelta(minutes=1))

    report = reconcile(live.ctx)

    assert report == ReconcileReport(checked=1, lost=1)
    run = live.store.get_run("run-lost")
    assert run is not None and run.state is RunState.ERROR
    assert "no record of this run" in (run.error or "") and "/run hello-pipeline" in (run.error or "")


def test_runs_stuck_before_their_backend_heard_of_them_are_started_again(backends: Backends) -> None:
    backends.run("run-queued", RunState.QUEUED)
    backends.run("run-compiling", RunState.COMPILING)
    backends.run("run-building", RunState.BUILDING)

    assert reconcile(backends.ctx) == ReconcileReport(checked=3, in_progress=2, unknown=1)
    assert backends.bus.published == []

    backends.clock.advance(DEFAULT_STUCK_AFTER)
    assert reconcile(backends.ctx) == ReconcileReport(checked=3, resumed=2, unknown=1)
    assert sorted(backends.bus.published, key=lambda e: e.key) == [
        BuildStatus(run_id="run-compiling", state=RunState.COMPILING, detail="resumed by reconcile"),
        RunStart(run_id="run-queued")]

    backends.bus.published.clear()
    backends.clock.advance(DEFAULT_LOST_AFTER)
    reconcile(backends.ctx)
    assert "run-start:run-building" in backends.bus.keys()  # no build was ever started: build again


def test_one_backend_failing_does_not_stop_the_pass(backends: Backends, caplog: pytest.LogCaptureFixture) -> None:
    backends.run("run-a", RunState.RUNNING)
    backends.run("run-b", RunState.RUNNING)
    backends.runner.statuses["run-a"] = Unreachable("vertex: 503 UNAVAILABLE")
    backends.runner.statuses["run-b"] = RunSubmission(RunState.SUCCEEDED)

    with caplog.at_level(logging.ERROR, logger="kfp_bot.handlers"):
        report = reconcile(backends.ctx)

    assert report == ReconcileReport(checked=2, runs_finished=1, errors=1)
    assert backends.bus.keys() == ["status:run-b:succeeded"]
    assert any("run-a" in r.getMessage() and "503 UNAVAILABLE" in r.getMessage() for r in caplog.records)
    assert backends.state("run-a") is RunState.RUNNING


def test_a_publish_that_fails_is_counted_and_tried_again_next_pass(backends: Backends) -> None:
    backends.run("run-done", RunState.RUNNING)
    backends.runner.statuses["run-done"] = RunSubmission(RunState.SUCCEEDED)
    backends.bus.broken = Unreachable("pubsub: 503")

    assert reconcile(backends.ctx) == ReconcileReport(checked=1, errors=1)

    backends.bus.broken = None
    assert reconcile(backends.ctx) == ReconcileReport(checked=1, runs_finished=1)
    assert backends.bus.keys() == ["status:run-done:succeeded"]


def test_the_real_notification_and_the_reconciled_one_apply_once(backends: Backends) -> None:
    """Reconcile runs concurrently with notifications: whichever arrives second changes nothing."""
    backends.run("run-1", RunState.RUNNING)
    backends.runner.statuses["run-1"] = RunSubmission(RunState.SUCCEEDED, url=JOB_URL)
    reconcile(backends.ctx)
    [from_reconcile] = backends.bus.published

    dispatch(RunStatus(run_id="run-1", state=RunState.SUCCEEDED, url=JOB_URL), backends.ctx)  # the real one
    after_first = backends.store.get_run("run-1")
    dispatch(from_reconcile, backends.ctx)
    after_both = backends.store.get_run("run-1")

    assert after_first is not None and after_first.state is RunState.SUCCEEDED
    assert after_both == after_first
    assert [t.state for t in after_both.transitions].count(RunState.SUCCEEDED) == 1


def test_runs_waiting_in_line_start_when_a_slot_freed_while_nobody_listened(backends: Backends) -> None:
    from handlers.queue_view import LIMITS_SCOPE, WAITING_SCOPE
    from tests.support.status_ports import REPO

    backends.store.set_external(LIMITS_SCOPE, REPO, json.dumps(RunLimits(concurrent_runs=1).to_json()))
    backends.run("run-holding", RunState.BUILDING)
    for run_id in ("run-first", "run-second"):
        backends.clock.advance(timedelta(seconds=1))
        backends.run(run_id, RunState.QUEUED)
        backends.store.set_external(WAITING_SCOPE, run_id, backends.clock.now().isoformat())
    # The holding run ends, and the bot stops before starting the next in line.
    assert backends.store.transition("run-holding", RunState.SUCCEEDED) is not None
    backends.clock.advance(DEFAULT_STUCK_AFTER * 2)

    report = reconcile(backends.ctx)

    assert report == ReconcileReport(checked=2, in_progress=2)  # waiting is not being stuck
    assert backends.bus.published == [RunStart(run_id="run-first")]  # one slot: the oldest in line
