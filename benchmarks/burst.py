"""A burst of webhooks with the bot working behind them: `python -m benchmarks.burst`.

1,000 signed deliveries from 50 concurrent senders on 127.0.0.1 to the bot in its own process
(`benchmarks.burst_bot`: `kfp-bot serve` on a SQLite file, talking to a fake GitHub over
HTTP with a token; builds skipped, compiles real, runs recorded). 10 % of the deliveries are
sent again with the same delivery id, 5 % carry a bad signature. The deliveries open pull
requests in several repositories (each runs its changed pipeline) and comment on them: `/help`
(`--helps` of them, each checked out and answered with a reply) and plain remarks (accepted,
handled at once). The senders are keep-alive connections driven by one thread
(`benchmarks.senders`, so that the client takes little of the CPU it shares with the bot), in a
closed loop (each posts again as soon as it is answered) unless `--rate` asks for an open loop
(deliveries due at a fixed rate). Prints:

- lost: accepted work with no effect (a pull request without its run in a final state, a
  `/help` without its reply, an accepted delivery whose outbox row was never handled);
  duplicated: work done twice (a run executed twice, a reply posted twice, two rows for one
  delivery); 5xx answers;
- the webhook's answer time (p50/p99);
- the gap between a run's end (recorded by the runner) and its final state in the store (p50/p99);
- the bot's resident memory (gunicorn's arbiter and workers) before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

from benchmarks.senders import send
from bot.webhook import sign
from tests.fakes.github import FakeGitHub
from tests.support.botprocess import descendants
from tests.support.gitrepo import GitRepo
from tests.support.webhooks import load_payload

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "kfp-monorepo"
SECRET = "burst-secret"
HELLO_SETTINGS = "pipelines/hello-pipeline/settings.yaml"
HELP_REPLY = "**kfp-bot commands**"
FINAL = {"succeeded", "failed", "cancelled", "skipped", "error"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=1000)
    parser.add_argument("--senders", type=int, default=50)
    parser.add_argument("--repos", type=int, default=4)
    parser.add_argument("--pulls", type=int, default=3, help="pull requests per repository")
    parser.add_argument("--helps", type=int, default=150,
                        help="how many of the comments are /help (the others are plain remarks)")
    parser.add_argument("--rate", type=float, default=None,
                        help="open loop: deliveries a second (default: closed loop, as fast as answered)")
    parser.add_argument("--run-seconds", type=float, default=2.0)
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()
    rng = random.Random(10)
    with tempfile.TemporaryDirectory(prefix="kfp-bot-burst-") as tmp, FakeGitHub() as github:
        work = Path(tmp)
        token = github.add_token(login="kfp-ci")
        pulls = seed(github, work, args.repos, args.pulls)
        plan = deliveries(pulls, args.deliveries, rng, helps=args.helps)
        bot = start_bot(work, github, token, args.run_seconds)
        try:
            rss_before = rss_kb(bot.pid)
            started = time.perf_counter()
            answers = send(bot.url, plan, args.senders, rate=args.rate)
            elapsed = time.perf_counter() - started
            rss_after_burst = rss_kb(bot.pid)
            database = work / "data" / "kfp-bot.db"
            settled = settle(bot.url, pulls, github, plan, answers, args.timeout, database)
            rss_after = rss_kb(bot.pid)
            mode = (f"open loop, {args.rate:g} deliveries a second due, time counted from when due"
                    if args.rate else "closed loop: each sender posts again as soon as answered")
            print(f"{args.senders} senders, {mode}: {len(plan)} answered in {elapsed:.1f} s "
                  f"({len(plan) / elapsed:.0f} a second)")
            report(plan, answers, settled, work / "ends.jsonl", bot.url, pulls, github, database)
            print(f"bot RSS (arbiter, web and processing workers, their children) {rss_before / 1024:.0f} MB "
                  f"before, {rss_after_burst / 1024:.0f} MB after the burst, {rss_after / 1024:.0f} MB "
                  "after the work")
        finally:
            bot.stop()


class BotProcess:
    def __init__(self, process: subprocess.Popen[bytes], url: str) -> None:
        self.process, self.url, self.pid = process, url, process.pid

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def seed(github: FakeGitHub, work: Path, repos: int, per_repo: int) -> list[tuple[str, int, str, GitRepo]]:
    """Repositories made from the example monorepo, each with pull requests changing hello-pipeline."""
    pulls = []
    for r in range(repos):
        name = f"bench/monorepo-{r}"
        repo = GitRepo.from_tree(work / "repos" / f"monorepo-{r}", EXAMPLE)
        base = repo.head()
        github.add_repo(name, clone_url=str(repo.root))
        github.add_commit(name, base, branch="main")
        github.set_permission(name, "alice", "write")
        for p in range(per_repo):
            repo.branch(f"change-{p}", base)
            text = (repo.root / HELLO_SETTINGS).read_text()
            repo.write(HELLO_SETTINGS, text.replace("repeat: 3", f"repeat: {4 + p}"))
            head = repo.commit(f"change {p}")
            repo.checkout("main")
            github.add_pull(name, p + 1, head_sha=head, base_sha=base, author="alice")
            pulls.append((name, p + 1, head, repo))
    return pulls


def deliveries(pulls: list[tuple[str, int, str, GitRepo]], total: int, rng: random.Random, *,
               helps: int | None = None) -> list[dict[str, Any]]:
    """The burst: one `opened` per pull request, then comments: `helps` of them `/help` (all
    when None), the others plain remarks (accepted, handled at once: no command); 10 % resent,
    5 % forged."""
    forged = total * 5 // 100
    resent = total * 10 // 100
    unique = total - forged - resent
    plan: list[dict[str, Any]] = []
    for name, number, head, repo in pulls:
        plan.append(delivery("pull_request", opened(name, number, head, repo), key=(name, number, "opened")))
    helps = unique if helps is None else len(plan) + helps
    while len(plan) < unique:
        name, number, _, repo = rng.choice(pulls)
        text, kind = ("/help", "help") if len(plan) < helps else ("thanks, looks good", "remark")
        plan.append(delivery("issue_comment", comment(name, number, repo, 10_000 + len(plan), text),
                             key=(name, number, kind)))
    firsts = plan[len(pulls):]
    rng.shuffle(firsts)
    plan[len(pulls):] = firsts
    for _ in range(resent):
        original = rng.choice(plan[:unique])
        plan.insert(rng.randrange(plan.index(original) + 1, len(plan) + 1), {**original, "copy": True})
    for _ in range(forged):
        bad = delivery("issue_comment", comment(*rng.choice(pulls)[:2], pulls[0][3], 99, "/help"), key=None)
        bad["headers"]["X-Hub-Signature-256"] = sign("not-the-secret", bad["body"])
        plan.insert(rng.randrange(len(pulls), len(plan) + 1), bad)
    return plan


def delivery(event: str, payload: dict[str, Any], *, key: tuple[Any, ...] | None) -> dict[str, Any]:
    body = json.dumps(payload).encode()
    return {"key": key, "body": body, "headers": {
        "Content-Type": "application/json", "X-GitHub-Event": event, "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(SECRET, body), "User-Agent": "GitHub-Hookshot/burst"}}


def opened(name: str, number: int, head: str, repo: GitRepo) -> dict[str, Any]:
    url = str(repo.root)
    return load_payload("pull_request.opened", {
        "number": number, "repository.full_name": name, "repository.name": name.split("/")[1],
        "repository.clone_url": url, "repository.default_branch": "main", "pull_request.number": number,
        "pull_request.draft": False, "pull_request.user.login": "alice", "pull_request.head.sha": head,
        "pull_request.head.ref": f"change-{number - 1}", "pull_request.base.sha": repo.git("rev-parse", "main"),
        "pull_request.base.ref": "main", "pull_request.head.repo.full_name": name,
        "pull_request.head.repo.clone_url": url, "sender.login": "alice"})


def comment(name: str, number: int, repo: GitRepo, comment_id: int, text: str) -> dict[str, Any]:
    return load_payload("issue_comment.created", {
        "repository.full_name": name, "repository.name": name.split("/")[1], "repository.clone_url": str(repo.root),
        "issue.number": number, "comment.id": comment_id, "comment.body": text, "comment.user.login": "bob",
        "comment.user.type": "User", "sender.login": "bob"})


def start_bot(work: Path, github: FakeGitHub, token: str, run_seconds: float) -> BotProcess:
    """`benchmarks.burst_bot` (the bot as `kfp-bot serve` runs it) on a free port, once it answers."""
    return start_server(work, "benchmarks.burst_bot", str(work / "ends.jsonl"), str(run_seconds),
                        github=github, token=token)


def start_server(work: Path, module: str, *args: str, github: FakeGitHub, token: str) -> BotProcess:
    """`python -m module PORT_FILE *args` with the bot's settings, once it answers on its port."""
    env = {**os.environ, "KFP_BOT_WEBHOOK_SECRET": SECRET, "KFP_BOT_DATA_DIR": str(work / "data"),
           "KFP_BOT_GITHUB_API_URL": github.api_url, "KFP_BOT_GITHUB_TOKEN": token,
           "KFP_BOT_BOT_LOGIN": "kfp-ci", "KFP_BOT_ALLOW_LOCAL_REPOS": "1", "KFP_BOT_LOG_LEVEL": "WARNING"}
    port_file = work / f"{module}.port"
    log = work / f"{module}.log"
    process = subprocess.Popen([sys.executable, "-m", module, str(port_file), *args], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=open(log, "wb"))
    deadline = time.monotonic() + 60
    while not port_file.exists() or not port_file.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{module} did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
    url = f"http://127.0.0.1:{port_file.read_text()}"
    # gunicorn listens before its workers have loaded the app: wait until one answers.
    while True:
        try:
            requests.get(f"{url}/healthz", timeout=30)
            break
        except requests.RequestException:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{module} did not start:\n{log.read_text()[-3000:]}") from None
            time.sleep(0.1)
    time.sleep(2)  # and the other workers too
    return BotProcess(process, url)


