"""How fast the webhook answers while the bot works: `python -m benchmarks.webhook_bench`.

Serves the bot as `kfp-bot serve` does (`benchmarks.burst_bot`: gunicorn with its web workers
and its processing worker, a SQLite file, GitHub a fake over HTTP) and posts signed deliveries
to 127.0.0.1 in three phases, each a new set of deliveries of the burst's mix (pull requests
opened, `/help` comments, 10 % resent, 5 % forged), with the processing worker checking out,
planning and answering the earlier ones behind them:

1. one at a time (a single client): the answer time of the accept path alone;
2. closed loop, `--senders` connections each posting again as soon as it is answered: the time
   includes waiting behind the other senders (queueing the senders themselves cause; by Little's
   law the mean is senders / answers a second);
3. open loop, deliveries due at each `--rate` a second in turn over up to `--senders`
   connections, each time counted from when the delivery was due: how the answer time grows
   with the rate GitHub sends at.

Then the same phases against the floor (`benchmarks.webhook_floor`): the same gunicorn with the
same options answering 202 from an app that only reads the body, with nothing behind it. Each
phase prints the bot's figures, the floor's and the ratio of their p99s.

The senders (`benchmarks.senders`: one thread, keep-alive connections) run on the same 2 cores as
the server. Requests go only to the loopback address; each phase is bounded by --requests.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from collections import Counter
from pathlib import Path

from benchmarks.burst import deliveries, pct, rss_kb, seed, start_bot, start_server
from benchmarks.senders import send
from tests.fakes.github import FakeGitHub
from tests.support.botprocess import descendants


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500, help="deliveries per phase")
    parser.add_argument("--senders", type=int, default=20)
    parser.add_argument("--rate", type=float, nargs="+", default=[200.0, 400.0, 800.0],
                        help="open loop: deliveries a second (a phase each)")
    args = parser.parse_args()
    rng = random.Random(14)
    phases = [("one at a time", 1, None), (f"{args.senders} senders, closed loop", args.senders, None),
              *((f"{args.senders} senders, open loop at {rate:g}/s", args.senders, rate) for rate in args.rate)]
    with tempfile.TemporaryDirectory(prefix="kfp-bot-webhook-") as tmp, FakeGitHub() as github:
        work = Path(tmp)
        token = github.add_token(login="kfp-ci")
        pulls = seed(github, work, 2, 2)
        plans = [deliveries(pulls, args.requests, rng) for _ in phases]
        print(f"{args.requests} deliveries per phase on 127.0.0.1: kfp-bot serve, the bot working behind, "
              "then the floor (the same gunicorn, an app that only reads the body)")
        bot = start_bot(work, github, token, 2.0)
        try:
            measured = [measure(bot.pid, bot.url, plan, senders, rate)
                        for plan, (_, senders, rate) in zip(plans, phases, strict=True)]
            rss = rss_kb(bot.pid)
        finally:
            bot.stop()
        floor = start_server(work, "benchmarks.webhook_floor", github=github, token=token)
        try:
            floors = [measure(floor.pid, floor.url, plan, senders, rate)
                      for plan, (_, senders, rate) in zip(plans, phases, strict=True)]
        finally:
            floor.stop()
    for (name, _, _), bot_row, floor_row in zip(phases, measured, floors, strict=True):
        print(f"{name}")
        print(f"  bot    {bot_row.line()}")
        print(f"  floor  {floor_row.line()}   bot p99 = {bot_row.p99 / floor_row.p99:.1f}x the floor's")
    print(f"bot RSS {rss / 1024:.0f} MB")


class Phase:
    """One phase's answer times, throughput and server CPU."""

    def __init__(self, answers: list[tuple[int, float]], seconds: float, cpu: float | None) -> None:
        self.times = sorted(ms for _, ms in answers)
        self.statuses = dict(sorted(Counter(status for status, _ in answers).items()))
        self.rate = len(answers) / seconds
        self.cpu_ms = None if cpu is None else cpu / len(answers) * 1000
        self.p99 = pct(self.times, 99)

    def line(self) -> str:
        cpu = "n/a" if self.cpu_ms is None else f"{self.cpu_ms:.2f} ms"
        return (f"p50 {pct(self.times, 50):6.1f} ms   p99 {self.p99:6.1f} ms   max {self.times[-1]:6.1f} ms   "
                f"{self.rate:4.0f}/s   web CPU {cpu} a delivery   answers {self.statuses}")


def measure(pid: int, url: str, plan: list[dict[str, object]], senders: int, rate: float | None) -> Phase:
    """Send `plan` to the server `pid` listening on `url`; its web processes' CPU time included."""
    web = web_workers(pid)
    cpu = cpu_seconds(web)
    started = time.perf_counter()
    answers = send(url, plan, senders, rate=rate)
    seconds = time.perf_counter() - started
    return Phase(answers, seconds, cpu_seconds(web) - cpu if web else None)


def web_workers(pid: int) -> list[int]:
    """The server's web worker processes: the bot's `kfp-bot-web`, else (the floor) all of them."""
    found: dict[int, str] = {}
    for child in descendants(pid):
        try:
            found[child] = Path(f"/proc/{child}/comm").read_text().strip()
        except OSError:
            continue
    named = [child for child, name in found.items() if name == "kfp-bot-web"]
    return named or ([] if "kfp-bot-bus" in found.values() else list(found))


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
