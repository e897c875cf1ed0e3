"""The small ports handlers talk to, as `typing.Protocol`s with domain names.

Handlers never see a concrete client: `bot/` builds adapters (SQLAlchemy store, PyGithub
reporter, git checkout, local or Cloud Build builder, kfp.local or Vertex AI runner) and hands
them over in a `HandlerContext`. Swapping the embedded defaults for Google Cloud changes the
adapters, never the handlers.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from handlers.models import Event, PullRequestRef, RepoRef
from handlers.queue_models import SlotClaim
from handlers.reports import HeadReport, Notice, PullReport, RunReport
from handlers.run_models import FailedDelivery, FailureStage, Run, RunPlan, RunState
from pipeline_registry.limits import RunLimits
from pipeline_registry.models import ComponentPlan, PipelineInput
from pipeline_registry.repo_config import RepoConfig, Target
from pipeline_registry.settings import RunOptions, ScheduleOptions
from pipeline_registry.spec_diff import PipelineDiff

Then = Callable[[Run], Sequence[Event]]
"""What a stored state change causes: the events to queue for the run as it is after the change."""


@dataclass(frozen=True)
class StoredPull:
    """What the store remembers of a pull request (its latest head)."""

    repo: RepoRef
    pull: PullRequestRef
    installation_id: int | None = None


@dataclass(frozen=True)
class ChatMessage:
    """A posted chat message: the channel's ID (as the chat service answered it, never the
    configured name: Slack edits only by ID) and the message's id (Slack's `ts`)."""

    channel: str
    ts: str


class Store(Protocol):
    """Runs, deliveries, pull requests and approvals that must survive a restart."""

    def record_delivery(self, delivery_id: str, event: str) -> bool:
        """Remember a webhook delivery; False when it was seen before (atomic)."""

    def has_delivery(self, delivery_id: str) -> bool:
        """Whether a webhook delivery was recorded (read-only)."""

    def record_message(self, key: str) -> bool:
        """Remember a processed bus message key; False when it was processed before."""

    def accept_delivery(self, delivery_id: str, event_name: str, event: Event, *,
                        head: StoredPull | None = None) -> tuple[int, ...] | None:
        """Record a delivery, queue its event (a comment bound to its pull request's stored head,
        `handlers.receipt`) and remember the pull request `head` it announces, in one
        transaction; None (and nothing stored) for a delivery seen before."""

    def run_has_work(self, run_id: str) -> bool:
        """True while a step of the run is queued or owned by a live worker."""

    def pending_work(self) -> int:
        """How many queued events are not done yet."""

    def record_delivery_failure(self, delivery_id: str, event: str, stage: FailureStage, reason: str) -> None:
        """Keep a failed delivery queryable (`/api/deliveries?failed=1`) with the reason."""

    def list_delivery_failures(self, *, delivery_id: str | None = None, limit: int = 50) -> list[FailedDelivery]:
        """Failed deliveries (or the failures of one), newest first."""

    def save_pull(self, repo: RepoRef, pull: PullRequestRef, installation_id: int | None) -> None:
        """Remember the latest head of a pull request."""

    def get_pull(self, repo: str, number: int) -> StoredPull | None:
        """The last pull request event stored for `repo#number`."""

    def approve(self, repo: str, number: int, sha: str, by: str) -> None:
        """Record a maintainer's `/ok-to-run` for one exact head commit."""

    def is_approved(self, repo: str, number: int, sha: str) -> bool:
        """True when `/ok-to-run` was given for this exact head commit."""

    def create_run(self, run: Run) -> bool:
        """Insert a run; False when a run with that id already exists (redelivery)."""

    def get_run(self, run_id: str) -> Run | None:
        """One run with its transitions."""

    def transition(self, run_id: str, state: RunState, *, detail: str = "", url: str | None = None,
                   error: str | None = None, then: Then | None = None) -> Run | None:
        """Move a run forward; None (and no change) when the move is not forward. The events
        `then(moved_run)` gives are queued in the same transaction as the change."""

    def claim_slot(self, run_id: str, limits: RunLimits, *, day_start: datetime, detail: str = "",
                   then: Then | None = None) -> SlotClaim:
        """Move the queued run to building when its repository has a slot free for it (oldest
        queued first, per-PR limit, budgets counted since `day_start`), atomically across workers
        and instances; otherwise say why it waits or must not start."""

    def count_started(self, repo: str, *, since: datetime, pr: int | None = None) -> int:
        """Runs of `repo` (of pull request `pr`) that started building since `since`, deploys not counted."""

    def update_run(self, run_id: str, *, parameters: Mapping[str, Any] | None = None,
                   url: str | None = None, plan: RunPlan | None = None) -> Run | None:
        """Update details of a run without changing its state."""

    def list_runs(self, *, repo: str | None = None, pr: int | None = None, sha: str | None = None,
                  pipeline: str | None = None, state: RunState | None = None,
                  active: bool | None = None, limit: int = 200) -> list[Run]:
        """Runs matching every given filter, newest first."""

    def get_external(self, scope: str, key: str) -> str | None:
        """An id the bot keeps for a remote object (check run id, comment id, build id)."""

    def get_chat_thread(self, key: str) -> ChatMessage | None:
        """The parent message of chat thread `key` (channel ID and ts), or None."""

    def set_chat_thread(self, key: str, message: ChatMessage) -> None:
        """Remember the parent message of chat thread `key` (replacing the one kept before)."""

    def set_external(self, scope: str, key: str, value: str) -> None:
        """Remember an id for a remote object."""


