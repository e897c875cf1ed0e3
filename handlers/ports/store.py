"""The store port: what must survive a restart (runs, deliveries, pull requests, approvals, the
ids of remote objects) and the events a change causes, queued in the same transaction.

`bot.store.SqlStore` implements it on SQLite (embedded) or PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from handlers.models import Event, PullRequestRef, RepoRef
from handlers.ports.chat import ChatMessage
from handlers.queue_models import SlotClaim
from handlers.run_models import FailedDelivery, FailureStage, Run, RunPlan, RunState
from pipeline_registry.limits import RunLimits

Then = Callable[[Run], Sequence[Event]]
"""What a stored state change causes: the events to queue for the run as it is after the change."""


@dataclass(frozen=True)
class StoredPull:
    """What the store remembers of a pull request (its latest head)."""

    repo: RepoRef
    pull: PullRequestRef
    installation_id: int | None = None


@dataclass(frozen=True)
class IncomingDelivery:
    """A verified webhook delivery to accept (`Store.accept_deliveries`)."""

    delivery_id: str
    event_name: str
    event: Event
    head: StoredPull | None = None


class Store(Protocol):
    """Runs, deliveries, pull requests and approvals that must survive a restart."""

    def record_delivery(self, delivery_id: str, event: str) -> bool:
        """Remember a webhook delivery; False when it was seen before (atomic)."""

    def has_delivery(self, delivery_id: str) -> bool:
        """Whether a webhook delivery was recorded (read-only)."""

    def record_message(self, key: str) -> bool:
        """Remember a processed bus message key; False when it was processed before."""

    def accept_delivery(self, delivery_id: str, event_name: str, event: Event, *,
                        head: StoredPull | None = None) -> tuple[int, ...] | None:
        """Record a delivery, queue its event (a comment bound to its pull request's stored head,
        `handlers.receipt`) and remember the pull request `head` it announces, in one
        transaction; None (and nothing stored) for a delivery seen before."""

    def accept_deliveries(self, incoming: Sequence[IncomingDelivery]) -> list[tuple[int, ...] | None | Exception]:
        """`accept_delivery` for each of `incoming`, committed together (in as few transactions
        as they fit); for each, its row ids, None for a delivery seen before, or the error that
        refused it alone (the others are stored)."""

    def accept_deliveries_now(self, incoming: Sequence[IncomingDelivery]) -> list[tuple[int, ...] | None] | None:
        """`accept_deliveries` committed on the calling thread when that needs no wait (an event
        loop calls it); None, with nothing stored, when it would wait or the batch fails: then
        `accept_deliveries` commits them."""

    def run_has_work(self, run_id: str) -> bool:
        """True while a step of the run is queued or owned by a live worker."""

    def pending_work(self) -> int:
        """How many queued events are not done yet."""

    def record_delivery_failure(self, delivery_id: str, event: str, stage: FailureStage, reason: str) -> None:
        """Keep a failed delivery queryable (`/api/deliveries?failed=1`) with the reason."""

    def list_delivery_failures(self, *, delivery_id: str | None = None, limit: int = 50) -> list[FailedDelivery]:
        """Failed deliveries (or the failures of one), newest first."""

    def save_pull(self, repo: RepoRef, pull: PullRequestRef, installation_id: int | None) -> None:
        """Remember the latest head of a pull request."""

    def get_pull(self, repo: str, number: int) -> StoredPull | None:
        """The last pull request event stored for `repo#number`."""

    def approve(self, repo: str, number: int, sha: str, by: str) -> None:
        """Record a maintainer's `/ok-to-run` for one exact head commit."""

    def is_approved(self, repo: str, number: int, sha: str) -> bool:
        """True when `/ok-to-run` was given for this exact head commit."""

    def create_run(self, run: Run) -> bool:
        """Insert a run; False when a run with that id already exists (redelivery)."""

    def get_run(self, run_id: str) -> Run | None:
        """One run with its transitions."""

    def transition(self, run_id: str, state: RunState, *, detail: str = "", url: str | None = None,
                   error: str | None = None, then: Then | None = None) -> Run | None:
        """Move a run forward; None (and no change) when the move is not forward. The events
        `then(moved_run)` gives are queued in the same transaction as the change."""

    def claim_slot(self, run_id: str, limits: RunLimits, *, day_start: datetime, detail: str = "",
                   then: Then | None = None) -> SlotClaim:
        """Move the queued run to building when its repository has a slot free for it (oldest
        queued first, per-PR limit, budgets counted since `day_start`), atomically across workers
        and instances; otherwise say why it waits or must not start."""

    def count_started(self, repo: str, *, since: datetime, pr: int | None = None) -> int:
        """Runs of `repo` (of pull request `pr`) that started building since `since`, deploys not counted."""

    def update_run(self, run_id: str, *, parameters: Mapping[str, Any] | None = None,
                   url: str | None = None, plan: RunPlan | None = None) -> Run | None:
        """Update details of a run without changing its state."""

    def list_runs(self, *, repo: str | None = None, pr: int | None = None, sha: str | None = None,
                  pipeline: str | None = None, state: RunState | None = None,
                  active: bool | None = None, limit: int = 200) -> list[Run]:
        """Runs matching every given filter, newest first."""

    def get_external(self, scope: str, key: str) -> str | None:
        """An id the bot keeps for a remote object (check run id, comment id, build id)."""

    def get_chat_thread(self, key: str) -> ChatMessage | None:
        """The parent message of chat thread `key` (channel ID and ts), or None."""

    def set_chat_thread(self, key: str, message: ChatMessage) -> None:
        """Remember the parent message of chat thread `key` (replacing the one kept before)."""

    def set_external(self, scope: str, key: str, value: str) -> None:
        """Remember an id for a remote object."""
