"""Bounded push steps: a push request never holds its message longer than the step budget.

Pub/Sub redelivers a push message whose request is still unanswered at the ack deadline, while
the first request goes on: a step slower than the deadline (cloning a large repository, building
a compile environment, waiting out a GitHub rate limit) would run twice at the same moment. So
each message's step runs in a thread of its own under a lease in the store (`take_lease`, keyed
by subscription and message id), and the request waits for it at most `budget_seconds`
(KFP_BOT_PUBSUB_STEP_SECONDS, well under the 600 s ack deadline and App Engine's request limit):

- the step ends within the budget: the request answers with its outcome, as before;
- it does not: the request answers 503, the step goes on and keeps renewing its lease; Pub/Sub
  delivers the message again later;
- a delivery of a message whose lease someone else holds (a redelivery while the step runs, here
  or at another instance sharing the database) is answered 503 at once, and runs nothing;
- once the step has ended, its outcome is remembered, so the next delivery is a duplicate and is
  acknowledged; a step that ended in a transient failure dropped its lease, so the next delivery
  runs it again; a lease whose owner died expires, and a redelivery after that runs it again.
"""

from __future__ import annotations

import enum
import logging
import threading
import uuid
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

log = logging.getLogger("kfp_bot.pubsub")

LEASE_SCOPE = "pubsub-step"
"""Store scope of the leases on messages whose step is running."""
LEASE_MARGIN_SECONDS = 30.0
"""A lease outlives the budget by this much (or by the budget, when that is shorter) and is renewed
three times within its length; a killed holder's message waits that long before it runs again."""

R = TypeVar("R")


class LeaseStore(Protocol):
    """What the step runner needs of the store (`bot.store.leases.LeaseMixin`)."""

    def take_lease(self, scope: str, key: str, owner: str, seconds: float) -> bool:
        """Hold `key` for `owner`; False while someone else holds it."""

    def drop_lease(self, scope: str, key: str, owner: str) -> None:
        """Give up `owner`'s lease on `key`."""


class Wait(enum.Enum):
    """Why a step gave no outcome to the request."""

    BUSY = "busy"          # someone else holds the message's lease: nothing was run
    OVERRAN = "overran"    # the step is still running after the budget: it goes on


class Step(Generic[R]):
    """One running step: its outcome once done."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.outcome: R | None = None


class StepRunner:
    """Runs steps under leases, answering within `budget_seconds` (see the module docstring)."""

    def __init__(self, store: LeaseStore, budget_seconds: float, *, owner: str | None = None) -> None:
        if budget_seconds <= 0:
            raise ValueError("a step budget must be positive")
        self._store = store
        self.budget_seconds = budget_seconds
        self.lease_seconds = budget_seconds + min(LEASE_MARGIN_SECONDS, budget_seconds)
        self.owner = owner or f"push-{uuid.uuid4().hex[:12]}"

    def run(self, key: str, work: Callable[[], R], *, name: str = "step") -> R | Wait:
        """`work()`'s outcome when it ends within the budget; `Wait.BUSY` when another holds `key`;
        `Wait.OVERRAN` when it is still running (it goes on, renewing its lease).

        Store errors of taking the lease are raised (the caller answers 503)."""
        holder = f"{self.owner}/{uuid.uuid4().hex[:8]}"  # this step, not this process: a redelivery here waits too
        if not self._store.take_lease(LEASE_SCOPE, key, holder, self.lease_seconds):
            return Wait.BUSY
        step: Step[R] = Step()
        worker = threading.Thread(target=self._work, args=(key, holder, work, step), name=f"push-{name}",
                                  daemon=True)
        worker.start()
        if step.done.wait(self.budget_seconds):
            return step.outcome  # type: ignore[return-value]
        log.warning("%s is still running after the %g s step budget; Pub/Sub will deliver it again and "
                    "it is answered once the step has ended", name, self.budget_seconds)
        return Wait.OVERRAN

    def _work(self, key: str, holder: str, work: Callable[[], R], step: Step[R]) -> None:
        renewer = threading.Thread(target=self._renew, args=(key, holder, step.done), daemon=True)
        renewer.start()
        try:
            step.outcome = work()
        finally:
            step.done.set()
            try:
                self._store.drop_lease(LEASE_SCOPE, key, holder)
            except Exception as exc:  # it expires by itself
                log.warning("could not drop the lease on %s: %s", key, exc)

    def _renew(self, key: str, holder: str, done: threading.Event) -> None:
        while not done.wait(self.lease_seconds / 3):
            try:
                if not self._store.take_lease(LEASE_SCOPE, key, holder, self.lease_seconds):
                    log.error("lost the lease on %s while its step runs", key)
            except Exception as exc:
                log.warning("could not renew the lease on %s: %s", key, exc)
