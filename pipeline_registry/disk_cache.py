"""Parses of blobs kept on disk, shared by every process that plans (the CLI and the service).

Layout: `<folder>/<version>/<kind>/<shard>/seg-*.cache`, each segment a `{kind: {blob id: value}}`
of one kind of parse and one shard (the first hex digit of the blob id). A process loads
the segments of a shard once, on its first lookup in it: a warm plan that looks up a few blobs
loads a few shards, never the parses of every file. It writes what it parsed as new segments:
written to a temporary name and renamed into place, so a reader never sees half a file and
concurrent writers never overwrite each other. Past `_MAX_SEGMENTS` segments of a kind a flush
merges them into one (again by rename) and deletes the merged ones; two processes compacting at once
lose nothing but a few entries that are parsed again later; merging keeps the newest `_MAX_ENTRIES`
of each kind, so the folder stays bounded however many revisions are planned. `version` is derived
from the parser code (`pipeline_registry/*.py`) and the Python version, so an upgrade never reads
parses made by other code. Files are written with `marshal` when they hold only Python's core
types (what the digest caches store, encoded as plain tuples: five to ten times faster to write
and to read than pickle), else with `pickle`; a first byte says which. The folder is the bot's own
data folder (created private): these files are only ever read from there.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import pickle
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

_MAX_SEGMENTS = 16
_MAX_ENTRIES = 16_000  # per shard of a kind of parse (16 shards), kept when segments are merged (the newest win)
_PACKAGE = Path(__file__).resolve().parent
SUFFIX = ".cache"
_MARSHAL, _PICKLE = b"M", b"P"


def code_version() -> str:
    """A short id of the parser code and interpreter: parses of other code are never read."""
    digest = hashlib.sha1(repr(sys.version_info[:2]).encode())
    for entry in sorted(os.scandir(_PACKAGE), key=lambda e: e.name):
        if entry.name.endswith(".py"):
            stat = entry.stat()
            digest.update(f"{entry.name}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


class DiskCache:
    """Blob id -> parsed value, per kind of parse, persisted as segments under `folder`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.dir = folder / code_version()
        self._lock = threading.Lock()
        self._loaded: dict[str, dict[str, Any]] = {}
        self._pending: dict[str, dict[str, Any]] = {}
        self.segments_read = 0  # how many segment files this process loaded (tests, benchmarks)
        self._made: set[str] = set()  # shard folders this process created (or found)

    def lookup(self, kind: str, digest: str) -> Any | None:
        """The value stored for `digest`, or None."""
        with self._lock:
            shard = f"{kind}/{digest[:1]}"
            loaded = self._loaded.get(shard)
            if loaded is None:
                loaded = self._loaded[shard] = self._load_shard(kind, shard)
            return loaded.get(digest)

    def add(self, kind: str, digest: str, value: Any) -> None:
        """Remember a new parse; it is written at the next `flush`."""
        with self._lock:  # not added to what was loaded: the caller keeps it in memory (bounded)
            self._pending.setdefault(kind, {})[digest] = value

    def forget_loaded(self) -> None:
        """Drop what was loaded: the next lookup reads the disk again, as a new process would."""
        with self._lock:
            self._loaded = {}

    def flush(self) -> None:
        """Write the pending parses as one new segment (and compact when segments pile up)."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return
        shards: dict[tuple[str, str], dict[str, Any]] = {}
        for kind, values in pending.items():
            for digest, value in values.items():
                shards.setdefault((kind, f"{kind}/{digest[:1]}"), {})[digest] = value
        for (kind, shard), values in shards.items():
            try:
                self._flush_shard(kind, shard, values)
            except OSError:
                pass  # a cache that cannot be written only costs time: the next plan parses again

    def _flush_shard(self, kind: str, shard: str, values: dict[str, Any]) -> None:
        folder = self.dir / shard
        if shard not in self._made:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._made.add(shard)
        try:
            _write_segment(folder, {kind: values})
        except FileNotFoundError:
            self._made.discard(shard)  # removed meanwhile: made again at the next flush
            raise
        segments = _segments(folder)
        if len(segments) > _MAX_SEGMENTS:
            merged: dict[str, dict[str, Any]] = {}
            for path in segments:  # oldest first: the newest entries are kept past the cap
                _merge(merged, _read_segment(path))
            for name, entries in merged.items():
                if len(entries) > _MAX_ENTRIES:
                    merged[name] = dict(list(entries.items())[-_MAX_ENTRIES:])
            _write_segment(folder, merged)
            for path in segments:
                path.unlink(missing_ok=True)

    def _load_shard(self, kind: str, shard: str) -> dict[str, Any]:
        merged: dict[str, dict[str, Any]] = {}
        for path in _segments(self.dir / shard):
            _merge(merged, _read_segment(path))
            self.segments_read += 1
        return merged.get(kind, {})


def _segments(folder: Path) -> list[Path]:
    """The segments, oldest first."""
    found = []
    try:
        for path in folder.iterdir():
            if path.name.startswith("seg-") and path.suffix == SUFFIX:
                try:
                    found.append((path.stat().st_mtime_ns, path.name, path))
                except FileNotFoundError:
                    continue  # merged away meanwhile
    except OSError:
        return []
    return [path for _, _, path in sorted(found)]


def _read_segment(path: Path) -> dict[str, dict[str, Any]]:
    try:
        data = read_cache_file(path)
    except FileNotFoundError:
        return {}  # merged away by another process meanwhile; its entries are in the merged segment
    except Exception:  # noqa: BLE001 - a damaged cache file is skipped, never fatal
        return {}
    return data if isinstance(data, dict) else {}


def _merge(into: dict[str, dict[str, Any]], segment: dict[str, dict[str, Any]]) -> None:
    for kind, values in segment.items():
        if isinstance(values, dict):
            into.setdefault(kind, {}).update(values)


def _write_segment(folder: Path, data: dict[str, dict[str, Any]]) -> None:
    write_cache_file(folder, data)


def read_cache_file(path: Path) -> Any:
    """The value `write_cache_file` wrote to `path` (ValueError for a file in no known format)."""
    data = memoryview(path.read_bytes())
    if data[:1] == _MARSHAL:
        return marshal.loads(data[1:])
    if data[:1] == _PICKLE:
        return pickle.loads(data[1:])
    raise ValueError(f"{path} is not a cache file")


def write_cache_file(folder: Path, value: Any, name: str | None = None) -> None:
    """Write `value` into `folder` as `name` (default: a new segment's name), under a temporary
    name (`tmp-*`) renamed into place: a reader never sees half a file."""
    try:
        data = _MARSHAL + marshal.dumps(value)
    except ValueError:  # not only core types (a validated configuration, the facts of a tree)
        data = _PICKLE + pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    handle = tempfile.NamedTemporaryFile(dir=folder, prefix="tmp-", suffix=SUFFIX, delete=False)
    try:
        with handle:
            handle.write(data)
        os.replace(handle.name, folder / (name or f"seg-{os.getpid()}-{os.path.basename(handle.name)[4:]}"))
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
