"""The running bot's long-lived parts, handed to the app factory as one value.

`create_app` needs the store (delivery de-duplication, runs for the page and the API) and the
bus (where accepted webhooks go); the handler context is there for whoever wires the workers.
Building the concrete adapters from `Settings` is `bot.wiring`'s job, starting them in a
process `bot.startup`'s; this module only says what the service holds and how it starts and
stops, so tests can assemble one from parts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from handlers.context import HandlerContext
from handlers.ports.events import Bus, NotificationDecoder
from handlers.ports.store import Store

if TYPE_CHECKING:
    from bot.github.deliveries import Redeliverer


class ManagedBus(Bus, Protocol):
    """A bus with a life cycle: workers (or subscriber threads) started and stopped with the app."""

    def start(self) -> None:
        """Begin delivering published events."""

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop delivering; True when everything stopped within `timeout` seconds."""

    def notify(self, ids: Sequence[int] = ()) -> None:
        """Rows `ids` were written to the store's outbox: deliver them soon."""

    @property
    def notify_blocks(self) -> bool:
        """True when `notify` may wait (on the network): it must not be called on an event loop."""


@dataclass(frozen=True)
class Services:
    """The store, the bus and the handler context of one running bot (the context is None only
    where a test assembles the app from parts without handlers)."""

    store: Store
    bus: ManagedBus
    context: HandlerContext | None = None
    decoders: tuple[NotificationDecoder, ...] = ()
    redeliverer: Redeliverer | None = None
    # Masks the configured secrets in text (see bot.redaction); the log formatter uses it too.
    redactor: Callable[[str], str] | None = None

    def start(self) -> None:
        """Start delivering events to the handlers."""
        self.bus.start()

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the bus, finishing queued work within `timeout`; True when it stopped cleanly. The
        compiler's warmed-up interpreters end with it."""
        stopped = self.bus.stop(timeout)
        if self.context is not None:
            self.context.compiler.close()
        return stopped
