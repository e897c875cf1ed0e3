"""Running untrusted repository code in an isolated subprocess.

Compiling a pipeline imports the pull request's Python, and running it locally executes its
components. Both happen here: a separate process group, a scrubbed environment that carries
none of the bot's secrets (only what Python and git need), a private HOME and TMPDIR, an
address-space limit and a wall-clock limit after which the whole process group is killed.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from pipeline_registry.errors import KfpBotError

# Variables a Python process legitimately needs; everything else (tokens, keys, KFP_BOT_*,
# GOOGLE_*, GITHUB_*, cloud credentials) is dropped.
_PASSTHROUGH = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE",
                "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_CONSTRAINT",
                "PIP_CONFIG_FILE", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


class SandboxError(KfpBotError):
    """The isolated process could not be started, ran out of time, or ran out of memory."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed process."""

    timeout_seconds: float = 300.0
    memory_mb: int | None = 4096


@dataclass(frozen=True)
class SandboxResult:
    """What a sandboxed process did: exit status and captured output."""

    returncode: int
    stdout: str
    stderr: str
    timed_out: bool = False
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and not self.cancelled

    def tail(self, lines: int = 15) -> str:
        """The last lines of stderr (or stdout), for error messages."""
        text = self.stderr.strip() or self.stdout.strip()
        return "\n".join(text.splitlines()[-lines:])


def scrubbed_env(home: Path, extra: Mapping[str, str] | None = None,
                 environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment with none of the caller's secrets: allow-listed variables only."""
    source = os.environ if environ is None else environ
    env = {k: source[k] for k in _PASSTHROUGH if k in source}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update({
        "HOME": str(home),
        "TMPDIR": str(home),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "PYTHONUNBUFFERED": "1",
        "NO_COLOR": "1",
    })
    if extra:
        env.update(extra)
    return env


def run_isolated(
    argv: Sequence[str],
    *,
    cwd: Path,
    limits: Limits,
    env: Mapping[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
    cancel: threading.Event | None = None,
) -> SandboxResult:
    """Run `argv` in `cwd` under `limits`, in its own session, with a scrubbed environment.

    `on_line` receives stdout lines as they arrive (progress reporting); stderr is captured.
    A timeout kills the whole process group and is reported as `timed_out`, not raised; so
    does setting `cancel`, reported as `cancelled`.
    """
    with tempfile.TemporaryDirectory(prefix="kfp-bot-sandbox-") as home:
        full_env = scrubbed_env(Path(home), extra=env)
        try:
            proc = subprocess.Popen(
                list(argv), cwd=str(cwd), env=full_env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
                start_new_session=True, preexec_fn=_limiter(limits),
            )
        except OSError as exc:
            raise SandboxError(f"could not start {argv[0]}: {exc.strerror or exc}") from None
        return _collect(proc, limits, on_line, cancel)


def _collect(proc: subprocess.Popen[str], limits: Limits, on_line: Callable[[str], None] | None,
             cancel: threading.Event | None) -> SandboxResult:
    out_lines: list[str] = []
    err_chunks: list[str] = []

    def read_stdout() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            out_lines.append(line)
            if on_line is not None:
                try:
                    on_line(line.rstrip("\n"))
                except Exception:  # a progress printer must never kill the run it reports
                    pass

    def read_stderr() -> None:
        assert proc.stderr is not None
        err_chunks.append(proc.stderr.read())

    readers = [threading.Thread(target=read_stdout, daemon=True),
               threading.Thread(target=read_stderr, daemon=True)]
    for t in readers:
        t.start()
    timed_out = cancelled = False
    deadline = time.monotonic() + limits.timeout_seconds
    while proc.poll() is None:
        if cancel is not None and cancel.is_set():
            cancelled = True
        elif time.monotonic() >= deadline:
            timed_out = True
        else:
            try:
                proc.wait(timeout=min(0.2, max(deadline - time.monotonic(), 0.01)))
            except subprocess.TimeoutExpired:
                pass
            continue
        _kill_group(proc)
        proc.wait()
    for t in readers:
        t.join(timeout=5)
    return SandboxResult(returncode=proc.returncode, stdout="".join(out_lines),
                         stderr="".join(err_chunks), timed_out=timed_out, cancelled=cancelled)


def _kill_group(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _limiter(limits: Limits) -> Callable[[], None] | None:
    if limits.memory_mb is None:
        return None
    max_bytes = limits.memory_mb * 1024 * 1024

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))

    return apply