class Bus(Protocol):
    """Where handlers put follow-up work (in-process queue or Pub/Sub)."""

    def publish(self, event: Event) -> None:
        """Enqueue an event; raises on failure so nothing is lost silently."""


class Source(Protocol):
    """Git checkouts of the commits the bot works on."""

    def checkout(self, repo: RepoRef, clone_url: str, sha: str, *, base_sha: str | None = None) -> Path:
        """A directory holding the tree at `sha`, a git work tree in which `base_sha` also exists."""

    def branch_head(self, repo: RepoRef, clone_url: str, branch: str) -> str:
        """The commit `branch` points at now (fetched): where trusted settings are read from."""


class BuildState(enum.Enum):
    """Outcome of asking a builder for images."""

    SUCCEEDED = "succeeded"
    STARTED = "started"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class BuildRequest:
    """Images to build for one run: the components whose content changed."""

    run_id: str
    repo: str
    sha: str
    pr: int | None
    pipeline: str
    repo_dir: Path
    components: tuple[ComponentPlan, ...]
    # The run's base (a pull request's base branch commit): a builder that compiles may compile
    # the pipeline at the merge base too, for the run's pipeline diff.
    base_sha: str | None = None


@dataclass(frozen=True)
class BuildOutcome:
    """What a builder did; STARTED means a status event will follow on the bus."""

    state: BuildState
    detail: str = ""
    url: str | None = None


class Builder(Protocol):
    """Builds component images (local container engine, Cloud Build)."""

    def build(self, request: BuildRequest) -> BuildOutcome:
        """Build (or start building) the images of `request`."""

    def build_status(self, run: Run) -> BuildOutcome | None:
        """Where the run's build is now (reconcile); None when the builder knows no build for it."""


class CompiledPackage(Protocol):
    """A compiled pipeline as handlers see it (`deploy.compiler.CompiledPipeline` is one)."""

    package_path: Path
    inputs: tuple[PipelineInput, ...]
    images: tuple[str, ...]


class Compiler(Protocol):
    """Compiles a pipeline of a checked-out repository with images substituted."""

    def compile(self, repo_dir: Path, pipeline: str, images: Mapping[str, str],
                out_dir: Path, *, config: RepoConfig | None = None, along: Sequence[str] = ()) -> CompiledPackage:
        """The compiled package; raises `CompileError` with a clear message. `config` replaces the
        checked-out `.kfp-bot.yaml` (trusted keys from the default branch); limits are capped.
        `along` names pipelines of the same checkout to be compiled soon (a pull request's other
        runs): a compiler may compile them in the same batch, for their own `compile` to take."""

    def warm_up(self) -> None:
        """A compile is likely soon (a pull request's new head is being planned): start now what
        it will need, so that its start-up overlaps the checkout and the plan. Never raises."""

    def close(self) -> None:
        """End whatever `warm_up` started and no compile took (the service is stopping)."""


class PipelineDiffs(Protocol):
    """What a change does to a compiled pipeline: its structural diff against the merge base."""

    def diff_against_base(self, repo_dir: Path, pipeline: str, base_sha: str, *,
                          head_package: Path | None = None) -> PipelineDiff:
        """`pipeline` of the checkout at `repo_dir` against the merge base of `base_sha` and its
        HEAD, the base compiled like the head (same compiler, sandbox and limits; cached by
        content). `head_package` is the head's package when it is compiled already. A diff that
        cannot be made here at all is a diff with a `note` saying why; a side that fails to
        compile raises a `KfpBotError` naming it."""


@dataclass(frozen=True)
class RunRequest:
    """Everything a runner needs to submit one pipeline run."""

    run: Run
    package: CompiledPackage
    parameters: Mapping[str, Any]
    options: RunOptions = RunOptions()
    labels: Mapping[str, str] = field(default_factory=dict)
    target: Target | None = None


