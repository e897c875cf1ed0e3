"""The sandbox itself: what a step sees, what it may write, its limits, and its bounded output."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from deploy.sandbox import Limits, Sandbox, SandboxUnavailable, isolation
from deploy.sandbox.output import BoundedStream

needs_bwrap = pytest.mark.skipif(not isolation().available, reason=f"no isolation: {isolation().reason}")
SMALL = Limits(timeout_seconds=10, memory_mb=512, max_processes=32, output_kb=8)


def run(tmp_path: Path, code: str, limits: Limits = SMALL, **options):
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    return Sandbox().run([sys.executable, "-c", code], cwd=scratch, limits=limits, writable=[scratch], **options)


@needs_bwrap
def test_no_other_process_and_an_empty_launcher_environment(tmp_path: Path) -> None:
    result = run(tmp_path, "import os; print(sorted(p for p in os.listdir('/proc') if p.isdigit()));"
                           "print(repr(open('/proc/1/environ').read())); print(sorted(os.environ))")

    pids, launcher_env, names = result.stdout.splitlines()
    assert result.ok, result.stderr
    assert pids == "['1', '2']"  # bubblewrap's init and the step: nothing of the bot
    assert launcher_env == "''"
    assert names == str(sorted(["HOME", "LANG", "NO_COLOR", "PATH", "PWD", "PYTHONDONTWRITEBYTECODE",
                                "PYTHONNOUSERSITE", "PYTHONUNBUFFERED", "TMPDIR"]))


@needs_bwrap
def test_only_the_scratch_folder_is_writable_and_the_rest_is_invisible(tmp_path: Path) -> None:
    secret_dir = tmp_path / "data"
    secret_dir.mkdir()
    (secret_dir / "kfp-bot.db").write_text("secret rows")
    result = run(tmp_path, f"""
import os
for path in ({str(secret_dir)!r}, {str(secret_dir / 'kfp-bot.db')!r}, '/etc/shadow', {os.path.expanduser('~')!r} + '/.bashrc'):
    print(path, os.path.exists(path))
for target in ('out.txt', '/usr/evil', '/evil', {str(tmp_path / 'escaped')!r}):
    try:
        open(target, 'w').write('x'); print(target, 'written')
    except OSError as exc:
        print(target, 'refused', exc.errno)
""")

    assert result.ok, result.stderr
    lines = result.stdout.splitlines()
    assert all(line.endswith("False") for line in lines[:4]), lines
    assert lines[4] == "out.txt written"
    assert lines[5:7] == ["/usr/evil refused 30", "/evil refused 30"]  # EROFS
    assert (tmp_path / "scratch" / "out.txt").read_text() == "x"
    assert not (tmp_path / "escaped").exists()  # at most in the sandbox's own /tmp, gone with it


@needs_bwrap
def test_no_network_unless_asked(tmp_path: Path) -> None:
    code = ("import socket\ntry:\n    socket.create_connection(('127.0.0.1', 22), timeout=1)\n    print('connected')\n"
            "except OSError as exc:\n    print('refused', type(exc).__name__)\n"
            "print(sorted(n for _, n in socket.if_nameindex()))")

    result = run(tmp_path, code)

    assert result.stdout.splitlines() == ["refused ConnectionRefusedError", "['lo']"]


@needs_bwrap
def test_processes_are_limited_and_none_survives_the_step(tmp_path: Path) -> None:
    marker = f"kfp-bot-test-marker-{os.getpid()}"
    result = run(tmp_path, f"""
import os, subprocess, time
subprocess.Popen(['setsid', 'sh', '-c', 'exec -a {marker} sleep 600'])
started = 0
try:
    for _ in range(200):
        if os.fork() == 0:
            os.setsid(); time.sleep(600); os._exit(0)
        started += 1
except OSError:
    pass
print(started)
""")

    assert int(result.stdout.strip()) < SMALL.max_processes
    assert not [pid for pid in os.listdir("/proc") if pid.isdigit() and marker in _cmdline(pid)]


@needs_bwrap
def test_time_and_memory_limits(tmp_path: Path) -> None:
    slow = run(tmp_path, "import time; time.sleep(600)", Limits(timeout_seconds=1, memory_mb=512))
    hungry = run(tmp_path, "x = bytearray(10 * 1024 ** 3)", Limits(timeout_seconds=10, memory_mb=256))

    assert slow.timed_out and not slow.ok
    assert "MemoryError" in hungry.stderr and hungry.returncode == 1


@needs_bwrap
def test_output_keeps_a_head_and_a_tail(tmp_path: Path) -> None:
    lines: list[str] = []
    result = run(tmp_path, "import sys\nprint('first')\nsys.stdout.write('x' * 5_000_000 + '\\n')\nprint('last')",
                 on_line=lines.append)

    assert result.stdout.startswith("first\nxxx")
    assert result.stdout.endswith("xxx\nlast\n")
    assert len(result.stdout) < 20 * 1024
    assert result.dropped_bytes == 5_000_000 + len("first\n\nlast\n") - 2 * 8 * 1024
    assert lines == ["first", "last"]  # the cut line is not a protocol line


def test_bounded_stream_counts_what_it_drops() -> None:
    stream = BoundedStream(4)
    for chunk in (b"ab", b"cdef", b"ghij", b"kl"):
        stream.feed(chunk)

    assert stream.text() == "abcd\n[... 4 bytes of output dropped ...]\nijkl"


def test_a_sandbox_without_isolation_refuses_unless_allowed(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on PATH ...
    monkeypatch.setattr("deploy.sandbox.view.os.access", lambda *_: False)  # ... nor in /usr/bin
    isolation.cache_clear()
    try:
        with pytest.raises(SandboxUnavailable) as caught:
            Sandbox().run([sys.executable, "-c", "print(1)"], cwd=tmp_path, limits=SMALL)
        allowed = Sandbox(allow_unsandboxed=True).run([sys.executable, "-c", "print(1)"], cwd=tmp_path,
                                                      limits=SMALL)
    finally:
        isolation.cache_clear()
    assert caught.value.message == ("repository code was not executed: bubblewrap (bwrap) is not installed; "
                                    "install the 'bubblewrap' package")
    assert "KFP_BOT_ALLOW_UNSANDBOXED" in (caught.value.hint or "")
    assert allowed.stdout == "1\n"


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@needs_bwrap
def test_a_command_that_is_not_python_exposes_no_folder_around_the_scratch(tmp_path: Path) -> None:
    (tmp_path / "next-to-scratch.txt").write_text("private")
    scratch = tmp_path / "scratch"
    scratch.mkdir()

    result = Sandbox().run(["sh", "-c", f"ls -a {tmp_path}"], cwd=scratch, limits=SMALL, writable=[scratch])

    assert result.stdout.split() == [".", "..", "scratch"]