def expected_work(plan: list[dict[str, Any]], answers: list[tuple[int, float]]) -> Counter[tuple[Any, ...]]:
    return Counter(item["key"] for item, (status, _) in zip(plan, answers, strict=False) if status == 202)


def settle(url: str, pulls: list[Any], github: FakeGitHub, plan: list[dict[str, Any]],
           answers: list[tuple[int, float]], timeout: float, database: Path) -> float:
    """Wait until every run is final, every accepted `/help` is answered and the outbox is
    empty; seconds waited."""
    started = time.monotonic()
    expected = expected_work(plan, answers)
    while time.monotonic() - started < timeout:
        runs = requests.get(f"{url}/api/runs", params={"limit": 500}, timeout=30).json()["runs"]
        helps = sum(len(replies(github, name, number)) for name, number, _, _ in pulls)
        wanted = sum(n for key, n in expected.items() if key[2] == "help")
        if (len(runs) >= len(pulls) and all(r["state"] in FINAL for r in runs) and helps >= wanted
                and outbox_rows(database)[1] == 0):
            break
        time.sleep(0.5)
    return time.monotonic() - started


def replies(github: FakeGitHub, name: str, number: int) -> list[dict[str, Any]]:
    """The bot's answers to `/help` on a pull request (not its summary comment)."""
    return [c for c in github.comments(name, number)
            if c["user"]["login"] == "kfp-ci" and c["body"].startswith(HELP_REPLY)]


