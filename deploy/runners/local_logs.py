"""A local run's log: what the sandboxed run wrote to stderr (kfp.local's log and the components'
output), kept in a file beside the run's folder so that the run's page can show it while the run
goes on and after it ended.

The bot writes the file, not the run: the sandbox may write only the run's own folder, and this
file is beside it (`<runs dir>/<run id>.log`). It keeps the first `limit` bytes and then one line
saying how much was not kept, so a pipeline printing gigabytes costs the disk at most the limit.
Readers take the last bytes (`read_tail`), decoded leniently, terminal colours removed.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path

LOG_LIMIT_BYTES = 2 * 1024 * 1024
TAIL_BYTES = 64 * 1024
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def log_path(runs_dir: Path, run_id: str) -> Path | None:
    """Where the log of local run `run_id` is kept; None for an id that is no plain file name
    (the id comes from a URL: it must never reach another folder)."""
    if not _SAFE_ID.fullmatch(run_id):
        return None
    return runs_dir / f"{run_id}.log"


class LogFile:
    """The log of one local run as it is written: chunks appended as they arrive, up to `limit`."""

    def __init__(self, path: Path, limit: int = LOG_LIMIT_BYTES) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Unbuffered: the page reads the file while the run writes it. A new submission of the
        # same run starts a new log.
        self._file = path.open("wb", buffering=0)
        self.limit = limit
        self.written = 0
        self.dropped = 0
        self._lock = threading.Lock()

    def write(self, chunk: bytes) -> None:
        """Append `chunk`, or count it once the limit is reached."""
        with self._lock:
            if self._file.closed:
                return
            room = self.limit - self.written
            kept = chunk[:max(room, 0)]
            if kept:
                self._file.write(kept)
                self.written += len(kept)
            self.dropped += len(chunk) - len(kept)

    def close(self) -> None:
        """End the log, saying how much output was not kept when there was too much."""
        with self._lock:
            if self._file.closed:
                return
            if self.dropped:
                self._file.write(f"\n[... {self.dropped} more bytes of output not kept: the log keeps the "
                                 f"first {self.limit // 1024} KiB ...]\n".encode())
            self._file.close()

    def __enter__(self) -> LogFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclass(frozen=True)
class LogTail:
    """The end of a log: its text, the file's size, and whether earlier bytes were left out."""

    text: str
    size: int
    cut: bool


def read_tail(path: Path, max_bytes: int = TAIL_BYTES) -> LogTail | None:
    """The last `max_bytes` of the log at `path` (from a line start when cut); None without one."""
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, 2)
            start = max(size - max_bytes, 0)
            handle.seek(start)
            data = handle.read(max_bytes)
    except OSError:
        return None
    if start and b"\n" in data:
        data = data[data.index(b"\n") + 1:]
    return LogTail(text=_ANSI.sub("", data.decode("utf-8", errors="replace")), size=size, cut=start > 0)
