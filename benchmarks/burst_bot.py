"""The bot process of `benchmarks/burst.py`: the embedded service with a recording local runner.

`python -m benchmarks.burst_bot PORT_FILE ENDS_FILE RUN_SECONDS` serves the app on 127.0.0.1
(an ephemeral port, written to PORT_FILE) with settings from the environment (KFP_BOT_*),
wired by `bot.wiring.build_services` exactly as `kfp-bot serve` wires it, except the runner:
each run "runs" for RUN_SECONDS and appends its id and end time to ENDS_FILE, so that the driver
can measure the gap between a run's end and its stored state, and count executions. Builds are
skipped (no container engine) and compiles are real.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from pathlib import Path

from werkzeug.serving import make_server

from bot.app import create_app
from bot.config import load_settings
from bot.wiring import build_services
from handlers.models import Run, RunState
from handlers.ports import RunRequest, RunSubmission


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

    def cancel_run(self, run: Run) -> None:
        """Nothing to cancel: a recorded run ends by itself."""


def main() -> int:
    port_file, ends_file, seconds = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
    settings = load_settings()
    services = build_services(settings)
    assert services.context is not None
    services.context.runner = RecordingRunner(ends_file, seconds)
    app = create_app(settings, services)
    services.start()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    port_file.write_text(str(server.server_port))
    try:
        server.serve_forever()
    finally:
        services.stop(5)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
