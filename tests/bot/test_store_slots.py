"""Run slots on SQLite and PostgreSQL: a queued run starts only when its repository (and pull
request) has a slot free for it, oldest first, within the day's budgets, and two workers of two
instances sharing the database never both take the last slot."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from bot.store import SqlStore
from handlers.queue_models import BudgetUse, LimitScope, SlotOutcome
from handlers.run_models import RunState, Trigger
from pipeline_registry.limits import RunLimits
from tests.bot.conftest import ManualClock
from tests.bot.test_store import T0, all_at_once, make_run

LIMITS = RunLimits(concurrent_runs=2, concurrent_runs_per_pr=1, runs_per_day=50, runs_per_pr_per_day=20)


def day_start(clock: ManualClock) -> datetime:
    return clock().replace(hour=0, minute=0, second=0, microsecond=0)


def queue(store: SqlStore, count: int, *, pr: int | Callable[[int], int] = 7, prefix: str = "run",
          start: int = 0, trigger: Trigger = Trigger.AUTORUN) -> list[str]:
    """`count` queued runs, one second apart (oldest first); their ids."""
    ids = []
    for i in range(start, start + count):
        run_id = f"{prefix}-{i:03d}"
        number = pr(i) if callable(pr) else pr
        assert store.create_run(make_run(run_id, pr=number, created_at=T0 + timedelta(seconds=i), trigger=trigger))
        ids.append(run_id)
    return ids


def holding(store: SqlStore) -> list[str]:
    return sorted(r.id for r in store.list_runs(active=True)
                  if r.state in (RunState.BUILDING, RunState.COMPILING, RunState.RUNNING))


def test_the_oldest_queued_runs_take_the_free_slots_and_the_rest_wait_in_line(store: SqlStore,
                                                                              clock: ManualClock) -> None:
    ids = queue(store, 4, pr=lambda i: 10 + i)
    limits = RunLimits(concurrent_runs=2, concurrent_runs_per_pr=1, runs_per_day=50, runs_per_pr_per_day=20)

    newest = store.claim_slot(ids[3], limits, day_start=day_start(clock))
    assert (newest.outcome, newest.position, newest.running, newest.held_by) == (
        SlotOutcome.WAITING, 4, 0, LimitScope.REPOSITORY)  # the two oldest come first
    first = store.claim_slot(ids[0], limits, day_start=day_start(clock), detail="building images")
    assert first.outcome is SlotOutcome.STARTED and first.run is not None
    assert first.run.state is RunState.BUILDING and first.run.transitions[-1].detail == "building images"
    assert store.claim_slot(ids[1], limits, day_start=day_start(clock)).outcome is SlotOutcome.STARTED
    third = store.claim_slot(ids[2], limits, day_start=day_start(clock))
    assert (third.outcome, third.position, third.running) == (SlotOutcome.WAITING, 1, 2)

    assert store.transition(ids[0], RunState.CANCELLED) is not None  # a slot frees (any final state)
    assert store.claim_slot(ids[3], limits, day_start=day_start(clock)).outcome is SlotOutcome.WAITING
    assert store.claim_slot(ids[2], limits, day_start=day_start(clock)).outcome is SlotOutcome.STARTED
    again = store.claim_slot(ids[2], limits, day_start=day_start(clock))
    assert again.outcome is SlotOutcome.NOT_QUEUED  # a redelivered start takes nothing twice
    assert holding(store) == [ids[1], ids[2]]


def test_a_pull_request_at_its_limit_does_not_hold_up_other_pull_requests(store: SqlStore,
                                                                         clock: ManualClock) -> None:
    busy = queue(store, 2, pr=7)  # PR 7: two runs, one slot per pull request
    other = queue(store, 1, pr=8, start=2)
    assert store.claim_slot(busy[0], LIMITS, day_start=day_start(clock)).outcome is SlotOutcome.STARTED

    waiting = store.claim_slot(busy[1], LIMITS, day_start=day_start(clock))
    assert (waiting.outcome, waiting.position, waiting.held_by) == (SlotOutcome.WAITING, 1, LimitScope.PULL_REQUEST)
    assert store.claim_slot(other[0], LIMITS, day_start=day_start(clock)).outcome is SlotOutcome.STARTED


def test_deploys_neither_take_nor_wait_for_slots(store: SqlStore, clock: ManualClock) -> None:
    deploys = queue(store, 3, pr=7, prefix="deploy", trigger=Trigger.DEPLOY)
    for run_id in deploys:
        assert store.transition(run_id, RunState.BUILDING) is not None
    [run_id] = queue(store, 1, pr=7, start=3)
    assert store.claim_slot(run_id, LIMITS, day_start=day_start(clock)).outcome is SlotOutcome.STARTED


def test_a_days_budget_stops_runs_until_the_next_day(store: SqlStore, clock: ManualClock) -> None:
    limits = RunLimits(concurrent_runs=10, concurrent_runs_per_pr=10, runs_per_day=3, runs_per_pr_per_day=2)
    ids = queue(store, 2, pr=7) + queue(store, 3, pr=8, start=2)
    for run_id in ids[:3]:
        assert store.claim_slot(run_id, limits, day_start=day_start(clock)).outcome is SlotOutcome.STARTED
        assert store.transition(run_id, RunState.SUCCEEDED) is not None  # ended: its budget stays spent

    repo_budget = store.claim_slot(ids[3], limits, day_start=day_start(clock))
    assert (repo_budget.outcome, repo_budget.budget) == (SlotOutcome.OVER_BUDGET, BudgetUse(LimitScope.REPOSITORY, 3, 3))
    assert repo_budget.run is not None and repo_budget.run.state is RunState.QUEUED  # the caller says why, visibly

    clock.advance(24 * 3600)  # a new UTC day
    assert store.claim_slot(ids[3], limits, day_start=day_start(clock)).outcome is SlotOutcome.STARTED
    assert store.claim_slot(ids[4], limits, day_start=day_start(clock)).outcome is SlotOutcome.STARTED
    [late] = queue(store, 1, pr=8, start=5)
    over = store.claim_slot(late, limits, day_start=day_start(clock))
    assert (over.outcome, over.budget) == (SlotOutcome.OVER_BUDGET, BudgetUse(LimitScope.PULL_REQUEST, 2, 2))


def test_two_instances_never_both_take_the_last_slot(open_store: Callable[[], SqlStore],
                                                     clock: ManualClock) -> None:
    stores = [open_store(), open_store()]  # two instances sharing one database
    limits = RunLimits(concurrent_runs=3, concurrent_runs_per_pr=3, runs_per_day=1000, runs_per_pr_per_day=1000)
    for round_ in range(4):
        ids = queue(stores[0], 8, pr=lambda i: 100 + i % 4, prefix=f"round{round_}", start=round_ * 8)
        free = limits.concurrent_runs - len(holding(stores[0]))
        claims = all_at_once(len(ids), lambda i, ids=ids: stores[i % 2].claim_slot(ids[i], limits,
                                                                                    day_start=day_start(clock)))
        started = [run_id for run_id, claim in zip(ids, claims, strict=True) if claim.outcome is SlotOutcome.STARTED]
        assert started == ids[:free]  # exactly the free slots, to the oldest runs
        assert len(holding(stores[0])) == limits.concurrent_runs
        # Every run holding a slot ends at once while the line claims again: still never above the limit.
        ending = holding(stores[0])
        waiting = [run_id for run_id in ids if run_id not in started]
        work = [(run_id, True) for run_id in ending] + [(run_id, False) for run_id in waiting]

        def step(i: int, work: list[tuple[str, bool]] = work) -> None:
            run_id, end = work[i]
            if end:
                stores[i % 2].transition(run_id, RunState.SUCCEEDED)
            else:
                stores[i % 2].claim_slot(run_id, limits, day_start=day_start(clock))

        all_at_once(len(work), step)
        assert len(holding(stores[0])) <= limits.concurrent_runs
        for run_id in [r.id for r in stores[0].list_runs(active=True)]:  # leave the next round a clean line
            stores[0].transition(run_id, RunState.CANCELLED)