@dataclass(frozen=True)
class RunSubmission:
    """What a runner did: a final state (synchronous runners) or RUNNING with a link."""

    state: RunState
    url: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class CollectedResults:
    """What a finished run produced, as its backend reports it: numeric metrics (from artifacts
    of the types `system.Metrics` and `system.ClassificationMetrics`, name → number, in the
    order the tasks reported them) and scalar outputs (name → JSON value). `note` says what
    could not be read (e.g. a task whose outputs were unreadable)."""

    metrics: Mapping[str, float] = field(default_factory=dict)
    outputs: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""


class Runner(Protocol):
    """Submits and cancels pipeline runs (kfp.local, Vertex AI, KFP endpoint)."""

    def submit_run(self, request: RunRequest) -> RunSubmission:
        """Submit a run; synchronous runners return its final state."""

    def cancel_run(self, run: Run) -> None:
        """Cancel a run that is still going; a no-op when it is not."""

    def run_status(self, run: Run) -> RunSubmission | None:
        """Where the run is now on the backend (reconcile); None when the backend does not know it."""

    def run_results(self, run: Run) -> CollectedResults | None:
        """The outputs and metrics of a run that ended; None when this backend does not know the
        run or does not report results. Raises `KfpBotError` when it cannot be asked."""


class Reporter(Protocol):
    """Shows runs where people look: checks, statuses, the PR comment (GitHub), or the log.

    It delivers what the handlers rendered (`handlers.reports`); it never chooses words."""

    def run_changed(self, report: RunReport) -> None:
        """The per-pipeline check (or commit status) of a run."""

    def head_summary(self, report: HeadReport) -> None:
        """The aggregate `kfp-bot` check of a head commit, which always concludes."""

    def pull_summary(self, report: PullReport) -> None:
        """The one bot comment of a PR, created once and edited in place."""

    def acknowledge(self, repo: RepoRef, comment_id: int, installation_id: int | None) -> None:
        """React to an accepted command."""

    def notice(self, notice: Notice) -> None:
        """A neutral, completed check on a commit (e.g. trusted settings changed by a PR)."""

    def reply(self, repo: RepoRef, number: int, body: str, installation_id: int | None) -> None:
        """Answer a command on the PR (refusals, errors, plans, help): `body` is rendered markdown."""


class Permissions(Protocol):
    """Who may run pipelines."""

    def can_write(self, repo: RepoRef, user: str, installation_id: int | None) -> bool:
        """True when `user` has write (or higher) permission on `repo`."""


class PullRequests(Protocol):
    """Pull request look-ups for commands (GitHub, or the store in embedded mode)."""

    def get_pull(self, repo: RepoRef, number: int, installation_id: int | None) -> PullRequestRef | None:
        """The pull request as it is now (head commit, clone URL), or None."""


class Chat(Protocol):
    """A chat service the notifier posts to (Slack)."""

    def post(self, channel: str, message: Mapping[str, Any], *, thread: str | None = None) -> ChatMessage:
        """Post `message` ({"text", "blocks"}) to `channel` (a name or an ID; in `thread`): the
        posted message, with the channel's ID."""

    def update(self, channel: str, message_id: str, message: Mapping[str, Any]) -> None:
        """Replace a posted message; `channel` is the channel's ID (`ChatMessage.channel`)."""


class TemplateStore(Protocol):
    """Where compiled pipelines are uploaded on deploy (Artifact Registry, GCS, a local folder)."""

    def upload(self, pipeline: str, package: CompiledPackage, *, version: str,
               tags: Sequence[str], metadata: Mapping[str, str]) -> str:
        """Upload a compiled template; returns its reference (URL or path)."""


class Schedules(Protocol):
    """Recurring runs of deployed templates (Vertex AI schedules, KFP recurring runs)."""

    def apply(self, pipeline: str, template: str, schedule: ScheduleOptions, *,
              parameters: Mapping[str, Any]) -> str:
        """Create or update the pipeline's schedule (resumed if it was paused); its id."""

    def remove(self, pipeline: str) -> None:
        """Pause or delete the pipeline's schedule (as the bot is set up to); nothing when it has none."""


@dataclass(frozen=True)
class Ignored:
    """A decoder's answer for a notification of its own service that needs nothing from the bot
    (another team's build, a state the bot does not act on): acknowledged quietly, at debug level."""

    reason: str


class NotificationDecoder(Protocol):
    """Turns a backend's own notification (a Pub/Sub message) into a bot event, or None if not its own."""

    def decode_notification(self, attributes: Mapping[str, str], data: bytes) -> Event | Ignored | None:
        """E.g. a Cloud Build `cloud-builds` message → `BuildStatus`; its own messages that need
        nothing → `Ignored`; shapes it does not know → None (the next decoder is asked)."""


class Clock(Protocol):
    """Time, injectable for tests."""

    def now(self) -> datetime:
        """The current UTC time."""
