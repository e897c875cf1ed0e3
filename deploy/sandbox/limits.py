"""Kernel limits of a sandboxed step: address space, core dumps, and the number of processes.

Behind bubblewrap the limits are set *inside* the sandbox by a tiny exec shim: there RLIMIT_NPROC
counts only the sandbox's own processes (set outside, it would count every process of the bot's
user), and RLIMIT_AS caps memory. No Python runs between fork and exec in the bot (the bot has
gRPC and other threads; only the unsandboxed path uses a preexec function). The kernel does not
apply RLIMIT_NPROC to root, so when the bot runs as root a pids cgroup (v1 or v2, when writable)
caps the step instead: a `sh` wrapper joins it and then becomes bubblewrap.
"""

from __future__ import annotations

import functools
import os
import resource
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path

# Sets the limits then becomes the real command; runs in the sandbox, under the bot's Python.
_LIMITS_SHIM = ("import os,resource as r,sys;n,m=int(sys.argv[1]),int(sys.argv[2]);r.setrlimit(r.RLIMIT_NPROC,(n,n));"
                "r.setrlimit(r.RLIMIT_CORE,(0,0));m and r.setrlimit(r.RLIMIT_AS,(m,m));os.execvp(sys.argv[3],sys.argv[3:])")
# Joins the cgroup named by $0, then becomes the rest of the command line.
_JOIN_CGROUP = 'echo $$ > "$0" && exec env -i "$@"'  # env -i: sh exported PWD


def limits_shim(python: str, max_processes: int, memory_mb: int | None) -> list[str]:
    """The command prefix that applies the limits inside the sandbox before running the step."""
    memory = memory_mb * 1024 * 1024 if memory_mb else 0
    return [python, "-I", "-S", "-c", _LIMITS_SHIM, str(max_processes), str(memory)]


def cgroup_prefix(cgroup: PidsCgroup | None) -> list[str]:
    """The command prefix that puts the launcher into `cgroup` before it starts anything."""
    return ["/bin/sh", "-c", _JOIN_CGROUP, str(cgroup.path / "cgroup.procs")] if cgroup else []


def child_setup(memory_mb: int | None, cgroup: PidsCgroup | None) -> Callable[[], None]:
    """What the forked child does before exec: join the cgroup, cap memory, no core dumps."""
    max_bytes = memory_mb * 1024 * 1024 if memory_mb else None
    procs = str(cgroup.path / "cgroup.procs") if cgroup else None

    def apply() -> None:
        if procs is not None:
            with open(procs, "w") as handle:
                handle.write(str(os.getpid()))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if max_bytes is not None:
            resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))

    return apply


@functools.lru_cache(maxsize=1)
def _pids_root() -> Path | None:
    """The writable pids-controller folder of this process's cgroup, or None."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, relative = line.split(":", 2)
        if "pids" in controllers.split(","):  # cgroup v1
            for mount in mounts:
                fields = mount.split()
                if fields[2] == "cgroup" and "pids" in fields[3].split(","):
                    return _usable(Path(fields[1]) / relative.lstrip("/"))
    for line in lines:
        if line.startswith("0::"):  # cgroup v2, with the pids controller delegated to children
            for mount in mounts:
                fields = mount.split()
                if fields[2] == "cgroup2":
                    base = Path(fields[1]) / line[3:].lstrip("/")
                    try:
                        delegated = "pids" in (base / "cgroup.subtree_control").read_text().split()
                    except OSError:
                        delegated = False
                    if delegated:
                        return _usable(base)
    return None


def _usable(path: Path) -> Path | None:
    return path if path.is_dir() and os.access(path, os.W_OK) else None


class PidsCgroup:
    """A pids cgroup for one step; `close()` kills whatever is left in it and removes it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, max_processes: int) -> PidsCgroup | None:
        """A new cgroup capped at `max_processes`, or None where cgroups cannot be written."""
        root = _pids_root()
        if root is None:
            return None
        path = root / f"kfp-bot-sandbox-{uuid.uuid4().hex[:12]}"
        try:
            path.mkdir()
            (path / "pids.max").write_text(str(max_processes))
        except OSError:
            try:
                path.rmdir()
            except OSError:
                pass
            return None
        return cls(path)

    def close(self) -> None:
        """Kill every process still in the cgroup, then remove it."""
        for attempt in range(60):
            try:
                pids = [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
            except OSError:
                pids = []
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            # A process that just exited is listed until the kernel has reaped it (a millisecond or
            # two): short sleeps first, so that ending a step does not cost a fixed 20 ms.
            time.sleep(min(0.001 * 2 ** attempt, 0.02))
        try:
            self.path.rmdir()
        except OSError:
            pass


def needs_cgroup() -> bool:
    """RLIMIT_NPROC does not bind root; root needs the pids cgroup."""
    return os.geteuid() == 0
