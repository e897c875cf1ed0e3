"""Routing events to handlers: one router per handler module, combined in one place.

Each module declares `router = Router()` and registers its functions by event kind and, where
the event has one, by action, as GitHub bots route (gidgethub's
`router.register("pull_request", action="closed")`):

    @router.on(EventKind.PULL_REQUEST, action=PullRequestAction.CLOSED)
    def closed(event, ctx): ...

A function registered without an action gets every event of its kind; stacking `on` registers
one function for several actions. `handlers.routes.ROUTES` combines the modules' routers.
Comment commands are routed the same way, one registration per `CommandKind` (`CommandRouter`).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from handlers.context import HandlerContext
from handlers.models import CheckRunEvent, Event, EventKind, PullRequestEvent

Handler = Callable[[Event, HandlerContext], None]
K = TypeVar("K", bound=enum.Enum)
F = TypeVar("F", bound=Callable[..., None])


class Router:
    """Maps event kinds (and actions) to the handler functions of one module."""

    def __init__(self) -> None:
        self._routes: dict[tuple[EventKind, enum.Enum | None], list[Handler]] = {}

    def on(self, kind: EventKind, *, action: enum.Enum | None = None) -> Callable[[F], F]:
        """Decorator: register `fn` for events of `kind` (only those with `action`, when given).
        `fn` takes the event class of that kind (e.g. `PullRequestEvent`)."""

        def register(fn: F) -> F:
            self._routes.setdefault((kind, action), []).append(fn)
            return fn

        return register

    def include(self, *others: Router) -> Router:
        """Add every route of `others` to this router."""
        for other in others:
            for key, handlers in other._routes.items():
                self._routes.setdefault(key, []).extend(handlers)
        return self

    def handlers_for(self, kind: EventKind, action: enum.Enum | None = None) -> Iterable[Handler]:
        """The functions for an event of `kind` with `action`: those of every action, then the action's."""
        specific = self._routes.get((kind, action), []) if action is not None else []
        return (*self._routes.get((kind, None), ()), *specific)

    def dispatch(self, event: Event, context: HandlerContext) -> int:
        """Run every handler registered for the event's kind and action; the count of handlers run."""
        handlers = tuple(self.handlers_for(event.kind, event_action(event)))
        for handler in handlers:
            handler(event, context)
        return len(handlers)


def event_action(event: Event) -> enum.Enum | None:
    """The action of the events that have one (`PullRequestAction`, `CheckAction`), else None."""
    if isinstance(event, (PullRequestEvent, CheckRunEvent)):
        return event.action
    return None


class CommandRouter(Generic[K, F]):
    """One function per command (`CommandKind`): registering a command twice is a mistake, and
    so is leaving one out (`missing`)."""

    def __init__(self, kinds: type[K]) -> None:
        self.kinds = kinds
        self._routes: dict[K, F] = {}

    def on(self, kind: K) -> Callable[[F], F]:
        """Decorator: `fn` answers the command `kind`."""

        def register(fn: F) -> F:
            if kind in self._routes:
                raise ValueError(f"/{kind.value} is handled by {self._routes[kind].__name__} already")
            self._routes[kind] = fn
            return fn

        return register

    def handler_for(self, kind: K) -> F:
        """The function answering `kind`."""
        return self._routes[kind]

    def missing(self) -> list[K]:
        """Commands with no function (a test keeps this empty)."""
        return [kind for kind in self.kinds if kind not in self._routes]
