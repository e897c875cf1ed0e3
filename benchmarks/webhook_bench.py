"""How fast the webhook answers while the bot works: `python -m benchmarks.webhook_bench`.

Serves the bot as `kfp-bot serve` does (`benchmarks.burst_bot`: gunicorn with its web workers
and its processing worker, a SQLite file, GitHub a fake over HTTP) and posts signed deliveries
to 127.0.0.1 in three phases, each a new set of deliveries of the burst's mix (pull requests
opened, `/help` comments, 10 % resent, 5 % forged), with the processing worker checking out,
planning and answering the earlier ones behind them:

1. one at a time (a single client): the answer time of the accept path alone;
2. closed loop, `--senders` connections each posting again as soon as it is answered: the time
   includes waiting behind the other senders (queueing the senders themselves cause);
3. open loop, deliveries due at `--rate` a second over up to `--senders` connections, each time
   counted from when the delivery was due.

The client runs on the same 2 cores as the bot. Requests go only to the loopback address; each
phase is bounded by --requests.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from collections import Counter
from pathlib import Path

from benchmarks.burst import deliveries, pct, rss_kb, seed, send, start_bot
from tests.fakes.github import FakeGitHub
from tests.support.botprocess import descendants


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500, help="deliveries per phase")
    parser.add_argument("--senders", type=int, default=20)
    parser.add_argument("--rate", type=float, default=200.0, help="open loop: deliveries a second")
    args = parser.parse_args()
    rng = random.Random(14)
    with tempfile.TemporaryDirectory(prefix="kfp-bot-webhook-") as tmp, FakeGitHub() as github:
        work = Path(tmp)
        token = github.add_token(login="kfp-ci")
        pulls = seed(github, work, 2, 2)
        bot = start_bot(work, github, token, 2.0)
        try:
            phases = [("one at a time", 1, None), (f"{args.senders} senders, closed loop", args.senders, None),
                      (f"{args.senders} senders, open loop at {args.rate:g}/s", args.senders, args.rate)]
            print(f"{args.requests} deliveries per phase to kfp-bot serve on 127.0.0.1, the bot working behind")
            for name, senders, rate in phases:
                plan = deliveries(pulls, args.requests, rng)
                web = web_workers(bot.pid)
                cpu = cpu_seconds(web)
                started = time.perf_counter()
                answers = send(bot.url, plan, senders, rate=rate)
                rate_seen = len(plan) / (time.perf_counter() - started)
                cpu = cpu_seconds(web) - cpu
                times = sorted(ms for _, ms in answers)
                statuses = dict(sorted(Counter(status for status, _ in answers).items()))
                print(f"{name:<34} p50 {pct(times, 50):6.1f} ms   p99 {pct(times, 99):6.1f} ms   "
                      f"max {times[-1]:6.1f} ms   {rate_seen:4.0f}/s   web CPU "
                      + (f"{cpu / len(plan) * 1000:.2f} ms a delivery" if web else "n/a (no kfp-bot-web process)")
                      + f"   answers {statuses}")
            print(f"bot RSS {rss_kb(bot.pid) / 1024:.0f} MB")
        finally:
            bot.stop()


def web_workers(pid: int) -> list[int]:
    """The bot's web worker processes (`kfp-bot-web`), by their process names."""
    found = []
    for child in descendants(pid):
        try:
            if Path(f"/proc/{child}/comm").read_text().strip() == "kfp-bot-web":
                found.append(child)
        except OSError:
            continue
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of `pids` so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


if __name__ == "__main__":
    main()
