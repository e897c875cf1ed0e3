"""Starting one sandboxed step, watching its time, streaming its output, and ending its process tree.

The launcher (bubblewrap, or the process itself when isolation is explicitly waived) is started
with an EMPTY environment: inside the sandbox /proc/1/environ is the launcher's, so it must not
carry the bot's secrets. It runs in its own session; at the end of the step (exit, time limit,
cancel) its process group is killed, which takes the sandbox's PID namespace and everything in
it down with it (`--die-with-parent` covers the bot itself dying).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from deploy.sandbox.limits import PidsCgroup, child_setup
from deploy.sandbox.output import BoundedStream, pump
from kfp_bot_errors import KfpBotError


class SandboxError(KfpBotError):
    """The isolated process could not be started."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed step (time and memory come from the repository's
    configuration, capped by the bot; processes and output from the bot's settings)."""

    timeout_seconds: float = 300.0
    memory_mb: int | None = 4096
    max_processes: int = 512
    output_kb: int = 1024


@dataclass(frozen=True)
class SandboxResult:
    """What a sandboxed process did: exit status and captured output (head and tail of each stream)."""

    returncode: int
    stdout: str
    stderr: str
    timed_out: bool = False
    cancelled: bool = False
    dropped_bytes: int = 0

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and not self.cancelled

    def tail(self, lines: int = 15) -> str:
        """The last lines of stderr (or stdout), for error messages."""
        text = self.stderr.strip() or self.stdout.strip()
        return "\n".join(text.splitlines()[-lines:])


def launch(command: Sequence[str], *, cwd: Path, env: Mapping[str, str], limits: Limits,
           cgroup: PidsCgroup | None, on_line: Callable[[str], None] | None,
           cancel: threading.Event | None, limit_in_child: bool = False,
           on_stderr: Callable[[bytes], None] | None = None, stdin: int | None = None) -> SandboxResult:
    """Run `command` to its end (or its limit) and return its bounded output. `limit_in_child`
    applies memory and cgroup in a preexec function (only without bubblewrap, whose shim does it);
    `on_stderr` sees stderr's chunks as they arrive (a run's log file); `stdin` is a pipe's read
    end the step reads its work from (the caller keeps and closes it), else it reads nothing."""
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    try:
        proc = subprocess.Popen(list(command), cwd=str(cwd), env=dict(env),
                                stdin=subprocess.DEVNULL if stdin is None else stdin,
                                stdout=out_write, stderr=err_write, start_new_session=True, close_fds=True,
                                preexec_fn=child_setup(limits.memory_mb, cgroup) if limit_in_child else None)
    except OSError as exc:
        for fd in (out_read, out_write, err_read, err_write):
            os.close(fd)
        raise SandboxError(f"could not start {command[0]}: {exc.strerror or exc}") from None
    os.close(out_write)
    os.close(err_write)
    bound = limits.output_kb * 1024
    stdout, stderr = BoundedStream(bound, on_line), BoundedStream(bound, sink=on_stderr)
    readers = [threading.Thread(target=pump, args=(out_read, stdout), daemon=True),
               threading.Thread(target=pump, args=(err_read, stderr), daemon=True)]
    for reader in readers:
        reader.start()
    timed_out = cancelled = False
    pidfd = _pidfd(proc.pid)
    deadline = time.monotonic() + limits.timeout_seconds
    try:
        while proc.poll() is None:
            if cancel is not None and cancel.is_set():
                cancelled = True
                break
            if time.monotonic() >= deadline:
                timed_out = True
                break
            _wait(proc, pidfd, min(0.1, max(deadline - time.monotonic(), 0.01)))
    finally:
        if pidfd is not None:
            os.close(pidfd)
        end_tree(proc, cgroup)
    for reader in readers:
        reader.join(timeout=10)
    return SandboxResult(returncode=proc.returncode, stdout=stdout.text(), stderr=stderr.text(),
                         timed_out=timed_out, cancelled=cancelled, dropped_bytes=stdout.dropped + stderr.dropped)


def _pidfd(pid: int) -> int | None:
    """A file descriptor that becomes readable when `pid` ends (None where the kernel has none)."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _wait(proc: subprocess.Popen[bytes], pidfd: int | None, seconds: float) -> None:
    """Wait up to `seconds` for `proc` to end. With a pidfd the wait ends the moment it does
    (`Popen.wait` with a timeout polls, up to 50 ms late, which every compile would pay)."""
    if pidfd is not None:
        select.select([pidfd], [], [], seconds)
        return
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        pass


def end_tree(proc: subprocess.Popen[bytes], cgroup: PidsCgroup | None) -> None:
    """Kill the launcher's process group (bubblewrap's PID namespace dies with it) and the cgroup."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()
    if cgroup is not None:
        cgroup.close()
