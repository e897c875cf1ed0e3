"""The bot's own memory while a sandboxed step floods its output: `python -m benchmarks.sandbox_memory`.

Issue #8 measured the old sandbox growing the bot from 89 MB to 938 MB on a pipeline printing
300 MB to stdout and 100 MB to stderr. This runs such steps through `deploy.sandbox` (behind
bubblewrap when available) and reports this process's resident memory before and after, and its
peak (VmHWM), with the time each step took. Not a test: it prints figures for the README.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

from deploy.sandbox import Limits, Sandbox, isolation

FLOOD = """\
import os
chunk = b"x" * (1 << 20) + b"\\n"
for _ in range({out_mb}):
    os.write(1, chunk)
for _ in range({err_mb}):
    os.write(2, chunk)
"""


def _rss_mb() -> tuple[float, float]:
    """Current and peak resident memory of this process, in MB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def measure(out_mb: int, err_mb: int, sandbox: Sandbox) -> str:
    """One flooding step; a line with memory before, after, peak and duration."""
    before, _ = _rss_mb()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kfp-bot-bench-") as scratch:
        result = sandbox.run([sys.executable, "-c", FLOOD.format(out_mb=out_mb, err_mb=err_mb)], cwd=Path(scratch),
                             writable=[Path(scratch)], limits=Limits(timeout_seconds=600, memory_mb=1024,
                                                                     output_kb=sandbox.output_kb))
    seconds = time.monotonic() - started
    after, peak = _rss_mb()
    kept = len(result.stdout) + len(result.stderr)
    return (f"{out_mb} MB stdout + {err_mb} MB stderr: bot RSS {before:.0f} MB -> {after:.0f} MB "
            f"(peak {peak:.0f} MB), kept {kept / 1024:.0f} KB, dropped {result.dropped_bytes / 2**20:.0f} MB, "
            f"{seconds:.1f} s, exit {result.returncode}")


def main(argv: list[str] | None = None) -> int:
    """Run the two scenarios of the README and print one line each."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output-kb", type=int, default=1024, help="head and tail kept per stream")
    args = parser.parse_args(argv)
    status = isolation()
    print(f"isolation: {'bubblewrap' if status.available else 'NONE (' + status.reason + ')'}; "
          f"max RSS at start {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    sandbox = Sandbox(allow_unsandboxed=True, output_kb=args.output_kb)
    print(measure(300, 100, sandbox))
    print(measure(1024, 0, sandbox))
    return 0


if __name__ == "__main__":
    sys.exit(main())
