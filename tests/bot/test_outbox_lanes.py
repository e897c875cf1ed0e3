"""Outbox lanes on real databases: short bookkeeping has a lane of its own."""

from __future__ import annotations

from bot.store import SqlStore
from bot.store.outbox_lanes import Lane, lane_for
from handlers.models import BuildStatus, Notification, RunStart, RunStatus
from handlers.run_models import RunState, Trigger
from tests.bot.test_outbox import LEASE, push


def test_state_changes_and_notifications_have_a_lane_of_their_own(store: SqlStore) -> None:
    notification = Notification(run_id="r", repo="octo/alpha", sha="a" * 40, pipeline="p",
                                trigger=Trigger.AUTORUN, state=RunState.RUNNING, at="2024-05-01T10:00:00+00:00")
    assert lane_for(RunStatus("r", RunState.SUCCEEDED)) is Lane.SHORT
    assert lane_for(notification) is Lane.SHORT
    assert lane_for(BuildStatus("r", RunState.FAILED)) is Lane.SHORT
    assert lane_for(BuildStatus("r", RunState.COMPILING)) is Lane.LONG
    assert lane_for(RunStart("r")) is Lane.LONG
    assert lane_for(push()) is Lane.LONG

    store.enqueue([RunStart("r"), push(), RunStatus("r", RunState.SUCCEEDED)])
    short = store.claim("w", LEASE, lane=Lane.SHORT)
    assert short is not None and short.event == RunStatus("r", RunState.SUCCEEDED)
    assert store.claim("w", LEASE, lane=Lane.SHORT) is None
