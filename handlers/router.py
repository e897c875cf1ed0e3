"""Routing events to handlers: one router per handler module, combined in one place.

Each module declares `router = Router()` and decorates its functions with
`@router.on(EventKind.X)`; `handlers.routes.ROUTES` combines them. Dispatch is by event kind.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar, cast

from handlers.context import HandlerContext
from handlers.models import Event, EventKind

Handler = Callable[[Event, HandlerContext], None]
E = TypeVar("E", bound=Event)


class Router:
    """Maps event kinds to the handler functions of one module."""

    def __init__(self) -> None:
        self._routes: dict[EventKind, list[Handler]] = {}

    def on(self, kind: EventKind) -> Callable[[Callable[[E, HandlerContext], None]], Callable[[E, HandlerContext], None]]:
        """Decorator: register `fn` for events of `kind`."""

        def register(fn: Callable[[E, HandlerContext], None]) -> Callable[[E, HandlerContext], None]:
            # `fn` takes one kind of event; dispatch by kind hands it only events of that kind.
            self._routes.setdefault(kind, []).append(cast(Handler, fn))
            return fn

        return register

    def include(self, *others: Router) -> Router:
        """Add every route of `others` to this router."""
        for other in others:
            for kind, handlers in other._routes.items():
                self._routes.setdefault(kind, []).extend(handlers)
        return self

    def handlers_for(self, kind: EventKind) -> Sequence[Handler]:
        return tuple(self._routes.get(kind, ()))

    def dispatch(self, event: Event, context: HandlerContext) -> int:
        """Run every handler registered for the event's kind; the count of handlers run."""
        handlers = self.handlers_for(event.kind)
        for handler in handlers:
            handler(event, context)
        return len(handlers)
