"""Small in-test backends for the reconcile pass: our own `Builder`/`Runner` ports answering fixed
states, a bus that records (and optionally hands events to the real handlers), and a clock tests move.

They implement the bot's own ports (handlers/ports/), not a client library, so nothing remote is
pretended: a test says "Cloud Build would answer FAILED for this run" and watches what the bot does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.log_reporter import LogReporter
from bot.store import SqlStore
from bot.wiring import AllowListPermissions, StoredPulls
from deploy.checkout import GitSource
from deploy.pipelines import RepositoryCompiler
from handlers.context import HandlerContext
from handlers.models import Event
from handlers.ports.build import BuildOutcome, BuildRequest
from handlers.ports.run import CollectedResults, RunRequest, RunSubmission
from handlers.run_models import Run, RunState, Trigger

REPO = "octo/monorepo"
SHA = "a" * 40
START = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


class SteppingClock:
    """UTC time that only moves when told to: `now()` for handlers, a call for the store."""

    def __init__(self, start: datetime = START) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def __call__(self) -> datetime:
        return self.current

    def advance(self, delta: timedelta) -> None:
        self.current += delta


class Unreachable(Exception):
    """What a backend raises in a test when it cannot be reached."""


class FixedBuilder:
    """A `Builder` whose `build_status` answers what the test set for each run id (None by default)."""

    def __init__(self) -> None:
        self.outcomes: dict[str, BuildOutcome | Exception | None] = {}
        self.asked: list[str] = []

    def build(self, request: BuildRequest) -> BuildOutcome:
        raise AssertionError(f"reconcile must not start builds itself (asked for {request.run_id})")

    def build_status(self, run: Run) -> BuildOutcome | None:
        self.asked.append(run.id)
        outcome = self.outcomes.get(run.id)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


class FixedRunner:
    """A `Runner` whose `run_status` answers what the test set for each run id (None by default)."""

    def __init__(self) -> None:
        self.statuses: dict[str, RunSubmission | Exception | None] = {}
        self.asked: list[str] = []
        self.cancelled: list[str] = []

    def submit_run(self, request: RunRequest) -> RunSubmission:
        raise AssertionError(f"reconcile must not submit runs itself (asked for {request.run.id})")

    def cancel_run(self, run: Run) -> None:
        """Recorded: reconcile cancels only runs past their `run.timeout`."""
        self.cancelled.append(run.id)
        self.statuses[run.id] = RunSubmission(RunState.CANCELLED)

    def run_status(self, run: Run) -> RunSubmission | None:
        self.asked.append(run.id)
        status = self.statuses.get(run.id)
        if isinstance(status, Exception):
            raise status
        return status

    def run_results(self, run: Run) -> CollectedResults | None:
        """Reconcile reports no results of its own: none."""
        return None


class RecordingBus:
    """A bus that keeps what was published; with `deliver`, it also hands each event to `deliver`.

    `start`/`stop` make it a `ManagedBus` for `bot.services.Services`.
    """

    notify_blocks = False

    def __init__(self, deliver: Callable[[Event], None] | None = None, *, store: SqlStore | None = None) -> None:
        self.published: list[Event] = []
        self.deliver = deliver
        self.broken: Exception | None = None
        self.store = store

    def publish(self, event: Event) -> None:
        if self.broken is not None:
            raise self.broken
        self.published.append(event)
        if self.deliver is not None:
            self.deliver(event)

    def notify(self, ids: Sequence[int] = ()) -> None:
        """The webhook queued rows `ids` in the store's outbox: take them and publish them here."""
        if self.store is None:
            return
        while (claimed := self.store.claim("recording-bus", 60.0, ids=ids)) is not None:
            self.store.finish(claimed.id, "recording-bus")
            if claimed.event is not None:
                self.publish(claimed.event)

    def start(self) -> None:
        pass

    def stop(self, timeout: float = 30.0) -> bool:
        return True

    def keys(self) -> list[str]:
        return [event.key for event in self.published]


def make_context(store: SqlStore, tmp_path: Path, clock: SteppingClock, *, builder: FixedBuilder,
                 runner: FixedRunner, bus: RecordingBus) -> HandlerContext:
    """A handler context on a real store with the given backends; reports go to the log."""
    return HandlerContext(store=store, bus=bus, source=GitSource(tmp_path / "cache"), builder=builder,
                          compiler=RepositoryCompiler(tmp_path / "cache"), runner=runner,
                          reporter=LogReporter(), permissions=AllowListPermissions(),
                          pulls=StoredPulls(store), work_dir=tmp_path / "work", clock=clock)


def stored_run(store: SqlStore, clock: SteppingClock, run_id: str, state: RunState, *,
               pipeline: str = "hello-pipeline") -> Run:
    """A run created queued now and moved forward to `state` (as a previous step left it)."""
    now = clock.now()
    run = Run(id=run_id, repo=REPO, pr=7, sha=SHA, base_sha=None, pipeline=pipeline, trigger=Trigger.AUTORUN,
              state=RunState.QUEUED, created_at=now, updated_at=now, clone_url=f"https://github.com/{REPO}.git")
    assert store.create_run(run)
    for step in (RunState.BUILDING, RunState.COMPILING, RunState.RUNNING):
        if state is RunState.QUEUED:
            break
        store.transition(run_id, step)
        if step is state:
            break
    moved = store.get_run(run_id)
    assert moved is not None and moved.state is state
    return moved



def delivery_store(url: str, clock: SteppingClock) -> SqlStore:
    """The store the redelivery tests use."""
    return SqlStore(url, clock=clock)
