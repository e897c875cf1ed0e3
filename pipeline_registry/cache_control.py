"""Where this process keeps what planning learns: the parse caches (by blob id) and the facts of
whole trees (by tree id), in memory and, when a folder is given, on disk for the next process.

The command line and the service both call `use_disk_cache(<data dir>/cache/parses)`, so a plan
made by one warms the other. Kept apart from `cache` (the digest cache itself) because the tree
facts depend on the parsers, which depend on the digest cache.
"""

from __future__ import annotations

from pathlib import Path

from pipeline_registry import cache
from pipeline_registry.disk_cache import DiskCache
from pipeline_registry.tree_index import TreeStore

# The folder of the parse cache inside the data folder's cache (`<data dir>/cache/parses`).
PARSES_DIR = "parses"
TREES_DIR = "trees"
_TREES = TreeStore(None)


def clear_all_caches() -> None:
    """Empty every digest cache of the process (benchmarks and tests use it to act as a new process)."""
    for digest_cache in cache.all_caches():
        digest_cache.clear()
    store = cache.disk()
    if store is not None:
        store.forget_loaded()
    _TREES.forget()


def tree_store() -> TreeStore:
    """Facts of whole trees by tree id (`tree_index`): in memory, and next to the parses on disk."""
    return _TREES


def use_disk_cache(folder: Path | None) -> None:
    """Keep parses in `folder` across processes (None: memory only). The CLI and the service
    pass `<data dir>/cache/parses`, so both share one cache."""
    global _TREES
    current = cache.disk()
    if current is not None and folder is not None and current.folder == Path(folder):
        return
    store = DiskCache(Path(folder)) if folder is not None else None
    cache.set_disk(store)
    _TREES = TreeStore(store.dir / TREES_DIR if store is not None else None)


def flush_disk_cache() -> None:
    """Write the parses made since the last flush (planning calls it when a plan is done)."""
    store = cache.disk()
    if store is not None:
        store.flush()
