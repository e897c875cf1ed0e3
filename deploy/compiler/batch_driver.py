"""Compile a list of pipeline files in one interpreter; runs INSIDE the sandbox (a fork server).

Starting an interpreter and importing kfp costs about half a second; compiling a pipeline costs
a tenth of that. So this driver imports kfp once, then forks one child per pipeline: each child
starts from the same clean, warm interpreter (a fresh module namespace: nothing one pipeline
imports, patches or breaks is seen by the next) and runs `driver.py`'s compile for its file.
The parent never runs repository code; it watches each child with the pipeline's time budget,
keeps a bounded head and tail of its output, and ends whatever the child left running.

Like `driver.py` this file is copied out of the package (as `kfp_bot_batch_driver.py`, beside
`kfp_bot_compile_driver.py`) and run by the compile environment's own Python, so it imports only
the standard library and keeps to syntax every supported interpreter accepts.

Protocol: the driver is started before its work is known (`--wait`), imports kfp, says
`kfp-bot-batch ready` and reads one line from stdin: the path of a JSON file holding the jobs and
the folder to compile in (end of file instead: it ends, unused). Until then it has run nothing but
the standard library and kfp, so a driver started early (while the bot still plans, copies the
tree and resolves images) carries nothing from any repository; it compiles that one batch and
ends. Each job's outcome is written to its own JSON file as soon as the job ends (so a later crash
loses nothing already done) and announced on stdout as `kfp-bot-batch start <i>` /
`kfp-bot-batch done <i>` lines. The orchestrator (`batch.py`) trusts none of it beyond "which job ran":
every package is found and read on disk. All jobs of a batch come from one repository at one
commit, so a pipeline that fakes these lines or files can only confuse its own repository's check.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import sys
import time

PROTOCOL = "kfp-bot-batch"
SANDBOX_HOSTNAME = "kfp-bot-sandbox"  # set by bubblewrap (deploy/sandbox/view.py)
CHUNK = 64 * 1024


def main(argv: list | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args != ["--wait"]:
        sys.stderr.write("usage: kfp_bot_batch_driver.py --wait  (then the jobs file's path on stdin)\n")
        return 2
    driver_dir = os.path.dirname(os.path.abspath(__file__))
    import kfp_bot_compile_driver as driver  # beside this file (mypy: see pyproject.toml)

    # Repository code must not import the drivers: its imports resolve as `python <file>` would.
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != driver_dir]
    del sys.modules["kfp_bot_compile_driver"]
    _warm()
    _say("ready")
    jobs_file = sys.stdin.readline().strip()  # the one batch this driver will ever compile
    _no_stdin()
    if not jobs_file:  # closed without work: the bot did not need this driver
        os._exit(0)
    with open(jobs_file, encoding="utf-8") as handle:
        batch = json.load(handle)
    os.chdir(batch["root"])  # the repository's scratch copy, made while kfp was being imported
    for job in batch["jobs"]:
        _say(f"start {job['index']}")
        outcome = _run_job(driver, job, batch)
        _write(job["outcome"], outcome)
        _say(f"done {job['index']}")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # tearing down an interpreter that holds kfp takes longer than the compiles


def _no_stdin() -> None:
    """Pipelines read nothing from the bot: stdin becomes /dev/null for every child."""
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)


def _warm() -> None:
    """Import what every compile imports (with kfp 1.x also its kfp.v2 compiler, which the seed's
    files use); a failure here is each job's to report (no-sdk)."""
    names = ["kfp", "kfp.dsl", "kfp.compiler", "kfp.components"]
    for name in names:
        try:
            module = __import__(name)
        except Exception:
            return
        if name == "kfp" and str(getattr(module, "__version__", "2")).split(".")[0] == "1":
            names += ["kfp.v2", "kfp.v2.dsl", "kfp.v2.compiler"]


def _run_job(driver, job: dict, batch: dict) -> dict:
    root = os.getcwd()
    before = _packages(root, batch["suffixes"]) if job["mode"] == "script" else {}
    limit = int(batch["output_bytes"])
    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        _child(driver, job, read_end, write_end)
    os.close(write_end)
    try:
        os.setpgid(pid, pid)
    except OSError:
        pass  # the child did it first, or already ended
    capture = _Capture(limit)
    status, timed_out = _watch(pid, read_end, capture, started + float(batch["budget_seconds"]))
    _end_strays(bool(batch.get("kill_strays")))
    os.close(read_end)
    outcome = {"verdict": _read_json(job["result"]), "output": capture.text(), "timed_out": timed_out,
               "returncode": _returncode(status), "seconds": round(time.monotonic() - started, 3)}
    if job["mode"] == "script" and not timed_out:
        _keep_written(root, before, batch["suffixes"], job["written"])
    return outcome


