"""A bounded, thread-safe cache keyed by git blob id, optionally kept on disk across processes.

What is parsed out of a file (its `COPY` sources, its import statements, the components it
loads) depends only on its bytes, and git names bytes by their blob id. Keying on the id lets a
long-running service reuse every parse across revisions and requests: planning a new push only
parses the files the push changed. With a disk store (`pipeline_registry.cache_control`) the parses also
outlive the process (`pipeline_registry.disk_cache`), so a fresh `kfp-bot plan` reads and parses
only the blobs no earlier plan (command line or service) has seen.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from pipeline_registry.disk_cache import DiskCache

T = TypeVar("T")

_ALL: weakref.WeakSet[DigestCache[object]] = weakref.WeakSet()
_DISK: DiskCache | None = None


def all_caches() -> list[DigestCache[object]]:
    """Every digest cache of the process."""
    return list(_ALL)


def disk() -> DiskCache | None:
    """The on-disk store the digest caches read through and write to (None: memory only)."""
    return _DISK


def set_disk(store: DiskCache | None) -> None:
    """Make every digest cache read through and write to `store` (`cache_control` decides which)."""
    global _DISK
    _DISK = store


class DigestCache(Generic[T]):
    """Least-recently-used map from blob id to a value computed from the blob's bytes.

    `name` identifies the kind of parse on disk (`persist=False`: memory only). `encode` turns a
    value into plain tuples and strings for the disk and `decode` back: unpickling thousands of
    dataclasses costs ten times more than unpickling tuples, and only the entries a plan looks up
    are decoded.
    """

    def __init__(self, name: str, maxsize: int = 50_000, *, encode: Callable[[T], Any] | None = None,
                 decode: Callable[[Any], T] | None = None, persist: bool = True) -> None:
        self.name = name
        # False: memory only, for values cheaper to derive again than to store (and load).
        self.persist = persist
        self.maxsize = maxsize
        self._encode = encode
        self._decode = decode
        self._items: OrderedDict[str, T] = OrderedDict()
        self._lock = threading.Lock()
        _ALL.add(self)  # type: ignore[arg-type]

    def get(self, digest: str) -> T | None:
        """The cached value for `digest` (from memory, else from the disk cache), or None."""
        with self._lock:
            value = self._items.get(digest)
            if value is not None:
                self._items.move_to_end(digest)
                return value
        disk = _DISK
        if disk is None or not self.persist:
            return None
        stored = disk.lookup(self.name, digest)
        if stored is None:
            return None
        value = self._decode(stored) if self._decode is not None else stored
        self._remember(digest, value)
        return value

    def put(self, digest: str, value: T) -> T:
        """Store `value` for `digest` (and on disk at the next flush) and return it."""
        self._remember(digest, value)
        if _DISK is not None and self.persist:
            _DISK.add(self.name, digest, self._encode(value) if self._encode is not None else value)
        return value

    def _remember(self, digest: str, value: T) -> None:
        with self._lock:
            self._items[digest] = value
            self._items.move_to_end(digest)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)

    def get_or_compute(self, digest: str, compute: Callable[[], T]) -> T:
        """The cached value, computing and storing it on a miss."""
        value = self.get(digest)
        return value if value is not None else self.put(digest, compute())

    def clear(self) -> None:
        """Forget everything held in memory (benchmarks measure cold runs with it)."""
        with self._lock:
            self._items.clear()
