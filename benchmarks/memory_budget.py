"""The service's memory budget: `python -m benchmarks.memory_budget [--kfp18]`.

Starts `kfp-bot serve` (embedded defaults, SQLite, in-process bus) in its own process on
127.0.0.1 with a fresh data folder, and reports, as an instance would have to hold them:

- idle: the service's resident memory (VmRSS of gunicorn's arbiter and its web and processing
  workers together) once it answers /healthz;
- after one PR: a signed `pull_request` delivery for a commit of the example monorepo (clone,
  plan, sandboxed compile, kfp.local run of the affected pipelines), the service's RSS, its
  peak (VmHWM), the peak of the processes it started (compile and run sandboxes), and the size
  of the data folder, which on App Engine standard lives in /tmp, i.e. in the instance's memory;
- with `--kfp18`, the same after a compile in a kfp 1.8 environment (a virtual environment
  built with pip from the package index, kept in the data folder's cache).

Only loopback traffic; the PR is one delivery, waited for at most --timeout seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "kfp-monorepo"
PAYLOAD = ROOT / "tests" / "data" / "webhooks" / "pull_request.opened.json"
SECRET = "memory-budget-secret"
REPO = "octo-org/kfp-monorepo"
AUTHOR = "budget-writer"
_GIT_ENV = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com", "GIT_COMMITTER_NAME": "bench",
            "GIT_COMMITTER_EMAIL": "bench@example.com", "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent",
            "PATH": "/usr/local/bin:/usr/bin:/bin"}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], env=_GIT_ENV, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def make_repo(folder: Path) -> tuple[str, str]:
    """The example monorepo committed on main, and a PR head that changes the training component and
    `utils/` (which every pipeline imports: hello-pipeline's lightweight components run in kfp.local)."""
    shutil.copytree(EXAMPLE, folder)
    git(folder, "init", "-q", "-b", "main")
    git(folder, "add", "-A")
    git(folder, "commit", "-q", "-m", "base")
    base = git(folder, "rev-parse", "HEAD")
    git(folder, "checkout", "-q", "-b", "feature")
    for changed in ("pipelines/training-pipeline/train/main.py", "utils/naming.py"):
        with (folder / changed).open("a") as handle:
            handle.write("\n# changed by the PR\n")
    git(folder, "commit", "-q", "-am", "train faster")
    return base, git(folder, "rev-parse", "HEAD")


def status_kb(pid: int, field: str) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else 0


def folder_mb(folder: Path) -> float:
    total = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
    return total / 1024 / 1024


def deliver(url: str, repo: Path, base: str, head: str) -> None:
    payload = json.loads(PAYLOAD.read_text())
    payload.update(number=1)
    payload["repository"].update(full_name=REPO, name=REPO.split("/")[1], clone_url=str(repo), default_branch="main")
    pull = payload["pull_request"]
    pull.update(number=1, draft=False)
    pull["user"]["login"] = payload["sender"]["login"] = AUTHOR
    pull["head"].update(sha=head, ref="feature")
    pull["head"]["repo"].update(full_name=REPO, clone_url=str(repo))
    pull["base"].update(sha=base, ref="main")
    payload.pop("installation", None)
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    answer = requests.post(f"{url}/github/webhook", data=body, timeout=30, headers={
        "Content-Type": "application/json", "X-GitHub-Event": "pull_request",
        "X-GitHub-Delivery": str(uuid.uuid4()), "X-Hub-Signature-256": signature})
    answer.raise_for_status()


def wait_done(url: str, pid: int, timeout: float, more_than: int = 0) -> tuple[list[dict], float]:
    """The runs once there are more than `more_than` and all are finished, and the peak memory of the
    service's process tree meanwhile."""
    deadline, peak = time.monotonic() + timeout, 0.0
    while time.monotonic() < deadline:
        peak = max(peak, tree_rss_mb(pid))
        runs = requests.get(f"{url}/api/runs", timeout=10).json()
        runs = runs.get("runs", runs) if isinstance(runs, dict) else runs
        if len(runs) > more_than and all(r["state"] in ("succeeded", "failed", "error", "cancelled", "skipped") for r in runs):
            return runs, peak
        time.sleep(0.5)
    raise SystemExit(f"the PR's runs did not finish within {timeout:g} s")


def tree_rss_mb(pid: int, field: str = "VmRSS") -> float:
    """Resident memory of the service and every process below it (compile and run sandboxes):
    their `field` of /proc/PID/status, or "Pss" (each shared page counted once, split among
    the processes sharing it: the workers share what the arbiter loaded before forking)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                parents[int(entry.name)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = {pid}, [pid]
    while frontier:
        current = frontier.pop()
        for child, parent in parents.items():
            if parent == current and child not in tree:
                tree.add(child)
                frontier.append(child)
    total = 0
    for member in tree:
        try:
            total += pss_kb(member) if field == "Pss" else status_kb(member, field)
        except OSError:
            continue
    return total / 1024


def pss_kb(pid: int) -> int:
    """Proportional set size of `pid` (Linux /proc/PID/smaps_rollup)."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def report(label: str, pid: int, data_dir: Path, tree_peak: float = 0.0) -> None:
    """One line: the service's processes together (gunicorn's arbiter, its web and processing
    workers, anything they run at that moment), the arbiter alone, the data folder, and the
    peak of the whole tree while the work ran."""
    rss, peak = status_kb(pid, "VmRSS") / 1024, status_kb(pid, "VmHWM") / 1024
    tree = f"   with its processes, peak {tree_peak:7.1f} MB" if tree_peak else ""
    print(f"{label:<28} service RSS {tree_rss_mb(pid):6.1f} MB, PSS {tree_rss_mb(pid, 'Pss'):6.1f} MB "
          f"(arbiter {rss:5.1f} MB, peak {peak:5.1f} MB)   "
          f"data folder {folder_mb(data_dir):7.1f} MB{tree}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kfp18", action="store_true", help="also compile in a kfp 1.8 environment (uses pip)")
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kfp-bot-memory-") as tmp:
        repo, data_dir = Path(tmp) / "monorepo", Path(tmp) / "data"
        base, head = make_repo(repo)
        env = {k: v for k, v in os.environ.items() if not k.startswith("KFP_BOT_")}
        env.update(KFP_BOT_DATA_DIR=str(data_dir), KFP_BOT_WEBHOOK_SECRET=SECRET, KFP_BOT_ALLOW_LOCAL_REPOS="1",
                   KFP_BOT_ALLOWED_USERS=AUTHOR, KFP_BOT_LOG_LEVEL="WARNING")
        server = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", "0"],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
        try:
            line = server.stdout.readline() if server.stdout else ""
            match = re.search(r"http://[\d.]+:(\d+)", line)
            if match is None:
                raise SystemExit(f"kfp-bot serve did not start: {line!r}")
            url = f"http://127.0.0.1:{match.group(1)}"
            requests.get(f"{url}/healthz", timeout=30).raise_for_status()
            time.sleep(2)
            print(f"kfp-bot serve (embedded defaults), python {sys.version.split()[0]}, pid {server.pid}")
            report("idle", server.pid, data_dir)
            deliver(url, repo, base, head)
            runs, tree_peak = wait_done(url, server.pid, args.timeout)
            states = ", ".join(sorted(f"{r['pipeline']} {r['state']}" for r in runs))
            report(f"after one PR ({states})", server.pid, data_dir, tree_peak)
            for run in runs:
                if run.get("error"):
                    print(f"  {run['pipeline']}: {str(run['error'])[:300]}")
            if args.kfp18:
                (repo / ".kfp-bot.yaml").write_text("compile:\n  requirements: ['kfp==1.8.22']\n")
                git(repo, "add", "-A")
                git(repo, "commit", "-q", "-m", "compile with kfp 1.8")
                deliver(url, repo, base, git(repo, "rev-parse", "HEAD"))
                runs, tree_peak = wait_done(url, server.pid, args.timeout, more_than=len(runs))
                report("with a kfp 1.8 environment", server.pid, data_dir, tree_peak)
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
