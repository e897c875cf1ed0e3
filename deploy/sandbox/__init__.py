"""Running untrusted repository code behind a kernel wall (bubblewrap), with limits.

Compiling a pipeline imports the pull request's Python, building a compile environment runs
its packages' setup code, and running it locally executes its components: every one of those
steps goes through `Sandbox.run`. Behind bubblewrap (see `view`) the step sees no other process,
none of the bot's files or secrets, and no network unless it installs packages; its process tree
ends with the step, and its processes, memory, time and captured output are bounded.

Where bubblewrap or user namespaces are unavailable (a real probe, run once), a `Sandbox` refuses
with `SandboxUnavailable` naming the cause, unless it was built with `allow_unsandboxed=True`:
the service allows that only with the explicitly unsafe KFP_BOT_ALLOW_UNSANDBOXED, the command
line does it for one's own repository after saying so.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from deploy.sandbox.limits import PidsCgroup, cgroup_prefix, limits_shim, needs_cgroup
from deploy.sandbox.process import Limits, SandboxError, SandboxResult, launch
from deploy.sandbox.view import bwrap_command, bwrap_path, pip_paths, python_paths
from kfp_bot_errors import IsolationUnavailable

__all__ = ["Isolation", "Limits", "Sandbox", "SandboxError", "SandboxResult", "SandboxUnavailable",
           "isolation", "run_isolated"]

# What every step gets inside; the step adds its own (never a secret: they are on bwrap's command line).
_BASE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
             "PYTHONNOUSERSITE": "1", "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", "TMPDIR": "/tmp"}
# Passed to pip (and only to pip, which alone gets the network): where the package index is.
_PIP_PASSTHROUGH = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_CONSTRAINT", "PIP_CERT",
                    "PIP_CONFIG_FILE", "PIP_DEFAULT_TIMEOUT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")


class SandboxUnavailable(SandboxError, IsolationUnavailable):
    """Repository code was not executed: there is no isolation and running without it is not allowed."""


@dataclass(frozen=True)
class Isolation:
    """Whether bubblewrap can isolate a step on this machine, and if not, why."""

    available: bool
    reason: str = ""


class _Isolation:
    """`isolation()`: the probe's answer, probed once; callers in other threads meanwhile wait for
    that one probe (`kfp-bot check` starts a driver in a thread while it loads its settings)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._status: Isolation | None = None

    def __call__(self) -> Isolation:
        with self._lock:
            if self._status is None:
                self._status = _probe()
            return self._status

    def cache_clear(self) -> None:
        """Probe again next time (tests that take bubblewrap away)."""
        with self._lock:
            self._status = None


isolation = _Isolation()


def _probe() -> Isolation:
    """Start a real bubblewrap sandbox running the bot's Python."""
    bwrap = bwrap_path()
    if bwrap is None:
        return Isolation(False, "bubblewrap (bwrap) is not installed; install the 'bubblewrap' package")
    with tempfile.TemporaryDirectory(prefix="kfp-bot-probe-") as scratch:
        command = bwrap_command(bwrap, [sys.executable, "-I", "-S", "-c", "import os; print(os.getpid())"],
                                cwd=Path(scratch), writable=[Path(scratch)], read_only=python_paths([]),
                                network=False, env=_BASE_ENV)
        try:
            done = subprocess.run(command, env={}, stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return Isolation(False, f"bubblewrap could not be started: {exc}")
    if done.returncode != 0 or done.stdout.strip() != b"2":
        why = done.stderr.decode("utf-8", errors="replace").strip().splitlines()[-1:] or ["no output"]
        return Isolation(False, f"bubblewrap cannot create a sandbox here ({why[0]}); user namespaces may be "
                                "disabled (kernel.unprivileged_userns_clone, or a container without them)")
    return Isolation(True)


@dataclass(frozen=True)
class Sandbox:
    """How repository code is executed: behind bubblewrap, or, only when allowed, without it.

    `max_processes` and `output_kb` are the bot's own limits (not the repository's)."""

    allow_unsandboxed: bool = False
    max_processes: int = 512
    output_kb: int = 1024

    def limits(self, timeout_seconds: float, memory_mb: int | None) -> Limits:
        """Limits for one step: the step's time and memory, this sandbox's processes and output."""
        return Limits(timeout_seconds=timeout_seconds, memory_mb=memory_mb, max_processes=self.max_processes,
                      output_kb=self.output_kb)

    def check(self) -> Isolation:
        """The isolation this sandbox will use; `SandboxUnavailable` when it has none and may not run without."""
        status = isolation()
        if not status.available and not self.allow_unsandboxed:
            raise SandboxUnavailable(f"repository code was not executed: {status.reason}",
                                     hint="install bubblewrap with user namespaces enabled, or (unsafe, for a "
                                          "single-user machine only) set KFP_BOT_ALLOW_UNSANDBOXED=1")
        return status

    def run(self, argv: Sequence[str], *, cwd: Path, limits: Limits, writable: Sequence[Path] = (),
            read_only: Sequence[Path] = (), network: bool = False, env: Mapping[str, str] | None = None,
            on_line: Callable[[str], None] | None = None, cancel: threading.Event | None = None,
            on_stderr: Callable[[bytes], None] | None = None, stdin: int | None = None) -> SandboxResult:
        """Run `argv` in `cwd` under `limits`; `writable` are the only folders it may write (cwd among
        them), `read_only` what it may read besides the system and Python. `on_line` gets stdout
        lines as they arrive, `on_stderr` stderr's bytes as they arrive, `stdin` (a pipe's read end) what
        it reads; a timeout or `cancel` ends the whole process tree and is reported in the result, not raised."""
        status = self.check()
        step_env = dict(_BASE_ENV)
        step_env["HOME"] = "/tmp"
        if network:
            step_env.update({k: v for k, v in os.environ.items() if k in _PIP_PASSTHROUGH})
        step_env.update(env or {})
        cgroup = PidsCgroup.create(limits.max_processes) if needs_cgroup() else None
        try:
            if not status.available:  # waived: at least a private HOME and TMPDIR, not the shared /tmp
                with tempfile.TemporaryDirectory(prefix="kfp-bot-unsandboxed-") as home:
                    step_env.update({"HOME": home, "TMPDIR": home, **(env or {})})
                    return launch(argv, cwd=cwd, env=step_env, limits=limits, cgroup=cgroup, on_line=on_line,
                                  cancel=cancel, limit_in_child=True, on_stderr=on_stderr, stdin=stdin)
            shim = limits_shim(sys.executable, limits.max_processes, limits.memory_mb)
            visible = [*python_paths([argv[0], sys.executable]), *read_only]
            if network:
                visible += pip_paths(os.environ)
            command = bwrap_command(bwrap_path() or "bwrap", [*shim, *argv], cwd=cwd, writable=list(writable),
                                    read_only=visible, network=network, env=step_env)
            return launch([*cgroup_prefix(cgroup), *command], cwd=cwd, env={}, limits=limits, cgroup=cgroup,
                          on_line=on_line, cancel=cancel, on_stderr=on_stderr, stdin=stdin)
        finally:
            if cgroup is not None:
                cgroup.close()


def run_isolated(argv: Sequence[str], *, cwd: Path, limits: Limits, sandbox: Sandbox | None = None,
                 **options) -> SandboxResult:
    """`Sandbox.run` on the strict default sandbox (for callers that pass no sandbox), with `cwd`
    writable unless `writable` says otherwise."""
    options.setdefault("writable", [cwd])
    return (sandbox or Sandbox()).run(argv, cwd=cwd, limits=limits, **options)


