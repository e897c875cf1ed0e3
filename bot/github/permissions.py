"""Who may run pipelines, asked of GitHub: write access (or more) to the repository.

Commands arrive in bursts (`/run a`, `/run b`, `/cancel` within a minute), so answers are kept
for a short time per (repository, user); a permission change is seen after at most that long.
A failed look-up raises `GitHubError`, which the command handler turns into a visible refusal.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from bot.github.client import GitHubClients
from handlers.context import UtcClock
from handlers.models import RepoRef
from handlers.ports.events import Clock

# GitHub's legacy `permission` field shows maintain as write; role names are accepted too.
WRITE_PERMISSIONS = frozenset({"admin", "maintain", "write"})


class GitHubPermissions:
    """`Permissions` from the collaborator permission endpoint, cached for `ttl_seconds`."""

    def __init__(self, clients: GitHubClients, ttl_seconds: float = 60.0, clock: Clock | None = None) -> None:
        self.clients = clients
        self.ttl = timedelta(seconds=ttl_seconds)
        self.clock = clock or UtcClock()
        self._cache: dict[tuple[str, str], tuple[datetime, bool]] = {}
        self._lock = threading.Lock()

    def can_write(self, repo: RepoRef, user: str, installation_id: int | None) -> bool:
        """True when `user` has write, maintain or admin permission on `repo`."""
        key = (repo.full_name.lower(), user.lower())
        now = self.clock.now()
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        gh = self.clients.repo(repo.full_name, installation_id)
        permission = self.clients.call(f"checking the permission of @{user} on {repo.full_name}",
                                       lambda: gh.get_collaborator_permission(user))
        allowed = str(permission).lower() in WRITE_PERMISSIONS
        if self.ttl.total_seconds() > 0:
            with self._lock:
                self._cache[key] = (now + self.ttl, allowed)
        return allowed
