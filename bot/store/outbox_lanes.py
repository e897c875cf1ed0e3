"""Outbox lanes: which workers handle an event, so that short bookkeeping (run state changes,
notifications) never waits behind long work (checkouts, builds, compiles, runs).
"""

from __future__ import annotations

import enum

from handlers.models import BuildStatus, Event, EventKind
from handlers.run_models import RunState


class Lane(enum.Enum):
    """Which workers handle an event: short bookkeeping, or long work."""

    SHORT = "short"
    LONG = "long"


_SHORT_KINDS = frozenset({EventKind.RUN_STATUS, EventKind.NOTIFICATION})


def lane_for(event: Event) -> Lane:
    """Short for state changes and notifications (a failed build is only a state change), long
    for anything that checks out, builds, compiles or runs."""
    if event.kind in _SHORT_KINDS:
        return Lane.SHORT
    if isinstance(event, BuildStatus) and event.state is not RunState.COMPILING:
        return Lane.SHORT
    return Lane.LONG
