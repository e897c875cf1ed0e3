"""A bounded, thread-safe cache keyed by git blob id.

What is parsed out of a file (its `COPY` sources, its import statements, the components it
loads) depends only on its bytes, and git names bytes by their blob id. Keying on the id lets a
long-running service reuse every parse across revisions and requests: planning a new push only
parses the files the push changed.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from typing import Callable, Generic, TypeVar

T = TypeVar("T")

_ALL: "weakref.WeakSet[DigestCache[object]]" = weakref.WeakSet()


def clear_all_caches() -> None:
    """Empty every digest cache of the process (benchmarks use it to measure cold runs)."""
    for cache in list(_ALL):
        cache.clear()


class DigestCache(Generic[T]):
    """Least-recently-used map from blob id to a value computed from the blob's bytes."""

    def __init__(self, maxsize: int = 50_000) -> None:
        self.maxsize = maxsize
        self._items: OrderedDict[str, T] = OrderedDict()
        self._lock = threading.Lock()
        _ALL.add(self)  # type: ignore[arg-type]

    def get(self, digest: str) -> T | None:
        """The cached value for `digest`, or None."""
        with self._lock:
            value = self._items.get(digest)
            if value is not None:
                self._items.move_to_end(digest)
            return value

    def put(self, digest: str, value: T) -> T:
        """Store `value` for `digest` and return it."""
        with self._lock:
            self._items[digest] = value
            self._items.move_to_end(digest)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)
        return value

    def get_or_compute(self, digest: str, compute: Callable[[], T]) -> T:
        """The cached value, computing and storing it on a miss."""
        value = self.get(digest)
        return value if value is not None else self.put(digest, compute())

    def clear(self) -> None:
        """Forget everything (benchmarks measure cold runs with it)."""
        with self._lock:
            self._items.clear()
