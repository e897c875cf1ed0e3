"""One way to pick an adapter by a pipeline's target (`local`, `vertex`, `kfp`).

A pipeline's `run.target` (in `settings.yaml` or `.kfp-bot.yaml`) chooses where it runs, where its
template is uploaded and what schedules it; a pipeline naming no target gets the bot's default.
Runners, template stores and schedulers are all held in a `ByTarget`: one adapter per target,
and a fallback for the targets that have none of their own (the bot's folder or GCS store serves
`local` and `vertex` pipelines alike). Handlers ask `for_target`; a deleted pipeline, whose target
went with its files, asks `every` adapter.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Generic, TypeVar

from pipeline_registry.repo_config import Target

P = TypeVar("P")


class ByTarget(Generic[P]):
    """Adapters of one port, by pipeline target."""

    def __init__(self, routes: Mapping[Target, P] | None = None, *, default: Target = Target.LOCAL,
                 fallback: P | None = None) -> None:
        self.routes: Mapping[Target, P] = MappingProxyType(dict(routes or {}))
        self.default = default
        self.fallback = fallback

    @classmethod
    def only(cls, port: P | None, *, default: Target = Target.LOCAL) -> ByTarget[P]:
        """The same adapter for every target (none at all when `port` is None)."""
        return cls(default=default, fallback=port)

    def for_target(self, target: Target | None) -> P | None:
        """The adapter of a pipeline with `target` (None: the bot's default target); None when
        neither that target nor the fallback has one."""
        return self.routes.get(target or self.default, self.fallback)

    def every(self) -> tuple[P, ...]:
        """Every distinct adapter, each once."""
        ports = [*self.routes.values(), *([self.fallback] if self.fallback is not None else [])]
        return tuple({id(port): port for port in ports}.values())

    def __repr__(self) -> str:
        return f"ByTarget({dict(self.routes)!r}, default={self.default.value}, fallback={self.fallback!r})"
