"""The bot's overhead from a pull request's 202 to its run `running`: `python -m benchmarks.compile_latency`.

The embedded service (`bot.wiring.build_services` as `kfp-bot serve` wires it: SQLite, in-process
bus, git checkouts, local builder, sandboxed compile, kfp.local) on 127.0.0.1 with a fake GitHub,
serving examples/kfp-monorepo. Each repetition opens a pull request that changes hello-pipeline's
settings, and times from the webhook's 202 to the run's `running` transition (checkout, plan,
checks, images, the sandboxed compile, parameters, submission; the compile's interpreter is warmed
up when the pull request's head arrives). The floor is a bare compile of the
same pipeline file: `python driver.py --mode import ...` with the bot's kfp 2, no sandbox, no bot.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from tests.fakes.github import FakeGitHub
from tests.handlers.conftest import PR, Bot, _serve, install_app
from tests.support.github_clients import APP_ID
from tests.support.gitrepo import GitRepo

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "kfp-monorepo"
DRIVER = ROOT / "deploy" / "compiler" / "driver.py"
SETTINGS = "pipelines/hello-pipeline/settings.yaml"
PIPELINE_FILE = "pipelines/hello-pipeline/hello-pipeline.py"


def bare_compile(repo: Path, out: Path) -> float:
    """Seconds of one bare compile of hello-pipeline (a fresh interpreter, `import kfp`, compile)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, str(DRIVER), "--mode", "import", "--file", PIPELINE_FILE, "--result",
                    str(out / "result.json"), "--output", str(out)], cwd=repo, check=True, capture_output=True)
    return time.perf_counter() - start


def to_running(bot: Bot, number: int) -> float:
    """Seconds from the 202 of a new pull request to its run's `running` transition."""
    settings = (bot.repo.root / SETTINGS).read_text()
    head = bot.branch(f"change-{number}", {SETTINGS: settings.replace("repeat: 3", f"repeat: {number + 3}")})
    answer = bot.open_pull(head, number=number)
    accepted = datetime.now().astimezone()
    if answer.status_code != 202:
        raise SystemExit(f"the webhook answered {answer.status_code}")
    bot.settle()
    [run] = bot.runs(pr=number)
    running = next((t for t in run["transitions"] if t["state"] == "running"), None)
    if running is None:
        raise SystemExit(f"the run never ran: {run['state']}: {run.get('error')}")
    return (datetime.fromisoformat(running["at"]) - accepted).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    with tempfile.TemporaryDirectory(prefix="kfp-bot-latency-") as tmp:
        work = Path(tmp)
        repo = GitRepo.from_tree(work / "monorepo", EXAMPLE)
        floors = [bare_compile(repo.root, work / f"bare-{i}") for i in range(args.repeat)]
        with FakeGitHub() as github:
            key = install_app(github)
            for bot in _serve(work / "bot", repo, github, github_app_id=APP_ID, github_private_key=key):
                to_running(bot, PR)  # the first pull request clones the repository and fills the caches
                latencies = [to_running(bot, PR + 1 + i) for i in range(args.repeat)]
    floor, latency = statistics.median(floors), statistics.median(latencies)
    print(f"\n202 -> running, one pipeline changed, embedded service, median of {args.repeat}")
    print(f"{'bare compile of hello-pipeline (floor)':<44} {floor:>6.2f}s")
    print(f"{'202 -> running':<44} {latency:>6.2f}s  {latency / floor:.2f}x the floor")
    print(f"target: under 1.2x a bare compile: {'holds' if latency < 1.2 * floor else 'misses'}")


if __name__ == "__main__":
    main()
