"""The bot process of `benchmarks/burst.py`: `kfp-bot serve` with a recording local runner.

`python -m benchmarks.burst_bot PORT_FILE ENDS_FILE RUN_SECONDS` serves the app on 127.0.0.1
(an ephemeral port, written to PORT_FILE) with settings from the environment (KFP_BOT_*),
on the server and wiring `kfp-bot serve` uses (`bot.server`: gunicorn, web workers and a
processing worker),
except the runner:
each run "runs" for RUN_SECONDS and appends its id and end time to ENDS_FILE, so that the driver
can measure the gap between a run's end and its stored state, and count executions. Builds are
skipped (no container engine) and compiles are real.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bot.config import load_settings
from bot.server import BotServer
from handlers.context import HandlerContext
from handlers.ports.run import CollectedResults, RunRequest, RunSubmission
from handlers.run_models import Run, RunState


class RecordingRunner:
    """A `Runner` whose runs take `seconds` and succeed; records every execution's end."""

    def __init__(self, ends: Path, seconds: float) -> None:
        self._ends = ends
        self._seconds = seconds
        self._lock = threading.Lock()

    def submit_run(self, request: RunRequest) -> RunSubmission:
        time.sleep(self._seconds)
        with self._lock, self._ends.open("a") as out:
            out.write(json.dumps({"run": request.run.id, "end": time.time()}) + "\n")
        return RunSubmission(RunState.SUCCEEDED, detail="recorded")

    def run_status(self, run: Run) -> RunSubmission | None:
        return None

    def run_results(self, run: Run) -> CollectedResults | None:
        """A recorded run produces nothing."""
        return None

    def cancel_run(self, run: Run) -> None:
        """Nothing to cancel: a recorded run ends by itself."""


class BurstServer(BotServer):
    """`kfp-bot serve`'s gunicorn server, with the recording runner and the port written down."""

    def __init__(self, port_file: Path, runner: RecordingRunner) -> None:
        self.port_file = port_file
        self.runner = runner
        super().__init__(load_settings(), "127.0.0.1", 0)

    def override(self, context: HandlerContext) -> HandlerContext:
        """The handler context `build_services` wires, with the recording runner."""
        return replace(context, runner=self.runner)

    def _announce(self, arbiter: Any) -> None:
        super()._announce(arbiter)
        self.port_file.write_text(str(arbiter.LISTENERS[0].sock.getsockname()[1]))


def main() -> int:
    port_file, ends_file, seconds = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
    BurstServer(port_file, RecordingRunner(ends_file, seconds)).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
