"""The events the handlers work with: frozen, serialisable, each with an idempotency key.

Every input (a webhook, a command, a build or run status) becomes one of these small events
before any handler sees it; handlers never dig in raw payload dicts. Runs, their states and
plans are `handlers.run_models`; the bus carries these events as JSON (`handlers.event_codec`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from handlers.run_models import RunState, Trigger


class EventKind(enum.Enum):
    """The kinds of event the bus carries; one handler module per kind."""

    PULL_REQUEST = "pull_request"
    ISSUE_COMMENT = "issue_comment"
    PUSH = "push"
    RUN_START = "run.start"
    BUILD_STATUS = "build.status"
    RUN_STATUS = "run.status"
    NOTIFICATION = "notification"
    CHECK_RUN = "check_run"
    CHECK_SUITE = "check_suite"


class CheckAction(enum.Enum):
    """What someone asked of one of the bot's check runs on GitHub."""

    RERUN = "rerequested"
    """The check's "Re-run" link: run that pipeline again at that commit."""
    RUN = "run"
    """The "Run" button of a skipped pipeline's check (`requested_action`, identifier `run`)."""
    CANCEL = "cancel"
    """The "Cancel" button of an unfinished pipeline's check (identifier `cancel`)."""


class PullRequestAction(enum.Enum):
    """`pull_request` actions the bot acts on; others are acknowledged and ignored."""

    OPENED = "opened"
    SYNCHRONIZE = "synchronize"
    REOPENED = "reopened"
    READY_FOR_REVIEW = "ready_for_review"
    CLOSED = "closed"
    # A label added: the runs `autorun.label` held may start.
    LABELED = "labeled"


@dataclass(frozen=True)
class RepoRef:
    """A repository as the bot needs it."""

    full_name: str
    clone_url: str
    default_branch: str = "main"
    html_url: str = ""
    private: bool = False


@dataclass(frozen=True)
class PullRequestRef:
    """A pull request at one head commit."""

    number: int
    title: str
    author: str
    html_url: str
    head_sha: str
    head_ref: str
    head_repo: str
    head_clone_url: str
    base_sha: str
    base_ref: str
    draft: bool = False
    author_association: str = "NONE"
    labels: tuple[str, ...] = ()

    def is_fork(self, repo: RepoRef) -> bool:
        """True when the head lives in another repository (a fork)."""
        return self.head_repo != repo.full_name


@dataclass(frozen=True)
class PullRequestEvent:
    """A `pull_request` webhook the bot acts on."""

    delivery_id: str
    action: PullRequestAction
    repo: RepoRef
    pull: PullRequestRef
    sender: str
    installation_id: int | None = None
    # The label added, for `labeled`.
    label: str | None = None

    kind = EventKind.PULL_REQUEST

    @property
    def key(self) -> str:
        # Each label added is its own event: two labels on one head are two keys.
        label = f":{self.label}" if self.label is not None else ""
        return f"pr:{self.repo.full_name}#{self.pull.number}@{self.pull.head_sha}:{self.action.value}{label}"


@dataclass(frozen=True)
class IssueCommentEvent:
    """A new comment on a pull request (comments on plain issues never get this far)."""

    delivery_id: str
    repo: RepoRef
    number: int
    comment_id: int
    body: str
    author: str
    author_is_bot: bool
    installation_id: int | None = None
    # The PR head the bot knew when the comment arrived (set at receipt): commands on an
    # untrusted author's PR run that commit, never one pushed after the comment.
    head_sha: str | None = None

    kind = EventKind.ISSUE_COMMENT

    @property
    def key(self) -> str:
        return f"comment:{self.repo.full_name}#{self.number}/{self.comment_id}"


@dataclass(frozen=True)
class RunStart:
    """Begin (or resume) the work of a queued run: build, then compile and submit."""

    run_id: str

    kind = EventKind.RUN_START

    @property
    def key(self) -> str:
        return f"run-start:{self.run_id}"


@dataclass(frozen=True)
class BuildStatus:
    """The image build of a run changed state (local builder, or Cloud Build notifications)."""

    run_id: str
    state: RunState
    detail: str = ""
    url: str | None = None
    images: Mapping[str, str] = field(default_factory=dict)

    kind = EventKind.BUILD_STATUS

    @property
    def key(self) -> str:
        return f"build:{self.run_id}:{self.state.value}"


@dataclass(frozen=True)
class RunStatus:
    """The pipeline run of a run changed state (local runner, Vertex AI, KFP)."""

    run_id: str
    state: RunState
    detail: str = ""
    url: str | None = None

    kind = EventKind.RUN_STATUS

    @property
    def key(self) -> str:
        return f"status:{self.run_id}:{self.state.value}"


@dataclass(frozen=True)
class PushEvent:
    """A push to a branch: deploys the pipelines it changed when the branch is a deploy branch."""

    delivery_id: str
    repo: RepoRef
    ref: str
    before: str
    after: str
    pusher: str
    installation_id: int | None = None

    kind = EventKind.PUSH

    @property
    def branch(self) -> str | None:
        """The branch name, or None for tags and other refs."""
        return self.ref.removeprefix("refs/heads/") if self.ref.startswith("refs/heads/") else None

    @property
    def key(self) -> str:
        return f"push:{self.repo.full_name}@{self.after}:{self.ref}"


NOTIFICATION_VERSION = 1


@dataclass(frozen=True)
class Notification:
    """A run state change, as published on the notifications topic (JSON schema version 1,
    `docs/notification.schema.json`); other systems may subscribe to it."""

    run_id: str
    repo: str
    sha: str
    pipeline: str
    trigger: Trigger
    state: RunState
    at: str
    version: int = NOTIFICATION_VERSION
    previous_state: RunState | None = None
    pr: int | None = None
    pr_title: str | None = None
    pr_author: str | None = None
    pr_url: str | None = None
    triggered_by: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    url: str | None = None
    duration_seconds: float | None = None
    error: str | None = None

    kind = EventKind.NOTIFICATION

    @property
    def key(self) -> str:
        return f"notification:{self.run_id}:{self.state.value}"


@dataclass(frozen=True)
class CheckRunEvent:
    """A `check_run` webhook for one of the bot's checks: re-run, or an action button pressed."""

    delivery_id: str
    repo: RepoRef
    action: CheckAction
    check_run_id: int
    name: str
    head_sha: str
    external_id: str
    sender: str
    pull_numbers: tuple[int, ...] = ()
    installation_id: int | None = None

    kind = EventKind.CHECK_RUN

    @property
    def key(self) -> str:
        return f"check_run:{self.repo.full_name}/{self.check_run_id}:{self.action.value}:{self.delivery_id}"


@dataclass(frozen=True)
class CheckSuiteEvent:
    """A `check_suite` `rerequested` webhook: "Re-run all checks" of the bot's suite on a commit."""

    delivery_id: str
    repo: RepoRef
    check_suite_id: int
    head_sha: str
    sender: str
    pull_numbers: tuple[int, ...] = ()
    installation_id: int | None = None

    kind = EventKind.CHECK_SUITE

    @property
    def key(self) -> str:
        return f"check_suite:{self.repo.full_name}/{self.check_suite_id}:{self.delivery_id}"


Event = (PullRequestEvent | IssueCommentEvent | PushEvent | RunStart | BuildStatus | RunStatus | Notification
         | CheckRunEvent | CheckSuiteEvent)
