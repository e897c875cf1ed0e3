"""The SQL store on real databases: a SQLite file and a throwaway PostgreSQL server.

What the handlers rely on: redeliveries and duplicate messages are recognised exactly once even
when they arrive on several threads at once, run states only move forward whatever order the
notifications come in, listings filter and order as the dashboard shows them, and everything
survives a restart.
"""

from __future__ import annotations

import inspect
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy import inspect as sa_inspect

from bot.store import SCHEMA_VERSION, SqlStore, StoreError
from handlers.models import PullRequestRef, RepoRef, RunStart
from handlers.ports.store import Store, StoredPull
from handlers.run_models import PlanComponent, PlanTrustedChange, Run, RunPlan, RunState, Transition, Trigger
from tests.bot.conftest import ManualClock
from tests.support.ports import refusing_port

REPO = "octo-org/ml-monorepo"
SHA = "a" * 40
T0 = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)


def make_run(run_id: str = "run-1", *, created_at: datetime = T0, **changes: Any) -> Run:
    fields: dict[str, Any] = dict(
        id=run_id, repo=REPO, pr=7, sha=SHA, base_sha="b" * 40, pipeline="head-pose-pipeline",
        trigger=Trigger.AUTORUN, state=RunState.QUEUED, created_at=created_at, updated_at=created_at,
        triggered_by="octocat", parameters={"epochs": 3, "lr": 0.01, "layers": [64, 32]},
        overrides={"epochs": "3"}, plan=RunPlan(components=(PlanComponent(name="training", rebuild=True),)),
        clone_url="https://github.com/octo-org/ml-monorepo.git", installation_id=4242)
    fields.update(changes)
    return Run(**fields)


def make_pull(number: int = 7, head_sha: str = SHA) -> tuple[RepoRef, PullRequestRef]:
    repo = RepoRef(full_name=REPO, clone_url="https://github.com/octo-org/ml-monorepo.git",
                   default_branch="main", html_url="https://github.com/octo-org/ml-monorepo", private=True)
    pull = PullRequestRef(number=number, title="Tune head pose training", author="octocat",
                          html_url=f"https://github.com/octo-org/ml-monorepo/pull/{number}",
                          head_sha=head_sha, head_ref="tune", head_repo="octocat/ml-monorepo",
                          head_clone_url="https://github.com/octocat/ml-monorepo.git",
                          base_sha="b" * 40, base_ref="main", draft=True,
                          author_association="CONTRIBUTOR")
    return repo, pull


