"""Git checkouts of the commits the bot works on, from a cache of bare mirrors.

One bare repository per GitHub repository under the cache; each commit the bot needs is
fetched once and checked out once as a detached work tree, shared read-only by every step of
every run of that commit (compiles work on their own scratch copy). Credentials, when there
are any, travel in environment-provided git config, never on a command line or in a log.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from handlers.models import RepoRef
from pipeline_registry.errors import RepositoryError
from pipeline_registry.gitargs import GitArgumentError, check_ref, check_url, is_sha

TokenProvider = Callable[[RepoRef], "str | None"]
# Only these transports, whatever the git configuration says (ext:: runs commands, fd:: reads
# descriptors): https://git-scm.com/docs/git-config#Documentation/git-config.txt-protocolallow
_PROTOCOLS = ("-c", "protocol.allow=never", "-c", "protocol.https.allow=always",
              "-c", "protocol.ssh.allow=always", "-c", "protocol.file.allow=always")


class GitSource:
    """The `Source` port on plain git: fetch into a mirror, check out a work tree per commit."""

    def __init__(self, cache_dir: Path, *, token_for: TokenProvider | None = None,
                 timeout_seconds: float = 600.0) -> None:
        self.cache_dir = cache_dir
        self.token_for = token_for
        self.timeout_seconds = timeout_seconds
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def checkout(self, repo: RepoRef, clone_url: str, sha: str, *, base_sha: str | None = None) -> Path:
        """A work tree at `sha` in which `base_sha` exists too (for planning)."""
        for commit in (sha, base_sha):
            if commit is not None and not is_sha(commit):
                raise RepositoryError(f"{commit!r} is not a full commit SHA")
        try:
            check_url(clone_url, "clone URL")
        except GitArgumentError as exc:
            raise RepositoryError(str(exc), hint=exc.hint) from None
        name = _safe_name(repo.full_name or clone_url)
        mirror = self.cache_dir / "mirrors" / f"{name}.git"
        tree = self.cache_dir / "trees" / name / sha
        with self._lock(name):
            self._ensure_mirror(mirror)
            env = self._auth_env(repo)
            wanted = [c for c in (sha, base_sha) if c]
            missing = [c for c in wanted if not self._has_commit(mirror, c)]
            if missing:
                self._fetch(mirror, clone_url, missing, env)
            for commit in wanted:
                if not self._has_commit(mirror, commit):
                    raise RepositoryError(f"commit {commit[:12]} cannot be fetched from {_redact(clone_url)}",
                                          hint="was it force-pushed away, or is the repository private?")
            if not (tree / ".git").exists():
                self._add_worktree(mirror, tree, sha)
        return tree

    def branch_head(self, repo: RepoRef, clone_url: str, branch: str) -> str:
        """The commit `branch` of `clone_url` points at now, fetched into the mirror."""
        try:
            check_url(clone_url, "clone URL")
            check_ref(branch, "default branch")
        except GitArgumentError as exc:
            raise RepositoryError(str(exc), hint=exc.hint) from None
        name = _safe_name(repo.full_name or clone_url)
        mirror = self.cache_dir / "mirrors" / f"{name}.git"
        local = f"refs/kfp-bot/branches/{branch}"
        with self._lock(name):
            self._ensure_mirror(mirror)
            result = self._git(["fetch", "-q", "--no-tags", "--", clone_url, f"+refs/heads/{branch}:{local}"],
                               cwd=mirror, env=self._auth_env(repo), check=False)
            if result.returncode != 0:
                raise RepositoryError(f"cannot fetch branch '{branch}' of {_redact(clone_url)}: "
                                      f"{_redact(_last_line(result.stderr))}",
                                      hint="trusted settings are read from the default branch")
            sha = self._git(["rev-parse", "--verify", "--end-of-options", f"{local}^{{commit}}"],
                            cwd=mirror).stdout.strip()
        if not is_sha(sha):
            raise RepositoryError(f"branch '{branch}' of {_redact(clone_url)} did not resolve to a commit")
        return sha

    @contextmanager
    def _lock(self, name: str) -> Iterator[None]:
        with self._locks_guard:
            lock = self._locks.setdefault(name, threading.Lock())
        lock_file = self.cache_dir / "locks" / f"{name}.lock"
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        with lock, open(lock_file, "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _ensure_mirror(self, mirror: Path) -> None:
        if (mirror / "HEAD").exists():
            return
        mirror.parent.mkdir(parents=True, exist_ok=True)
        self._git(["init", "-q", "--bare", str(mirror)], cwd=mirror.parent)

    def _has_commit(self, mirror: Path, sha: str) -> bool:
        result = subprocess.run(["git", "cat-file", "-e", f"{sha}^{{commit}}"], cwd=mirror,
                                capture_output=True, env=_git_env())
        return result.returncode == 0

    def _fetch(self, mirror: Path, url: str, shas: list[str], env: dict[str, str]) -> None:
        # Payload values go after `--`: git never reads them as options.
        direct = self._git(["fetch", "-q", "--no-tags", "--", url, *shas], cwd=mirror, env=env, check=False)
        if direct.returncode == 0 and all(self._has_commit(mirror, s) for s in shas):
            return
        refs = ["+refs/heads/*:refs/remotes/origin/*", "+refs/pull/*/head:refs/remotes/pull/*"]
        fallback = self._git(["fetch", "-q", "--no-tags", "--", url, *refs], cwd=mirror, env=env, check=False)
        if fallback.returncode != 0:
            message = _last_line(fallback.stderr) or _last_line(direct.stderr) or "git fetch failed"
            raise RepositoryError(f"cannot fetch {_redact(url)}: {_redact(message)}",
                                  hint="check the repository URL and the bot's access to it")

    def _add_worktree(self, mirror: Path, tree: Path, sha: str) -> None:
        if tree.exists():
            shutil.rmtree(tree)
        tree.parent.mkdir(parents=True, exist_ok=True)
        self._git(["worktree", "prune"], cwd=mirror, check=False)
        result = self._git(["worktree", "add", "-q", "--detach", "-f", "--", str(tree), sha], cwd=mirror, check=False)
        if result.returncode != 0:
            shutil.rmtree(tree, ignore_errors=True)
            raise RepositoryError(f"cannot check out {sha[:12]}: {_last_line(result.stderr)}")

    def _auth_env(self, repo: RepoRef) -> dict[str, str]:
        token = self.token_for(repo) if self.token_for else None
        if not token:
            return {}
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        return {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader",
                "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}"}

    def _git(self, args: list[str], *, cwd: Path, env: dict[str, str] | None = None,
             check: bool = True) -> subprocess.CompletedProcess[str]:
        try:
            result = subprocess.run(["git", *_PROTOCOLS, *args], cwd=cwd, capture_output=True, text=True,
                                    env=_git_env(env), timeout=self.timeout_seconds)
        except subprocess.TimeoutExpired:
            raise RepositoryError(f"git {args[0]} did not finish within {self.timeout_seconds:.0f} s") from None
        if check and result.returncode != 0:
            raise RepositoryError(f"git {args[0]} failed: {_redact(_last_line(result.stderr))}")
        return result


def _git_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "SSL_CERT_FILE")}
    env.update({"GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1"})
    env.update(extra or {})
    return env


def _safe_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "repo"
    return f"{cleaned[:60]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def _last_line(text: str) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _redact(text: str) -> str:
    return re.sub(r"//[^/@\s]+@", "//***@", text)
