"""`make demo`: the bot's main job, end to end, on embedded defaults.

1. makes a git repository from `examples/kfp-monorepo` with a branch that changes one pipeline;
2. shows `kfp-bot plan` for that branch, and `kfp-bot diff`: what it does to the compiled pipeline;
3. starts `kfp-bot serve` (in-process bus, SQLite, kfp.local) on a free local port;
4. sends it a signed `pull_request` `opened` webhook for the branch, as GitHub would;
5. follows the run through the API until it ends, prints it and the page's address;
6. stops the server. Exit status 0 only if every run succeeded.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent / "kfp-monorepo"
REPO_NAME = "octo-org/kfp-monorepo"
AUTHOR = "octocat"
TIMEOUT_SECONDS = 600
_GIT_ENV = {"GIT_AUTHOR_NAME": "Demo", "GIT_AUTHOR_EMAIL": "demo@example.com",
            "GIT_COMMITTER_NAME": "Demo", "GIT_COMMITTER_EMAIL": "demo@example.com"}


def git(repo: Path, *args: str) -> str:
    """Run git in `repo` and return its output."""
    env = {**os.environ, **_GIT_ENV}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


def make_repository(root: Path) -> tuple[Path, str, str]:
    """The example monorepo with a branch changing hello-pipeline: (path, base sha, head sha)."""
    repo = root / "kfp-monorepo"
    shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Initial monorepo")
    base = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "-b", "demo/longer-greeting")
    settings = repo / "pipelines" / "hello-pipeline" / "settings.yaml"
    settings.write_text(settings.read_text().replace("repeat: 3", "repeat: 4"))
    git(repo, "commit", "-q", "-am", "hello-pipeline: count the greeting four times")
    return repo, base, git(repo, "rev-parse", "HEAD")


def pull_request_payload(repo: Path, base: str, head: str) -> dict:
    """A `pull_request` `opened` payload shaped like GitHub's, for a local repository."""
    clone_url = repo.as_uri()
    owner = {"login": AUTHOR, "id": 1, "type": "User"}
    repository = {"id": 1, "name": "kfp-monorepo", "full_name": REPO_NAME, "private": False,
                  "owner": owner, "html_url": f"https://github.com/{REPO_NAME}",
                  "clone_url": clone_url, "default_branch": "main"}
    return {
        "action": "opened", "number": 1, "sender": owner, "repository": repository,
        "pull_request": {
            "number": 1, "title": "Count the greeting four times", "state": "open", "draft": False,
            "html_url": f"https://github.com/{REPO_NAME}/pull/1", "user": owner,
            "author_association": "OWNER",
            "head": {"sha": head, "ref": "demo/longer-greeting", "repo": repository},
            "base": {"sha": base, "ref": "main", "repo": repository},
        },
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request(url: str, data: bytes | None = None, headers: dict | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def wait_until_up(base_url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"kfp-bot serve exited with status {server.returncode}")
        try:
            if request(f"{base_url}/healthz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("kfp-bot serve did not answer /healthz within 60 s")


def follow_runs(base_url: str) -> list[dict]:
    """Print every state change of the PR's runs until all have ended."""
    seen: dict[str, str] = {}
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        _, body = request(f"{base_url}/api/runs?repo={REPO_NAME}&pr=1")
        runs = body.get("runs", [])
        for run in runs:
            if seen.get(run["id"]) != run["state"]:
                seen[run["id"]] = run["state"]
                print(f"  {run['pipeline']:18} {run['state']}")
        if runs and all(r["state"] in ("succeeded", "failed", "cancelled", "skipped", "error") for r in runs):
            return runs
        time.sleep(0.5)
    raise SystemExit(f"the runs did not finish within {TIMEOUT_SECONDS} s")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="kfp-bot-demo-") as tmp:
        root = Path(tmp)
        repo, base, head = make_repository(root)
        print(f"== A pull request that changes hello-pipeline ({head[:7]} on {base[:7]})\n")
        subprocess.run([sys.executable, "-m", "bot", "plan", "--repo", str(repo), "--base", base,
                        "--head", head], check=True)
        print("\n== What the change does to the compiled pipeline (kfp-bot diff)\n")
        subprocess.run([sys.executable, "-m", "bot", "diff", "hello-pipeline", "--repo", str(repo), "--base", base,
                        "--head", head], check=True, env={**os.environ, "KFP_BOT_DATA_DIR": str(root / "data")})
        port = free_port()
        secret = secrets.token_hex(16)
        env = {**os.environ, "KFP_BOT_WEBHOOK_SECRET": secret, "KFP_BOT_ALLOW_LOCAL_REPOS": "1",
               "KFP_BOT_DATA_DIR": str(root / "data"), "KFP_BOT_ALLOWED_USERS": AUTHOR,
               "KFP_BOT_LOG_LEVEL": "WARNING"}
        for key in ("KFP_BOT_GITHUB_APP_ID", "KFP_BOT_GITHUB_TOKEN", "KFP_BOT_DATABASE_URL"):
            env.pop(key, None)
        base_url = f"http://127.0.0.1:{port}"
        print(f"\n== kfp-bot serve on {base_url}")
        server = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--port", str(port)], env=env)
        try:
            wait_until_up(base_url, server)
            body = json.dumps(pull_request_payload(repo, base, head)).encode()
            signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            status, answer = request(f"{base_url}/github/webhook", body, {
                "Content-Type": "application/json", "X-GitHub-Event": "pull_request",
                "X-GitHub-Delivery": secrets.token_hex(8), "X-Hub-Signature-256": signature})
            print(f"== webhook sent: HTTP {status} {answer}\n")
            if status != 202:
                return 1
            runs = follow_runs(base_url)
            print()
            for run in runs:
                print(json.dumps({k: run[k] for k in ("id", "pipeline", "state", "sha", "trigger",
                                                      "parameters", "error")}, indent=2))
            print(f"\nThe page: {base_url}/ and each run's own page, e.g. {base_url}/runs/{runs[0]['id']} "
                  "(they stop with the demo)")
            return 0 if all(r["state"] == "succeeded" for r in runs) else 1
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()


if __name__ == "__main__":
    sys.exit(main())