def all_at_once(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run `work(i)` on `count` threads released together; results in thread order."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def body(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except BaseException as exc:  # re-raised below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


# -- the port -----------------------------------------------------------------------------------

def test_sql_store_has_every_method_of_the_store_port_with_the_same_signature() -> None:
    port_methods = [name for name, value in vars(Store).items()
                    if callable(value) and not name.startswith("_")]
    assert {"record_delivery", "create_run", "transition", "list_runs"} <= set(port_methods)
    for name in port_methods:
        expected = inspect.signature(getattr(Store, name), eval_str=True)
        actual = inspect.signature(getattr(SqlStore, name), eval_str=True)
        assert actual == expected, name


# -- deliveries and messages --------------------------------------------------------------------

def test_a_delivery_is_new_once(store: SqlStore) -> None:
    assert store.record_delivery("72d3162e-cc78-11e3-81ab-4c9367dc0958", "pull_request") is True
    assert store.record_delivery("72d3162e-cc78-11e3-81ab-4c9367dc0958", "pull_request") is False
    assert store.record_delivery("72d3162e-cc78-11e3-81ab-4c9367dc0959", "pull_request") is True


def test_a_message_is_new_once(store: SqlStore) -> None:
    key = f"pr:{REPO}#7@{SHA}:opened"
    assert store.record_message(key) is True
    assert store.record_message(key) is False
    assert store.record_message(f"pr:{REPO}#7@{SHA}:synchronize") is True


def test_ten_threads_recording_one_delivery_get_exactly_one_true(open_store: Callable[[], SqlStore]) -> None:
    # Two store objects on one database stand for two processes (gunicorn workers).
    stores = [open_store(), open_store()]
    results = all_at_once(10, lambda i: stores[i % 2].record_delivery("delivery-1", "push"))
    assert sorted(results) == [False] * 9 + [True]


def test_ten_threads_recording_one_message_get_exactly_one_true(store: SqlStore) -> None:
    results = all_at_once(10, lambda i: store.record_message("status:run-1:running"))
    assert sorted(results) == [False] * 9 + [True]


# -- pull requests and approvals -----------------------------------------------------------------

def test_a_saved_pull_request_comes_back_as_it_was(store: SqlStore) -> None:
    repo, pull = make_pull()
    store.save_pull(repo, pull, 4242)
    assert store.get_pull(REPO, 7) == StoredPull(repo=repo, pull=pull, installation_id=4242)
    assert store.get_pull(REPO, 8) is None
    assert store.get_pull("someone/else", 7) is None


def test_saving_a_new_head_replaces_the_old_one(store: SqlStore) -> None:
    repo, pull = make_pull()
    store.save_pull(repo, pull, 4242)
    newer = replace(pull, head_sha="c" * 40, title="Tune it more", draft=False)
    store.save_pull(repo, newer, None)
    assert store.get_pull(REPO, 7) == StoredPull(repo=repo, pull=newer, installation_id=None)


def test_an_approval_holds_for_that_exact_head_only(store: SqlStore) -> None:
    assert store.is_approved(REPO, 7, SHA) is False
    store.approve(REPO, 7, SHA, "maintainer")
    store.approve(REPO, 7, SHA, "another-maintainer")
    assert store.is_approved(REPO, 7, SHA) is True
    assert store.is_approved(REPO, 7, "c" * 40) is False
    assert store.is_approved(REPO, 8, SHA) is False
    assert store.is_approved("someone/else", 7, SHA) is False


# -- runs -----------------------------------------------------------------------------------------

def test_a_created_run_comes_back_with_its_initial_state_as_first_transition(store: SqlStore) -> None:
    run = make_run()
    assert store.create_run(run) is True
    assert store.get_run("run-1") == replace(run, transitions=(Transition(RunState.QUEUED, T0),))
    assert store.get_run("run-2") is None


def test_a_deploy_run_without_pull_request_or_details_round_trips(store: SqlStore) -> None:
    run = make_run("deploy-1", pr=None, base_sha=None, trigger=Trigger.DEPLOY, triggered_by=None,
                   parameters={}, overrides={}, plan=RunPlan(), clone_url=None, installation_id=None)
    store.create_run(run)
    assert store.get_run("deploy-1") == replace(run, transitions=(Transition(RunState.QUEUED, T0),))


def test_a_run_created_with_transitions_keeps_them(store: SqlStore) -> None:
    history = (Transition(RunState.QUEUED, T0, "queued by /run"),
               Transition(RunState.SKIPPED, T0 + timedelta(seconds=1), "from a fork"))
    run = make_run(state=RunState.SKIPPED, updated_at=T0 + timedelta(seconds=1), transitions=history)
    store.create_run(run)
    assert store.get_run("run-1") == run


def test_creating_a_run_again_keeps_the_first(store: SqlStore) -> None:
    first = make_run()
    assert store.create_run(first) is True
    assert store.create_run(make_run(pipeline="other-pipeline", state=RunState.RUNNING)) is False
    stored = store.get_run("run-1")
    assert stored is not None
    assert (stored.pipeline, stored.state, len(stored.transitions)) == ("head-pose-pipeline",
                                                                         RunState.QUEUED, 1)


def test_ten_threads_creating_one_run_get_exactly_one_true(store: SqlStore) -> None:
    results = all_at_once(10, lambda i: store.create_run(make_run(triggered_by=f"user-{i}")))
    assert sorted(results) == [False] * 9 + [True]
    stored = store.get_run("run-1")
    assert stored is not None and len(stored.transitions) == 1


def test_a_run_that_cannot_be_stored_raises_a_store_error_and_stores_nothing(store: SqlStore) -> None:
    with pytest.raises(StoreError, match="run run-1: its parameters cannot be stored: a object is not JSON"):
        store.create_run(make_run(parameters={"model": object()}))
    assert store.get_run("run-1") is None
    store.create_run(make_run())
    with pytest.raises(StoreError, match="run run-1: its plan cannot be stored"):
        store.update_run("run-1", plan=RunPlan(trusted_changes=(PlanTrustedChange("f", "k", proposed=datetime),)),
                         url="https://never.example")
    assert store.get_run("run-1") == replace(make_run(), transitions=(Transition(RunState.QUEUED, T0),))


def test_dates_in_parameters_are_stored_as_iso_strings(store: SqlStore) -> None:
    store.create_run(make_run(parameters={"start": date(2024, 1, 31), "name": "tête"}))
    stored = store.get_run("run-1")
    assert stored is not None and stored.parameters == {"start": "2024-01-31", "name": "tête"}
    updated = store.update_run("run-1", parameters={"end": datetime(2024, 2, 1, 8, 30)})
    assert updated is not None and updated.parameters == {"end": "2024-02-01T08:30:00"}


# -- transitions ----------------------------------------------------------------------------------

def test_a_run_moves_forward_through_its_states(store: SqlStore, clock: ManualClock) -> None:
    store.create_run(make_run())
    steps = [(RunState.BUILDING, "building images", None), (RunState.COMPILING, "compiling", None),
             (RunState.RUNNING, "submitted", "https://console.cloud.google.com/vertex-ai/runs/1"),
             (RunState.SUCCEEDED, "done", None)]
    for state, detail, url in steps:
        clock.advance(30)
        moved = store.transition("run-1", state, detail=detail, url=url)
        assert moved is not None and moved.state is state and moved.updated_at == clock.current
    stored = store.get_run("run-1")
    assert stored is not None and stored == moved
    assert stored.url == "https://console.cloud.google.com/vertex-ai/runs/1"
    assert stored.error is None
    assert [(t.state, t.detail) for t in stored.transitions] == [(RunState.QUEUED, "")] + [
        (state, detail) for state, detail, _ in steps]
    assert [t.at for t in stored.transitions] == [T0] + [clock.current - timedelta(seconds=30 * n)
                                                          for n in (3, 2, 1, 0)]
    assert stored.created_at == T0
    assert stored.duration_seconds == (clock.current - T0).total_seconds()


def test_a_failure_keeps_its_error(store: SqlStore) -> None:
    store.create_run(make_run())
    moved = store.transition("run-1", RunState.FAILED, detail="could not compile",
                             error="pipelines/head-pose-pipeline/pipeline.py: no pipeline function")
    assert moved is not None
    assert moved.error == "pipelines/head-pose-pipeline/pipeline.py: no pipeline function"
    assert moved.transitions[-1].detail == "could not compile"


def test_a_stale_running_after_succeeded_is_ignored(store: SqlStore, clock: ManualClock) -> None:
    store.create_run(make_run())
    store.transition("run-1", RunState.RUNNING, url="https://kfp/runs/1")
    clock.advance(60)
    finished = store.transition("run-1", RunState.SUCCEEDED)
    clock.advance(60)
    assert store.transition("run-1", RunState.RUNNING, url="https://kfp/runs/stale",
                            error="late") is None
    assert store.transition("run-1", RunState.FAILED, error="too late") is None
    assert store.get_run("run-1") == finished


def test_a_duplicate_state_is_ignored(store: SqlStore) -> None:
    store.create_run(make_run())
    assert store.transition("run-1", RunState.BUILDING, detail="first") is not None
    assert store.transition("run-1", RunState.BUILDING, detail="again") is None
    stored = store.get_run("run-1")
    assert stored is not None
    assert [(t.state, t.detail) for t in stored.transitions] == [(RunState.QUEUED, ""),
                                                                 (RunState.BUILDING, "first")]


def test_states_may_be_skipped_but_never_go_back(store: SqlStore) -> None:
    store.create_run(make_run())
    assert store.transition("run-1", RunState.RUNNING) is not None
    assert store.transition("run-1", RunState.BUILDING) is None
    assert store.transition("run-1", RunState.COMPILING) is None
    assert store.transition("run-1", RunState.QUEUED) is None
    stored = store.get_run("run-1")
    assert stored is not None and stored.state is RunState.RUNNING


def test_a_transition_of_an_unknown_run_changes_nothing(store: SqlStore) -> None:
    assert store.transition("no-such-run", RunState.RUNNING) is None
    assert store.get_run("no-such-run") is None


def test_ten_threads_moving_to_the_same_state_move_it_once(open_store: Callable[[], SqlStore]) -> None:
    stores = [open_store(), open_store()]
    stores[0].create_run(make_run())
    results = all_at_once(10, lambda i: stores[i % 2].transition("run-1", RunState.RUNNING, detail=f"t{i}"))
    assert len([r for r in results if r is not None]) == 1
    stored = stores[0].get_run("run-1")
    assert stored is not None
    assert [t.state for t in stored.transitions] == [RunState.QUEUED, RunState.RUNNING]


def test_racing_notifications_leave_a_forward_history_ending_in_the_final_state(store: SqlStore) -> None:
    store.create_run(make_run())
    states = [RunState.BUILDING, RunState.COMPILING, RunState.RUNNING, RunState.SUCCEEDED] * 3
    results = all_at_once(len(states), lambda i: store.transition("run-1", states[i], detail=f"t{i}"))
    stored = store.get_run("run-1")
    assert stored is not None and stored.state is RunState.SUCCEEDED
    history = stored.transitions
    assert all(earlier.state.can_move_to(later.state) for earlier, later in pairwise(history))
    applied = [r for r in results if r is not None]
    assert len(applied) == len(history) - 1
    assert sorted(r.transitions[-1].detail for r in applied) == sorted(t.detail for t in history[1:])


# -- update_run ----------------------------------------------------------------------------------

def test_update_run_changes_only_what_is_given(store: SqlStore, clock: ManualClock) -> None:
    run = make_run()
    store.create_run(run)
    store.transition("run-1", RunState.BUILDING)
    before = store.get_run("run-1")
    assert before is not None
    clock.advance(10)
    updated = store.update_run("run-1", url="https://console.cloud.google.com/cloud-build/builds/9")
    assert updated == replace(before, url="https://console.cloud.google.com/cloud-build/builds/9")
    updated = store.update_run("run-1", parameters={"epochs": 1})
    assert updated is not None and dict(updated.parameters) == {"epochs": 1}
    assert updated.url == "https://console.cloud.google.com/cloud-build/builds/9"
    updated = store.update_run("run-1", plan=RunPlan(name="head-pose-pipeline"))
    assert updated is not None and updated.plan == RunPlan(name="head-pose-pipeline")
    assert (updated.state, updated.updated_at, updated.transitions) == (
        before.state, before.updated_at, before.transitions)
    assert store.update_run("run-1") == updated
    assert store.get_run("run-1") == updated


def test_update_run_of_an_unknown_run_is_none(store: SqlStore) -> None:
    assert store.update_run("no-such-run", url="https://example.com") is None


# -- list_runs ----------------------------------------------------------------------------------

@pytest.fixture
def listed(store: SqlStore) -> SqlStore:
    """Five runs of two PRs, two commits and two pipelines, created a minute apart."""
    specs = [("r1", 7, SHA, "head-pose-pipeline", None), ("r2", 7, SHA, "face-pipeline", RunState.SUCCEEDED),
             ("r3", 7, "c" * 40, "head-pose-pipeline", RunState.RUNNING),
             ("r4", 8, "d" * 40, "head-pose-pipeline", RunState.FAILED),
             ("r5", None, "e" * 40, "face-pipeline", None)]
    for minute, (run_id, pr, sha, pipeline, state) in enumerate(specs):
        store.create_run(make_run(run_id, pr=pr, sha=sha, pipeline=pipeline,
                                  created_at=T0 + timedelta(minutes=minute)))
        if state is not None:
            store.transition(run_id, state)
    store.create_run(make_run("other", repo="someone/else", pr=1, sha="f" * 40, pipeline="other-pipeline",
                              created_at=T0 + timedelta(minutes=9)))
    return store


def ids(found: list[Run]) -> list[str]:
    return [run.id for run in found]


def test_runs_are_listed_newest_first(listed: SqlStore) -> None:
    assert ids(listed.list_runs()) == ["other", "r5", "r4", "r3", "r2", "r1"]
    assert ids(listed.list_runs(limit=2)) == ["other", "r5"]


def test_runs_created_at_the_same_time_are_listed_in_id_order(store: SqlStore) -> None:
    for run_id in ("b", "c", "a"):
        store.create_run(make_run(run_id))
    assert ids(store.list_runs()) == ["a", "b", "c"]


def test_each_filter_narrows_the_listing(listed: SqlStore) -> None:
    assert ids(listed.list_runs(repo=REPO)) == ["r5", "r4", "r3", "r2", "r1"]
    assert ids(listed.list_runs(pr=7)) == ["r3", "r2", "r1"]
    assert ids(listed.list_runs(sha=SHA)) == ["r2", "r1"]
    assert ids(listed.list_runs(pipeline="face-pipeline")) == ["r5", "r2"]
    assert ids(listed.list_runs(state=RunState.QUEUED)) == ["other", "r5", "r1"]
    assert ids(listed.list_runs(active=True)) == ["other", "r5", "r3", "r1"]
    assert ids(listed.list_runs(active=False)) == ["r4", "r2"]


def test_filters_combine(listed: SqlStore) -> None:
    assert ids(listed.list_runs(repo=REPO, pr=7, active=True)) == ["r3", "r1"]
    assert ids(listed.list_runs(repo=REPO, pr=7, pipeline="head-pose-pipeline", active=True,
                                limit=1)) == ["r3"]
    assert ids(listed.list_runs(sha=SHA, state=RunState.SUCCEEDED, pipeline="face-pipeline")) == ["r2"]
    assert listed.list_runs(pr=8, active=True) == []
    assert listed.list_runs(repo="nobody/nothing") == []


def test_listed_runs_come_with_their_own_transitions(listed: SqlStore) -> None:
    by_id = {run.id: run for run in listed.list_runs()}
    assert [t.state for t in by_id["r1"].transitions] == [RunState.QUEUED]
    assert [t.state for t in by_id["r2"].transitions] == [RunState.QUEUED, RunState.SUCCEEDED]
    assert [t.state for t in by_id["r4"].transitions] == [RunState.QUEUED, RunState.FAILED]
    assert all(by_id[run_id] == listed.get_run(run_id) for run_id in by_id)


def test_a_long_listing_has_the_transitions_of_every_run(store: SqlStore) -> None:
    # More runs than one transitions query takes at once (reconcile lists up to 10 000).
    for n in range(505):
        store.create_run(make_run(f"run-{n:04d}", created_at=T0 + timedelta(seconds=n)))
    store.transition("run-0000", RunState.RUNNING)
    found = store.list_runs(limit=10_000)
    assert len(found) == 505 and found[0].id == "run-0504" and found[-1].id == "run-0000"
    assert all(len(run.transitions) == 1 for run in found[:-1])
    assert [t.state for t in found[-1].transitions] == [RunState.QUEUED, RunState.RUNNING]


def test_a_limit_below_one_is_refused(store: SqlStore) -> None:
    with pytest.raises(ValueError, match="limit must be at least 1"):
        store.list_runs(limit=0)


# -- external ids ---------------------------------------------------------------------------------

def test_external_ids_are_kept_per_scope_and_replaced(store: SqlStore) -> None:
    assert store.get_external("check-run", "run-1") is None
    store.set_external("check-run", "run-1", "1001")
    store.set_external("pr-comment", "run-1", "555")
    assert store.get_external("check-run", "run-1") == "1001"
    store.set_external("check-run", "run-1", "1002")
    assert store.get_external("check-run", "run-1") == "1002"
    assert store.get_external("pr-comment", "run-1") == "555"
    assert store.get_external("check-run", "run-2") is None


# -- time -----------------------------------------------------------------------------------------

def test_timestamps_come_back_as_utc_whatever_zone_they_were_given_in(store: SqlStore,
                                                                      clock: ManualClock) -> None:
    paris = timezone(timedelta(hours=2))
    created = datetime(2024, 5, 1, 14, 0, 0, 123456, tzinfo=paris)
    store.create_run(make_run(created_at=created, updated_at=created))
    clock.current = datetime(2024, 5, 1, 14, 30, 0, tzinfo=paris)
    store.transition("run-1", RunState.RUNNING)
    stored = store.get_run("run-1")
    assert stored is not None
    stamps = [stored.created_at, stored.updated_at] + [t.at for t in stored.transitions]
    assert all(stamp.tzinfo is not None and stamp.utcoffset() == timedelta(0) for stamp in stamps)
    assert stored.created_at == datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    assert stored.updated_at == datetime(2024, 5, 1, 12, 30, 0, tzinfo=UTC)


def test_naive_timestamps_are_taken_as_utc(store: SqlStore) -> None:
    store.create_run(make_run(created_at=datetime(2024, 5, 1, 12, 0), updated_at=datetime(2024, 5, 1, 12, 0)))
    stored = store.get_run("run-1")
    assert stored is not None and stored.created_at == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_listing_order_follows_the_instant_not_the_written_zone(store: SqlStore) -> None:
    tokyo = timezone(timedelta(hours=9))
    store.create_run(make_run("early-utc", created_at=datetime(2024, 5, 1, 10, 0, tzinfo=UTC)))
    # 18:00 in Tokyo is 09:00 UTC: older, though its wall-clock time is later.
    store.create_run(make_run("earlier-tokyo", created_at=datetime(2024, 5, 1, 18, 0, tzinfo=tokyo)))
    assert ids(store.list_runs()) == ["early-utc", "earlier-tokyo"]


# -- restart and schema ------------------------------------------------------------------------

def test_a_store_reopened_on_the_same_database_keeps_everything(open_store: Callable[[], SqlStore]) -> None:
    first = open_store()
    repo, pull = make_pull()
    first.record_delivery("delivery-1", "pull_request")
    first.record_message("pr:key")
    first.save_pull(repo, pull, 4242)
    first.approve(REPO, 7, SHA, "maintainer")
    first.create_run(make_run())
    moved = first.transition("run-1", RunState.RUNNING, detail="submitted", url="https://kfp/runs/1")
    first.set_external("check-run", "run-1", "1001")
    first.close()

    second = open_store()
    assert second.record_delivery("delivery-1", "pull_request") is False
    assert second.record_message("pr:key") is False
    assert second.get_pull(REPO, 7) == StoredPull(repo=repo, pull=pull, installation_id=4242)
    assert second.is_approved(REPO, 7, SHA) is True
    assert second.get_run("run-1") == moved
    assert second.list_runs(active=True) == [moved]
    assert second.get_external("check-run", "run-1") == "1001"
    assert second.transition("run-1", RunState.RUNNING) is None


def test_stores_opened_at_once_on_a_new_database_share_one_schema(open_store: Callable[[], SqlStore]) -> None:
    # Several gunicorn workers start together on an empty database.
    stores = all_at_once(4, lambda i: open_store())
    assert [s.record_delivery("delivery-1", "push") for s in stores].count(True) == 1


def test_the_schema_has_its_version_and_the_run_indexes(store: SqlStore, store_url: str) -> None:
    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version FROM schema_version")).scalar_one() == SCHEMA_VERSION
        inspector = sa_inspect(engine)
        assert set(inspector.get_table_names()) >= {"deliveries", "messages", "pulls", "approvals", "runs",
                                                     "transitions", "externals", "schema_version"}
        indexed = {tuple(index["column_names"]) for index in inspector.get_indexes("runs")}
        assert indexed >= {("repo", "pr"), ("state",), ("sha",)}
    finally:
        engine.dispose()


def test_a_database_made_before_the_claim_index_gets_it_when_opened(store: SqlStore, store_url: str,
                                                                    open_store: Callable[[], SqlStore]) -> None:
    # `create_all` makes a table's indexes only with the table: one added later is made here.
    store.enqueue([RunStart("run-1")])
    engine = create_engine(store_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP INDEX ix_outbox_claim"))
        open_store().close()
        indexes = {index["name"]: tuple(index["column_names"]) for index in sa_inspect(engine).get_indexes("outbox")}
    finally:
        engine.dispose()
    assert indexes["ix_outbox_claim"] == ("done_at", "lane", "repo", "owner", "lease_until", "id")
    assert store.claim("worker", 30.0) is not None  # the queue is as it was


def test_a_database_from_a_newer_bot_is_refused_with_a_clear_error(store: SqlStore, store_url: str,
                                                                  open_store: Callable[[], SqlStore]) -> None:
    engine = create_engine(store_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE schema_version SET version = :v"), {"v": SCHEMA_VERSION + 1})
    finally:
        engine.dispose()
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}.*newer kfp-bot") as caught:
        open_store()
    assert caught.value.hint == "upgrade kfp-bot, or point it at another database"


# -- SQLite specifics and bad URLs --------------------------------------------------------------------

def test_sqlite_creates_the_folder_and_uses_the_write_ahead_log(tmp_path: Path) -> None:
    path = tmp_path / "new" / "folder" / "kfp-bot.db"
    with SqlStore.from_url(f"sqlite:///{path}") as store:
        assert store.dialect == "sqlite"
        store.record_delivery("d-1", "push")
        with sqlite3.connect(path) as raw:
            assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert raw.execute("SELECT event FROM deliveries").fetchall() == [("push",)]


def test_an_in_memory_sqlite_database_is_refused() -> None:
    for url in ("sqlite://", "sqlite:///:memory:"):
        with pytest.raises(StoreError, match="in-memory SQLite") as caught:
            SqlStore(url)
        assert "sqlite:///path/to/kfp-bot.db" in str(caught.value)


def test_an_unsupported_database_is_refused() -> None:
    with pytest.raises(StoreError, match="mysql://bot:\\*\\*\\*@db/kfp is not supported"):
        SqlStore("mysql://bot:secret@db/kfp")


def test_a_malformed_url_is_refused_without_echoing_it() -> None:
    with pytest.raises(StoreError, match="not a valid URL") as caught:
        SqlStore("not a url with password hunter2")
    assert "hunter2" not in str(caught.value)


def test_an_unreachable_postgresql_server_gives_a_store_error_without_the_password() -> None:
    pytest.importorskip("psycopg", reason="the psycopg driver is not installed")
    with refusing_port() as port, pytest.raises(
            StoreError, match="cannot open the database postgresql\\+psycopg://bot:\\*\\*\\*@") as caught:
        SqlStore(f"postgresql://bot:hunter2@127.0.0.1:{port}/kfp")
    assert "hunter2" not in str(caught.value)
    assert caught.value.hint == "check the database URL, and that the database is reachable"
