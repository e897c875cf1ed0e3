"""How long a local run's files are kept: its folder (kfp.local's outputs and artifacts) and its log.

A local run's results are read into the store when it ends (`local_results`), so afterwards its
folder is only for people looking at what it wrote, and its log for the run's page. Both grow
with every run, and on a long-lived embedded bot they would fill the data folder. The files of a
run are removed once nothing was written to them for `keep` (KFP_BOT_RUN_FILES_KEEP_DAYS); the
run itself, its state, results and timeline stay in the store, and its page says the log is gone.

Pruning is done by the local runner when a run starts, at most once per `every`, and never
touches a run this process is running.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

LOG_SUFFIX = ".log"


@dataclass
class RunFilesRetention:
    """Removes the files of local runs in `runs_dir` not written to for `keep` (None: keep them)."""

    runs_dir: Path
    keep: timedelta | None
    every: timedelta = timedelta(hours=1)
    _last: float | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def maybe_prune(self, active: Collection[str]) -> list[str]:
        """`prune` unless it ran less than `every` ago here (or another run is pruning now)."""
        if self.keep is None or not self._lock.acquire(blocking=False):
            return []
        try:
            now = time.time()
            if self._last is not None and now - self._last < self.every.total_seconds():
                return []
            self._last = now
            return self.prune(active, now=now)
        finally:
            self._lock.release()

    def prune(self, active: Collection[str], *, now: float | None = None) -> list[str]:
        """Remove the folder and log of every run older than `keep` and not in `active`; the run
        ids whose files were removed."""
        if self.keep is None:
            return []
        cutoff = (time.time() if now is None else now) - self.keep.total_seconds()
        newest: dict[str, float] = {}
        try:
            entries = list(os.scandir(self.runs_dir))
        except FileNotFoundError:
            return []
        for entry in entries:
            run_id = entry.name.removesuffix(LOG_SUFFIX) if entry.is_file() else entry.name
            try:
                written = entry.stat(follow_symlinks=False).st_mtime
            except FileNotFoundError:
                continue
            newest[run_id] = max(newest.get(run_id, 0.0), written)
        removed = []
        for run_id, written in sorted(newest.items()):
            if written >= cutoff or run_id in active:
                continue
            shutil.rmtree(self.runs_dir / run_id, ignore_errors=True)
            (self.runs_dir / f"{run_id}{LOG_SUFFIX}").unlink(missing_ok=True)
            removed.append(run_id)
        return removed
