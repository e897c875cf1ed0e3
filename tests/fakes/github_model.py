"""The in-memory state of the fake GitHub: users, repositories, pull requests, checks, comments, apps.

Plain mutable records owned by `GitHubState`; the fake's handlers change them under the server
lock and `github_bodies` renders them as GitHub's JSON. Ids are global counters, like GitHub's.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any


class Role(StrEnum):
    """A collaborator's role on a repository (`role_name` in GitHub's answers)."""

    ADMIN = "admin"
    MAINTAIN = "maintain"
    WRITE = "write"
    TRIAGE = "triage"
    READ = "read"
    NONE = "none"

    @property
    def legacy_permission(self) -> str:
        """GitHub's `permission` field: maintain shows as write, triage as read."""
        return {Role.MAINTAIN: "write", Role.TRIAGE: "read"}.get(self, self.value)


class CheckStatus(StrEnum):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    # Only GitHub Actions may set these; GitHub rejects them from an App.
    WAITING = "waiting"
    REQUESTED = "requested"
    PENDING = "pending"


class CheckConclusion(StrEnum):
    ACTION_REQUIRED = "action_required"
    CANCELLED = "cancelled"
    FAILURE = "failure"
    NEUTRAL = "neutral"
    SUCCESS = "success"
    SKIPPED = "skipped"
    STALE = "stale"  # only GitHub sets it
    TIMED_OUT = "timed_out"


class StatusState(StrEnum):
    ERROR = "error"
    FAILURE = "failure"
    PENDING = "pending"
    SUCCESS = "success"


class ReactionContent(StrEnum):
    PLUS_ONE = "+1"
    MINUS_ONE = "-1"
    LAUGH = "laugh"
    CONFUSED = "confused"
    HEART = "heart"
    HOORAY = "hooray"
    ROCKET = "rocket"
    EYES = "eyes"


class UserType(StrEnum):
    USER = "User"
    ORGANIZATION = "Organization"
    BOT = "Bot"


class ApiError(Exception):
    """Raised by a handler to answer with GitHub's error body."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.body = {"message": message, **extra,
                     "documentation_url": "https://docs.github.com/rest", "status": str(status)}

    @classmethod
    def not_found(cls) -> ApiError:
        return cls(404, "Not Found")

    @classmethod
    def validation(cls, errors: list[dict[str, Any]]) -> ApiError:
        return cls(422, "Validation Failed", errors=errors)


def now_iso() -> str:
    """Now in GitHub's timestamp format, e.g. 2024-05-01T12:00:00Z."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class User:
    login: str
    id: int
    type: UserType = UserType.USER


@dataclass
class App:
    id: int
    slug: str
    name: str
    owner: User
    bot: User
    public_key_pem: str
    permissions: dict[str, str]
    created_at: str = field(default_factory=now_iso)


@dataclass
class Installation:
    id: int
    app_id: int
    account: User
    repos: set[str] | None  # full names; None = every repository of the account
    permissions: dict[str, str]
    created_at: str = field(default_factory=now_iso)


@dataclass
class Token:
    value: str
    login: str | None = None  # a personal token acts as this user
    installation_id: int | None = None
    expires_at: datetime | None = None
    permissions: dict[str, str] | None = None
    repos: set[str] | None = None


@dataclass
class Issue:
    number: int
    id: int
    title: str
    body: str | None
    user: User
    state: str = "open"
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)
    comment_ids: list[int] = field(default_factory=list)


@dataclass
class Pull:
    number: int
    id: int
    head_sha: str
    head_ref: str
    head_repo: Repo
    base_ref: str
    base_sha: str
    user: User
    title: str
    body: str | None
    draft: bool = False
    state: str = "open"
    merged: bool = False
    created_at: str = field(default_factory=now_iso)


@dataclass
class Repo:
    full_name: str
    id: int
    owner: User
    default_branch: str
    private: bool
    clone_url: str
    fork: bool = False
    created_at: str = field(default_factory=now_iso)
    commits: set[str] = field(default_factory=set)
    branches: dict[str, str] = field(default_factory=dict)  # branch -> head sha
    issues: dict[int, Issue] = field(default_factory=dict)
    pulls: dict[int, Pull] = field(default_factory=dict)
    roles: dict[str, Role] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.full_name.split("/", 1)[1]

    def resolve(self, ref: str) -> str:
        """The commit sha `ref` (a known sha or a branch) names, or GitHub's 422."""
        if ref in self.commits:
            return ref
        if ref in self.branches:
            return self.branches[ref]
        raise ApiError(422, f"No commit found for SHA: {ref}")


@dataclass
class CheckRun:
    id: int
    repo: str
    head_sha: str
    name: str
    app_id: int
    check_suite_id: int
    status: CheckStatus = CheckStatus.QUEUED
    conclusion: CheckConclusion | None = None
    details_url: str | None = None
    external_id: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    output: dict[str, Any] = field(default_factory=dict)
    actions: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Status:
    id: int
    repo: str
    sha: str
    state: StatusState
    context: str
    description: str | None
    target_url: str | None
    creator: User
    created_at: str = field(default_factory=now_iso)


@dataclass
class Comment:
    id: int
    repo: str
    issue_number: int
    body: str
    user: User
    app_id: int | None = None
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)


@dataclass
class Reaction:
    id: int
    comment_id: int
    user: User
    content: ReactionContent
    created_at: str = field(default_factory=now_iso)


class GitHubState:
    """Everything the fake knows. Ids come from separate counters so they never collide by accident."""

    def __init__(self) -> None:
        self.users: dict[str, User] = {}
        self.repos: dict[str, Repo] = {}
        self.apps: dict[int, App] = {}
        self.installations: dict[int, Installation] = {}
        self.tokens: dict[str, Token] = {}
        self.check_runs: dict[int, CheckRun] = {}
        self.check_suites: dict[tuple[str, str, int], int] = {}  # (repo, sha, app id) -> suite id
        self.statuses: list[Status] = []
        self.comments: dict[int, Comment] = {}
        self.reactions: list[Reaction] = []
        self.token_lifetime = timedelta(hours=1)
        self._ids = {kind: itertools.count(start) for kind, start in {
            "user": 5_000_001, "repo": 700_000_001, "issue": 2_000_000_001, "pull": 1_800_000_001,
            "check_run": 21_000_000_001, "check_suite": 19_000_000_001, "status": 30_000_000_001,
            "comment": 1_900_000_001, "reaction": 250_000_001,
        }.items()}

    def next_id(self, kind: str) -> int:
        return next(self._ids[kind])

    def user(self, login: str, type: UserType = UserType.USER) -> User:
        """The user `login`, created on first mention (GitHub has every login the tests name)."""
        if login not in self.users:
            self.users[login] = User(login, self.next_id("user"), type)
        return self.users[login]

    def repo(self, owner: str, name: str) -> Repo:
        """The repository, or a 404 like GitHub's (names are case-insensitive)."""
        wanted = f"{owner}/{name}".lower()
        for full_name, repo in self.repos.items():
            if full_name.lower() == wanted:
                return repo
        raise ApiError.not_found()

    def comment(self, repo: Repo, comment_id: int) -> Comment:
        comment = self.comments.get(comment_id)
        if comment is None or comment.repo != repo.full_name:
            raise ApiError.not_found()
        return comment

    def suite_id(self, repo: str, sha: str, app_id: int) -> int:
        """The check suite of (repo, sha, app): GitHub makes one per app and commit."""
        key = (repo, sha, app_id)
        if key not in self.check_suites:
            self.check_suites[key] = self.next_id("check_suite")
        return self.check_suites[key]
