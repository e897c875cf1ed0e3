"""Packages compiled ahead, in one batch, for the pipelines whose own compile comes a moment later.

The service compiles each run when its images are built, one event per run; the runs of one pull
request (or of a `/run all`) reach that step one after another, at the same commit. So the first
of them compiles its siblings too, in the same sandboxed driver (`compile_pipelines`), and leaves
their outcomes here; each sibling's own compile then takes its package (or its error) instead of
starting an interpreter again. A sibling whose compile comes while the batch is still running
waits for it. An entry is keyed by everything that decides the compile (checkout, pipeline,
images, configuration), is taken once, and expires after `ttl_seconds`: what is never taken (the
run was cancelled) costs a file until then.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from deploy.compiler.package import CompiledPipeline
from kfp_bot_errors import KfpBotError
from pipeline_registry.config_rules import plain
from pipeline_registry.repo_config import RepoConfig

Outcome = CompiledPipeline | KfpBotError


def ahead_key(repo_dir: Path, pipeline: str, images: Mapping[str, str], config: RepoConfig) -> str:
    """What decides a compile's outcome, as one string: the checkout (trees are per commit), the
    pipeline, its images and the (trusted) configuration."""
    text = json.dumps([str(Path(repo_dir).resolve()), pipeline, sorted(images.items()),
                       plain(config)], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class CompiledAhead:
    """Outcomes of batch compiles, waiting for their pipelines' own compile (thread-safe)."""

    def __init__(self, ttl_seconds: float = 600.0) -> None:
        self.ttl_seconds = ttl_seconds
        self._lock = threading.Lock()
        self._ready: dict[str, tuple[float, Outcome]] = {}
        self._pending: dict[str, threading.Event] = {}
        self._folders: dict[Path, float] = {}
        self._busy: set[Path] = set()

    def batch_folder(self) -> Path:
        """A fresh folder for one batch's packages, kept while the batch runs (until `release`)
        and then until its entries are taken or expired."""
        folder = Path(tempfile.mkdtemp(prefix="kfp-bot-ahead-"))
        with self._lock:
            self._folders[folder] = time.monotonic()
            self._busy.add(folder)
        return folder

    def release(self, folder: Path) -> None:
        """The batch writing into `folder` is over, and its own package was copied out."""
        with self._lock:
            self._busy.discard(folder)

    def claim(self, keys: Iterable[str]) -> list[str]:
        """The keys that nobody has compiled or is compiling: the caller now compiles them and must
        `settle` each (with an outcome, or None when it could not)."""
        claimed = []
        with self._lock:
            self._expire()
            for key in keys:
                if key not in self._ready and key not in self._pending:
                    self._pending[key] = threading.Event()
                    claimed.append(key)
        return claimed

    def settle(self, key: str, outcome: Outcome | None) -> None:
        """Record a claimed key's outcome (None: nothing to offer; the pipeline compiles itself)."""
        with self._lock:
            done = self._pending.pop(key, None)
            if outcome is not None:
                self._ready[key] = (time.monotonic(), outcome)
        if done is not None:
            done.set()

    def take(self, key: str, out_dir: Path, wait_seconds: float) -> Outcome | None:
        """The outcome compiled ahead for `key`, its package copied into `out_dir`; waits up to
        `wait_seconds` for a batch still compiling it; None when there is none."""
        with self._lock:
            pending = self._pending.get(key)
        if pending is not None:
            pending.wait(wait_seconds)
        with self._lock:
            entry = self._ready.pop(key, None)
        if entry is None:
            return None
        return delivered(entry[1], out_dir)

    def _expire(self) -> None:
        limit = time.monotonic() - self.ttl_seconds
        for key in [k for k, (at, _) in self._ready.items() if at < limit]:
            del self._ready[key]
        if self._pending:
            return  # a batch is writing into one of the folders
        # A batch of one pipeline claims no key, yet writes into its folder until it is released.
        used = {o.package_path.parent for _, o in self._ready.values() if isinstance(o, CompiledPipeline)}
        for folder in [f for f in self._folders if f not in used and f not in self._busy]:
            shutil.rmtree(folder, ignore_errors=True)
            del self._folders[folder]


def compile_ahead(ahead: CompiledAhead, name: str, siblings: Iterable[str], *, key: Callable[[str], str],
                  out_dir: Path, batch: Callable[[list[str], Path], dict[str, Outcome]]) -> Outcome:
    """`name`'s outcome, compiled by `batch` together with the `siblings` nobody compiles yet;
    their outcomes are kept in `ahead` for their own compile. `name`'s package lands in `out_dir`."""
    keys = {sibling: key(sibling) for sibling in siblings if sibling != name}
    claimed = set(ahead.claim(keys.values()))
    others = [sibling for sibling, k in keys.items() if k in claimed]
    folder = ahead.batch_folder()
    try:
        try:
            outcomes = batch([name, *others], folder)
        except BaseException:
            for sibling in others:
                ahead.settle(keys[sibling], None)
            raise
        for sibling in others:
            ahead.settle(keys[sibling], outcomes.get(sibling))
        return delivered(outcomes[name], out_dir)
    finally:
        ahead.release(folder)


def delivered(outcome: Outcome, out_dir: Path) -> Outcome:
    """The outcome with its package copied into `out_dir` (where the caller asked for it)."""
    if isinstance(outcome, KfpBotError):
        return outcome
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    target = Path(out_dir) / outcome.package_path.name
    shutil.copyfile(outcome.package_path, target)
    return dataclasses.replace(outcome, package_path=target)
