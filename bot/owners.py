"""Who owns outbox rows: owner ids, and whether an owner on this machine is still running.

A row's lease says when its owner last promised to be alive; a process that is merely slow to
renew (a loaded machine, a long pause) would lose its rows once the lease runs out, and its
step would run a second time elsewhere. On one machine the truth is at hand: an owner id names
its host, process id and the process's start time, and `alive_here` asks the operating system
whether that very process still runs. Owners on other machines (several instances on
PostgreSQL) are judged by their leases alone.
"""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

_PROC = Path("/proc")


def new_owner_id() -> str:
    """A name for this instance's claims: `host:pid:start:random` (pids are reused; the start
    time tells a process from a later one with the same pid; the random part tells two buses of
    one process apart)."""
    return f"{socket.gethostname()}:{os.getpid()}:{_start_time(os.getpid()) or '-'}:{uuid.uuid4().hex[:8]}"


def alive_here(owner: str) -> bool:
    """True when `owner` is another process of this machine that is still running.

    False for anything it cannot tell: another host, this very process (its stopped buses leave
    rows behind in tests and restarts within the process), an id of another shape, a system
    without /proc, or a process that ended (a zombie too).
    """
    parts = owner.split(":")
    if len(parts) != 4 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid() or parts[2] == "-":
        return False
    return _start_time(pid) == parts[2]


def _start_time(pid: int) -> str | None:
    """The start time of process `pid` (clock ticks since boot, /proc/<pid>/stat field 22), None
    when it does not run (or has ended and awaits its parent: a zombie) or cannot be read."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may contain spaces: split after it.
    fields = stat[stat.rfind(")") + 2:].split()
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return fields[19]
