"""The production bus: outbox rows relayed to Pub/Sub, then marked sent.

The webhook writes the delivery and its event in one transaction (`bot.store.outbox`), a run's
state change its notification, and a push step its completion and the next steps it published
(`collecting`, `OutboxStore.complete_step`); this relay publishes the rows (notifications to the
notifications topic, every other event to the events topic) and marks them done once Pub/Sub
confirmed them. It publishes at once in the writer's thread (the webhook, a handler, once the
transaction committed: `OutboxStore.on_queued`), so an event is usually on its topic moments
later; what Pub/Sub refused stays in the store and the relay's thread publishes it again later,
as does any row a crashed instance left behind (its lease expires). Publishing is
at-least-once: a crash between Pub/Sub's confirmation and the mark publishes a row twice; each
message carries its row id (the `step` attribute), and the push endpoint runs a row once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from bot.embedded_bus import BusUnavailable, StepEvents
from bot.owners import alive_here, new_owner_id
from bot.pubsub.publisher import PubSubBus
from bot.store.outbox import OutboxStore
from handlers.models import Event, EventKind

log = logging.getLogger("kfp_bot.pubsub")

DEFAULT_RETRY_SECONDS = 5.0
_BATCH = 100


class OutboxRelay:
    """`publish` and `notify` relay rows at once; `start` runs the retry loop for the rest."""

    notify_blocks = True  # `notify` publishes to Pub/Sub before it returns

    def __init__(self, store: OutboxStore, topic: PubSubBus, *, notifications: PubSubBus | None = None,
                 retry_seconds: float = DEFAULT_RETRY_SECONDS, owner: str | None = None) -> None:
        """`topic` publishes one event and raises `BusUnavailable` when Pub/Sub did not take it;
        `notifications` takes the run notifications (default: `topic`)."""
        self._store = store
        self._topic = topic
        self._notifications = notifications or topic
        self._retry = retry_seconds
        # A publish may take the topic's whole timeout: the lease must outlast it.
        self._lease = max(30.0, 3 * (max(topic.timeout_seconds, self._notifications.timeout_seconds) + 2.0))
        self.owner = owner or new_owner_id()
        self._unit = StepEvents()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        store.on_queued(self.notify)

    @property
    def topic_path(self) -> str:
        """The events topic."""
        return self._topic.topic_path

    def publish(self, event: Event) -> None:
        """Store `event` in the outbox, then relay it; `BusUnavailable` only when the store refused.

        Inside `collecting` (a push step) the event is held for the step's completion instead."""
        buffered = self._unit.events
        if buffered is not None:
            buffered.append(event)
            return
        try:
            ids = self._store.enqueue([event])
        except Exception as exc:
            raise BusUnavailable(f"could not queue {event.key}: {exc}") from exc
        self.notify(ids)

    @contextmanager
    def collecting(self) -> Iterator[list[Event]]:
        """Hold the events published on this thread (by a push step's handlers) in the list it
        gives; the caller queues them with the step's completion (`OutboxStore.complete_step`)."""
        self._unit.events = []
        try:
            yield self._unit.events
        finally:
            self._unit.events = None

    def notify(self, ids: Sequence[int] = ()) -> None:
        """Relay rows `ids` now; those Pub/Sub refuses are retried by the relay's thread. A stopped
        relay leaves them to the next start or another instance."""
        if self._stop.is_set():
            return
        for row_id in ids:
            self._relay_one(ids=(row_id,))

    def relay_pending(self, limit: int = _BATCH) -> int:
        """Relay up to `limit` unsent rows (any lane, expired leases included); how many were sent."""
        sent = 0
        for _ in range(limit):
            outcome = self._relay_one()
            if outcome != 1:  # nothing left, or Pub/Sub refused: try again next round
                break
            sent += 1
        return sent

    def start(self) -> None:
        """Start the thread that relays what could not be sent at once."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="kfp-bot-relay", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the relay thread and refuse later publishes to the topic."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._topic.stop(timeout)
        if self._notifications is not self._topic:
            self._notifications.stop(timeout)
        return self._thread is None or not self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.wait(self._retry):
            try:
                self.relay_pending()
            except Exception as exc:
                log.error("outbox relay: %s", exc)

    def _relay_one(self, ids: Sequence[int] = ()) -> int | None:
        """1 when a row was sent, 0 when one was tried and refused, None when none was claimable."""
        claimed = self._store.claim(self.owner, self._lease, ids=ids, alive=alive_here)
        if claimed is None:
            return None
        if claimed.event is None:
            log.error("outbox row %d (%s) is not an event this bot knows and is dropped: %s",
                      claimed.id, claimed.key, claimed.decode_error)
            self._store.finish(claimed.id, self.owner)
            return 0
        topic = self._notifications if claimed.event.kind is EventKind.NOTIFICATION else self._topic
        try:
            topic.publish(claimed.event, step=claimed.id)
        except BusUnavailable as exc:
            log.warning("outbox relay: %s stays queued: %s", claimed.key, exc)
            self._store.release(claimed.id, self.owner)
            return 0
        self._store.finish(claimed.id, self.owner)
        return 1
