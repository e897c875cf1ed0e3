"""A bounded, thread-safe cache keyed by git blob id, optionally kept on disk across processes.

What is parsed out of a file (its `COPY` sources, its import statements, the components it
loads) depends only on its bytes, and git names bytes by their blob id. Keying on the id lets a
long-running service reuse every parse across revisions and requests: planning a new push only
parses the files the push changed. With `use_disk_cache(folder)` the parses also outlive the
process (`pipeline_registry.disk_cache`), so a fresh `kfp-bot plan` reads and parses only the
blobs no earlier plan (command line or service) has seen.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

from pipeline_registry.disk_cache import DiskCache
from pipeline_registry.tree_index import TreeStore

T = TypeVar("T")

# The folder of the parse cache inside the data folder's cache (`<data dir>/cache/parses`).
PARSES_DIR = "parses"
TREES_DIR = "trees"
_ALL: weakref.WeakSet[DigestCache[object]] = weakref.WeakSet()
_DISK: DiskCache | None = None
_TREES = TreeStore(None)


def clear_all_caches() -> None:
    """Empty every digest cache of the process (benchmarks and tests use it to act as a new process)."""
    for cache in list(_ALL):
        cache.clear()
    if _DISK is not None:
        _DISK.forget_loaded()
    _TREES.forget()


def tree_store() -> TreeStore:
    """Facts of whole trees by tree id (`tree_index`): in memory, and next to the parses on disk."""
    return _TREES


def use_disk_cache(folder: Path | None) -> None:
    """Keep parses in `folder` across processes (None: memory only). The CLI and the service
    pass `<data dir>/cache/parses`, so both share one cache."""
    global _DISK, _TREES
    if _DISK is not None and folder is not None and _DISK.folder == Path(folder):
        return
    _DISK = DiskCache(Path(folder)) if folder is not None else None
    _TREES = TreeStore(_DISK.dir / TREES_DIR if _DISK is not None else None)


def flush_disk_cache() -> None:
    """Write the parses made since the last flush (planning calls it when a plan is done)."""
    if _DISK is not None:
        _DISK.flush()


class DigestCache(Generic[T]):
    """Least-recently-used map from blob id to a value computed from the blob's bytes.

    `name` identifies the kind of parse on disk. `encode` turns a value into plain tuples and
    strings for the disk and `decode` back: unpickling thousands of dataclasses costs ten times
    more than unpickling tuples, and only the entries a plan looks up are decoded.
    """

    def __init__(self, name: str, maxsize: int = 50_000, *, encode: Callable[[T], Any] | None = None,
                 decode: Callable[[Any], T] | None = None) -> None:
        self.name = name
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
        if disk is None:
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
        if _DISK is not None:
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