def _child(driver, job: dict, read_end: int, write_end: int) -> None:
    """In the forked child: own process group, output into the pipe, compile, and never return."""
    code = 70
    try:
        os.setpgid(0, 0)
        os.close(read_end)
        os.dup2(write_end, 1)
        os.dup2(write_end, 2)
        os.close(write_end)
        argv = ["--mode", job["mode"], "--file", job["file"], "--result", job["result"], "--output", job["output"]]
        if job.get("function"):
            argv += ["--function", job["function"]]
        for folder in job.get("python_path", []):
            argv += ["--python-path", folder]
        code = driver.main(argv)
    except BaseException:  # the verdict (or its absence) says what happened
        pass
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _watch(pid: int, fd: int, capture: _Capture, deadline: float) -> tuple:
    """Read the child's output until it ends (or its budget does), then end its process group and
    reap it; returns (wait status, timed out). The child is reaped last, so that its pid, which
    names the group, cannot be reused by an unrelated process before the group is killed.
    Descendants that keep the pipe open do not keep the job going once the child itself ended."""
    ended, eof, timed_out = False, False, False
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = True
            break
        if not ended:
            ended = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        if eof:
            if ended:
                break
            time.sleep(min(remaining, 0.02))
            continue
        ready, _, _ = select.select([fd], [], [], 0 if ended else min(remaining, 0.05))
        if not ready:
            if ended:
                break  # nothing is left to read now
            continue
        chunk = os.read(fd, CHUNK)
        if chunk:
            capture.feed(chunk)
        else:
            eof = True
    _kill_group(pid)
    return os.waitpid(pid, 0)[1], timed_out


def _end_strays(everyone: bool) -> None:
    """Inside the sandbox's own PID namespace only: kill every process but this one (daemons a
    child started in a session of their own)."""
    if everyone and os.getpid() == 2 and os.uname()[1] == SANDBOX_HOSTNAME:
        try:
            os.kill(-1, signal.SIGKILL)  # pid 1 (bubblewrap's init) and this process are spared
        except OSError:
            pass


def _kill_group(pid: int) -> None:
    """The child (not reaped yet) and its process group."""
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _returncode(status) -> int:
    if status is None:
        return -1
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1


class _Capture:
    """The first and last `limit` bytes of a stream, and how many were dropped in between."""

    def __init__(self, limit: int) -> None:
        self.limit = max(limit, 1)
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0

    def feed(self, chunk: bytes) -> None:
        room = self.limit - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        self.tail += chunk
        if len(self.tail) > 2 * self.limit:  # trimmed in bulk: a gigabyte is not copied chunk by chunk
            excess = len(self.tail) - self.limit
            del self.tail[:excess]
            self.dropped += excess

    def text(self) -> str:
        if len(self.tail) > self.limit:
            self.dropped += len(self.tail) - self.limit
            del self.tail[:len(self.tail) - self.limit]
        head = bytes(self.head).decode("utf-8", "replace")
        tail = bytes(self.tail).decode("utf-8", "replace")
        if not self.dropped:
            return head + tail
        return f"{head}\n[... {self.dropped} bytes of output dropped ...]\n{tail}"


def _packages(root: str, suffixes: list) -> dict:
    """Package-like regular files under `root`, with (modification time, size)."""
    found = {}
    for folder, _, names in os.walk(root):
        for name in names:
            if not name.endswith(tuple(suffixes)):
                continue
            path = os.path.join(folder, name)
            try:
                stat = os.lstat(path)
            except OSError:
                continue
            if not os.path.islink(path) and os.path.isfile(path):
                found[os.path.relpath(path, root)] = (stat.st_mtime_ns, stat.st_size)
    return found


def _keep_written(root: str, before: dict, suffixes: list, target: str) -> None:
    """Copy the package files a script wrote (new or changed) under `target`, keeping their paths:
    a later pipeline of the batch may overwrite them in the shared tree."""
    for relative, stamp in _packages(root, suffixes).items():
        if before.get(relative) == stamp:
            continue
        destination = os.path.join(target, relative)
        try:
            os.makedirs(os.path.dirname(destination), exist_ok=True)
            shutil.copyfile(os.path.join(root, relative), destination)
        except OSError:
            continue


def _read_json(path: str):
    try:
        with open(path, encoding="utf-8") as handle:
            value = json.load(handle)
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _write(path: str, value: dict) -> None:
    partial = path + ".partial"
    with open(partial, "w", encoding="utf-8") as handle:
        json.dump(value, handle, default=str)
    os.replace(partial, path)


def _say(line: str) -> None:
    data = (f"{PROTOCOL} {line}\n").encode()
    while data:
        data = data[os.write(1, data):]


if __name__ == "__main__":
    sys.exit(main())
