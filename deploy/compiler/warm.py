"""Sandboxed batch drivers started before their work is known, so `import kfp` overlaps the bot's work.

A compile's wall time was mostly serial: the bot planned, copied the tree and resolved images,
and only then started the sandboxed interpreter, which spent half a second importing kfp. A
`Driver` is started as soon as its compile environment is known or can be guessed, and imports kfp
while the bot does the rest; `compile_pipelines` hands it its jobs when they are ready (one line on
its stdin) and reads its outcomes. The guess is what the last compile of the repository used
(`remember`, `remembered`): `kfp-bot check` starts those drivers before it reads its settings, the
service when a pull request's new head arrives (the bot's own kfp 2 when nothing is remembered).

A driver carries nothing from one repository's code to another's: before it receives work it has
imported only the standard library and kfp (`batch_driver.py` reads its jobs after that), and it
compiles exactly one batch, then ends. Whoever starts one owns it: `close` (or the idle deadline of
a `DriverPool`) ends its process tree, and the sandbox's `--die-with-parent` covers the bot dying.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from deploy.sandbox import Sandbox, SandboxResult
from kfp_bot_errors import KfpBotError

DRIVER = Path(__file__).with_name("driver.py")
BATCH_DRIVER = Path(__file__).with_name("batch_driver.py")
BATCH_DRIVER_NAME = "kfp_bot_batch_driver.py"
PROTOCOL = "kfp-bot-batch"
HINTS_DIR = "drivers"  # under the cache folder: which drivers the last compile of a repository used
MAX_GUESSES = 2


@dataclass(frozen=True)
class DriverKey:
    """What a driver is started with and cannot change later: the interpreter (its environment
    folder mounted read-only; None for the bot's own Python), the variables of `compile.env`, and
    the address-space cap of `compile.memory_mb`."""

    python: str
    environment: Path | None
    env: tuple[tuple[str, str], ...] = ()
    memory_mb: int | None = None


class Driver:
    """One sandboxed `batch_driver.py --wait`, started now in a thread of its own; it compiles the
    one batch `submit` gives it. Its protocol lines go to the listener set by `submit` (earlier
    ones are replayed), or are kept until then."""

    def __init__(self, key: DriverKey, *, sandbox: Sandbox, seconds: float, writable: Sequence[Path] = ()) -> None:
        self.key, self.sandbox = key, sandbox
        self.writable = tuple(Path(p) for p in writable)
        self.deadline = time.monotonic() + seconds
        self._tmp = tempfile.TemporaryDirectory(prefix="kfp-bot-driver-", ignore_cleanup_errors=True)
        self.work = Path(self._tmp.name)  # jobs, outcomes, and a scratch copy of the tree when none is shared
        (self.work / "driver").mkdir()
        shutil.copyfile(DRIVER, self.work / "driver" / "kfp_bot_compile_driver.py")
        shutil.copyfile(BATCH_DRIVER, self.work / "driver" / BATCH_DRIVER_NAME)
        self.cancel = threading.Event()
        self.ready = threading.Event()
        self.result: SandboxResult | None = None
        self.error: KfpBotError | None = None
        self.submitted = False
        self._lock = threading.Lock()
        self._lines: list[str | None] = []
        self._listener: Callable[[str | None], None] | None = None
        self._read, self._write = os.pipe()
        self._thread = threading.Thread(target=self._run, args=(seconds,), daemon=True, name="kfp-bot-driver")
        self._thread.start()

    def _run(self, seconds: float) -> None:
        read_only = [self.key.environment] if self.key.environment is not None else []
        try:
            self.result = self.sandbox.run(
                [self.key.python, str(self.work / "driver" / BATCH_DRIVER_NAME), "--wait"], cwd=self.work,
                limits=self.sandbox.limits(seconds, self.key.memory_mb), writable=[self.work, *self.writable],
                read_only=read_only, env=dict(self.key.env), on_line=self._line, cancel=self.cancel,
                stdin=self._read)
        except KfpBotError as exc:  # no sandbox, or bubblewrap did not start: the batch names it
            self.error = exc
        finally:
            os.close(self._read)
            self._line(None)

    def _line(self, line: str | None) -> None:
        """A protocol line, or None once the driver ended."""
        if line is not None and line.split()[:2] == [PROTOCOL, "ready"]:
            self.ready.set()
        with self._lock:  # in order, each line once, replayed or not
            if self._listener is None:
                self._lines.append(line)
            else:
                self._listener(line)

    @property
    def alive(self) -> bool:
        """Whether the driver still runs and has no work yet."""
        return self._thread.is_alive() and not self.submitted and not self.cancel.is_set()

    def submit(self, jobs_file: Path, listener: Callable[[str | None], None]) -> None:
        """Give the driver its one batch; `listener` gets its lines from its start on (earlier ones
        replayed), then None when it ended."""
        self.submitted = True
        with self._lock:
            for line in self._lines:
                listener(line)
            self._lines, self._listener = [], listener
        with contextlib.suppress(OSError):  # a driver that died already reads nothing
            os.write(self._write, f"{jobs_file}\n".encode())
        self._close_input()

    def wait(self) -> SandboxResult:
        """Wait for the driver's end; its result (the error that kept it from starting is raised)."""
        self._thread.join()
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result

    def _close_input(self) -> None:
        if self._write >= 0:
            os.close(self._write)
            self._write = -1

    def close(self) -> None:
        """End the driver (unused, it stops at once) and remove its folder."""
        self._close_input()
        if not self.submitted:
            self.cancel.set()
        self._thread.join()
        self._tmp.cleanup()


class DriverPool:
    """Drivers started ahead of their work, handed out once each to the compile they fit; a
    driver nobody takes ends at its idle deadline or when the pool closes."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self._drivers: list[Driver] = []
        self._lock = threading.Lock()

    def start(self, key: DriverKey, *, seconds: float, writable: Iterable[Path] = (),
              idle_seconds: float | None = None) -> None:
        """Start a driver for `key` unless an unused one is already waiting; one nobody takes
        within `idle_seconds` is ended then."""
        with self._lock:
            self._prune()
            if any(d.key == key and d.alive for d in self._drivers):
                return
            driver = Driver(key, sandbox=self.sandbox, seconds=seconds, writable=list(writable))
            self._drivers.append(driver)
        if idle_seconds is not None:
            timer = threading.Timer(idle_seconds, self._expire, args=(driver,))
            timer.daemon = True
            timer.start()

    def waiting(self) -> bool:
        """Whether any driver waits for work."""
        with self._lock:
            return any(d.alive for d in self._drivers)

    def _expire(self, driver: Driver) -> None:
        with self._lock:
            if driver not in self._drivers:
                return  # taken: its compile owns it now
            self._drivers.remove(driver)
        driver.close()

    def take(self, key: DriverKey, *, seconds: float, scratch: Path | None) -> Driver | None:
        """An unused driver for `key` that lives at least `seconds` more and may write `scratch`
        (None: the batch copies the tree into the driver's own folder); the caller owns it."""
        with self._lock:
            self._prune()
            for driver in self._drivers:
                if (driver.key == key and driver.alive and driver.deadline - time.monotonic() >= seconds
                        and (scratch is None or scratch in driver.writable)):
                    self._drivers.remove(driver)
                    return driver
        return None

    def _prune(self) -> None:
        for driver in [d for d in self._drivers if not d.alive]:
            self._drivers.remove(driver)
            driver.close()

    def close(self) -> None:
        """End every driver nobody took."""
        with self._lock:
            drivers, self._drivers = self._drivers, []
        for driver in drivers:
            driver.close()


def hints_key(repo_dir: Path) -> str:
    """What the drivers of a compile of a working tree are remembered under (`kfp-bot check`): its
    resolved location. The service remembers them under the repository's full name instead, since
    each head it compiles is checked out in a folder of its own."""
    return str(Path(repo_dir).resolve())


def remember(cache_dir: Path, key: str, sandbox: Sandbox, starts: Mapping[DriverKey, float]) -> None:
    """Note which drivers (and for how long, in which sandbox) the last compile of the repository
    known as `key` (`hints_key`, or a repository's full name) used, for `remembered`."""
    items = [{"python": driver.python, "environment": str(driver.environment) if driver.environment else None,
              "env": [list(pair) for pair in driver.env], "memory_mb": driver.memory_mb, "seconds": seconds}
             for driver, seconds in starts.items()]
    limits = {"max_processes": sandbox.max_processes, "output_kb": sandbox.output_kb}
    path = _hints(cache_dir, key)
    with contextlib.suppress(OSError):  # a hint is only ever a head start
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.partial")
        partial.write_text(json.dumps({"sandbox": limits, "drivers": items[:MAX_GUESSES]}), encoding="utf-8")
        os.replace(partial, path)


@dataclass(frozen=True)
class Remembered:
    """What the last compile of a repository used: its sandbox's limits, and the drivers (with
    how long each may live) whose interpreter the bot knows (`_known_interpreter`)."""

    max_processes: int
    output_kb: int
    drivers: tuple[tuple[DriverKey, float], ...]


def remembered(cache_dir: Path, key: str) -> Remembered | None:
    """The drivers `remember` noted under `key`, at most MAX_GUESSES, each the bot's own Python or
    the interpreter of an environment already in `<cache_dir>/envs` (none is ever built for a
    guess); None when nothing (readable) is remembered."""
    try:
        hints = json.loads(_hints(cache_dir, key).read_text(encoding="utf-8"))
        max_processes, output_kb = int(hints["sandbox"]["max_processes"]), int(hints["sandbox"]["output_kb"])
        items = list(hints["drivers"])[:MAX_GUESSES]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    drivers = []
    for item in items:
        try:
            driver = DriverKey(python=str(item["python"]),
                               environment=Path(item["environment"]) if item["environment"] else None,
                               env=tuple((str(name), str(value)) for name, value in item["env"]),
                               memory_mb=None if item["memory_mb"] is None else int(item["memory_mb"]))
            seconds = float(item["seconds"])
        except (KeyError, TypeError, ValueError):
            continue
        if _known_interpreter(driver, Path(cache_dir)):
            drivers.append((driver, seconds))
    return Remembered(max_processes, output_kb, tuple(drivers))


def start_remembered(cache_dir: Path, repo_dir: Path, *, allow_unsandboxed: bool,
                     writable: Sequence[Path]) -> DriverPool | None:
    """Start the drivers the last compile of `repo_dir` used, in a pool of the sandbox it used,
    before the settings are loaded or the repository is read (they load while kfp is imported).
    It is a guess: where it was wrong (other settings, another compile environment) the compile
    starts the driver it needs, and closing the pool ends the unused ones. Only the bot's own
    Python or a cached environment's interpreter is ever started; None when nothing is remembered."""
    hints = remembered(cache_dir, hints_key(repo_dir))
    if hints is None:
        return None
    pool = DriverPool(Sandbox(allow_unsandboxed=allow_unsandboxed, max_processes=hints.max_processes,
                              output_kb=hints.output_kb))
    for driver, seconds in hints.drivers:
        pool.start(driver, seconds=seconds, writable=writable)
    return pool


def _known_interpreter(key: DriverKey, cache_dir: Path) -> bool:
    if key.environment is None:
        return key.python == sys.executable
    return (key.environment.parent == cache_dir / "envs" and Path(key.python) == key.environment / "bin" / "python"
            and os.path.exists(key.python))


def _hints(cache_dir: Path, key: str) -> Path:
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return Path(cache_dir) / HINTS_DIR / f"{digest}.json"