def outbox_rows(database: Path) -> tuple[Counter[str], int]:
    """How many done outbox rows each delivery id has, and how many rows are not done (read-only)."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as conn:
        done = Counter(row[0] for row in conn.execute(
            "SELECT json_extract(event, '$.data.delivery_id') FROM outbox WHERE done_at IS NOT NULL"))
        pending = conn.execute("SELECT count(*) FROM outbox WHERE done_at IS NULL").fetchone()[0]
    conn.close()
    return done, pending


def report(plan: list[dict[str, Any]], answers: list[tuple[int, float]], settled: float, ends_file: Path,
           url: str, pulls: list[Any], github: FakeGitHub, database: Path) -> None:
    expected = expected_work(plan, answers)
    statuses = Counter(status for status, _ in answers)
    ends: dict[str, list[float]] = {}
    for line in ends_file.read_text().splitlines() if ends_file.exists() else []:
        record = json.loads(line)
        ends.setdefault(record["run"], []).append(record["end"])
    runs = requests.get(f"{url}/api/runs", params={"limit": 500}, timeout=30).json()["runs"]
    by_pull = Counter((r["repo"], r["pr"]) for r in runs if r["state"] in FINAL)
    # Replies are counted per pull request (a /help reply does not name its comment).
    help_pulls = {(k[0], k[1]) for k in expected if k[2] == "help"}
    lost = sum(1 for n, p, _, _ in pulls if (n, p, "opened") in expected and by_pull[(n, p)] == 0)
    duplicated = sum(max(0, by_pull[(n, p)] - 1) for n, p, _, _ in pulls)
    for name, number in help_pulls:
        want = sum(n for key, n in expected.items() if key == (name, number, "help"))
        got = len(replies(github, name, number))
        lost += max(0, want - got)
        duplicated += max(0, got - want)
    # Every accepted delivery: one outbox row, handled (remarks have no other visible effect).
    done, _ = outbox_rows(database)
    accepted = [item["headers"]["X-GitHub-Delivery"]
                for item, (status, _) in zip(plan, answers, strict=True) if status == 202]
    unhandled = sum(1 for delivery_id in accepted if done[delivery_id] == 0)
    twice = sum(max(0, done[delivery_id] - 1) for delivery_id in set(accepted))
    executed_twice = sum(1 for times in ends.values() if len(times) > 1)
    gaps = []
    for run in runs:
        if run["id"] in ends and run["state"] in FINAL:
            stored = datetime.fromisoformat(run["transitions"][-1]["at"]).timestamp()
            gaps.append(max(0.0, stored - ends[run["id"]][-1]))
    times = sorted(ms for _, ms in answers)
    forged = sum(1 for item in plan if item["key"] is None)
    resent = sum(1 for item in plan if item.get("copy"))
    kinds = Counter(item["key"][2] for item in plan if item["key"] and not item.get("copy"))
    print(f"{len(plan)} deliveries ({kinds['opened']} pull requests opened, {kinds['help']} /help, "
          f"{kinds['remark']} plain comments; {resent} resent, {forged} forged); "
          f"answers {dict(sorted(statuses.items()))}")
    print(f"lost {lost + unhandled}   duplicated {duplicated + executed_twice + twice}   "
          f"5xx {sum(n for s, n in statuses.items() if s >= 500)}   (of which: runs or replies missing {lost}, "
          f"accepted without a handled outbox row {unhandled}; runs executed twice {executed_twice}, "
          f"replies twice {duplicated}, outbox rows twice {twice})")
    print(f"webhook answer p50 {pct(times, 50):.1f} ms   p99 {pct(times, 99):.1f} ms   max {times[-1]:.1f} ms")
    print(f"runs {len(runs)} {dict(Counter(r['state'] for r in runs))}, "
          f"executed {sum(len(t) for t in ends.values())}; state gap after a run's end "
          f"p50 {pct(sorted(gaps), 50):.3f} s   p99 {pct(sorted(gaps), 99):.3f} s")
    print(f"all work done {settled:.1f} s after the last answer")


def pct(values: list[float], p: int) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, max(0, round(p / 100 * len(values)) - 1))]


def rss_kb(pid: int) -> int:
    """Resident memory of the bot: gunicorn's arbiter and its workers (and what they started)."""
    total = 0
    for process in [pid, *descendants(pid)]:
        try:
            status = Path(f"/proc/{process}/status").read_text()
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return total


if __name__ == "__main__":
    main()
