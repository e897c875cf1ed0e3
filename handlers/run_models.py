"""Runs as the bot stores and reports them: their states, triggers, transitions and plans; and
webhook deliveries that failed.

A run is the unit the bot reports on GitHub, in Slack and on its page; its plan is the snapshot
of what the planner said about its pipeline when the run was created (why it runs, which images
it builds), stored with it as JSON (`RunPlan.to_json`/`from_json`).
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline_registry.models import PipelinePlan
    from pipeline_registry.trusted import TrustedChange


class RunState(enum.Enum):
    """Where a run is. Transitions only move forward (see `can_move_to`)."""

    QUEUED = "queued"
    BUILDING = "building"
    COMPILING = "compiling"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    ERROR = "error"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL

    def can_move_to(self, new: RunState) -> bool:
        """Forward-only: notifications arrive duplicated and out of order."""
        if self.terminal:
            return False
        return _RANK[new] > _RANK[self]


_TERMINAL = frozenset({RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED, RunState.SKIPPED,
                       RunState.ERROR})
_RANK = {RunState.QUEUED: 0, RunState.BUILDING: 1, RunState.COMPILING: 2, RunState.RUNNING: 3,
         RunState.SUCCEEDED: 9, RunState.FAILED: 9, RunState.CANCELLED: 9, RunState.SKIPPED: 9,
         RunState.ERROR: 9}


class Trigger(enum.Enum):
    """What started a run."""

    AUTORUN = "autorun"
    COMMAND = "command"
    DEPLOY = "deploy"


TRUSTED_CHANGES_KEY = "trusted_changes"


@dataclass(frozen=True)
class PlanReason:
    """Why a run's pipeline is affected: the changed `path` and how it reaches the pipeline
    (`rule`, `detail`), or only a `text` (rows written before reasons had paths)."""

    text: str
    path: str = ""
    rule: str = ""
    detail: str = ""


@dataclass(frozen=True)
class PlanComponent:
    """A component of a run's pipeline: its image, and whether the run (re)builds it."""

    name: str
    path: str = ""
    shared: bool = False
    image: str | None = None
    rebuild: bool = False


@dataclass(frozen=True)
class PlanTrustedChange:
    """A trusted key the run's head changes (shown on the PR; the default branch's value is used)."""

    file: str
    key: str
    proposed: Any = None
    in_effect: Any = None


@dataclass(frozen=True)
class RunPlan:
    """What the planner said about a run's pipeline when the run was created.

    Stored as JSON in the run's row, in the shape of `PipelinePlan.to_json()` plus
    `trusted_changes` when there are any; `from_json` also reads rows written before a key
    existed (every key is optional, a reason may be plain text).
    """

    name: str = ""
    file: str | None = None
    function: str | None = None
    change: str = "modified"
    reasons: tuple[PlanReason, ...] = ()
    components: tuple[PlanComponent, ...] = ()
    trusted_changes: tuple[PlanTrustedChange, ...] = ()

    @classmethod
    def of(cls, pipeline: PipelinePlan, trusted_changes: Sequence[TrustedChange] = ()) -> RunPlan:
        """The plan of `pipeline`, with the trusted keys its head changes (as JSON-safe values)."""
        return cls.from_json({**pipeline.to_json(), TRUSTED_CHANGES_KEY: [c.to_json() for c in trusted_changes]})

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> RunPlan:
        """The plan stored as `data` (a run's `plan` column, or one pipeline of `Plan.to_json()`)."""
        data = data or {}
        return cls(
            name=str(data.get("name") or ""), file=data.get("file"), function=data.get("function"),
            change=str(data.get("change") or "modified"),
            reasons=tuple(_reason(r) for r in data.get("reasons") or ()),
            components=tuple(_component(c) for c in data.get("components") or ()),
            trusted_changes=tuple(PlanTrustedChange(file=str(c.get("file", "")), key=str(c.get("key", "")),
                                                    proposed=c.get("proposed"), in_effect=c.get("in_effect"))
                                  for c in data.get(TRUSTED_CHANGES_KEY) or () if isinstance(c, Mapping)),
        )

    def to_json(self) -> dict[str, Any]:
        """The stored form (JSON-safe when the trusted values are)."""
        stored: dict[str, Any] = {
            "name": self.name, "file": self.file, "function": self.function, "change": self.change,
            "reasons": [dataclasses.asdict(r) for r in self.reasons],
            "components": [dataclasses.asdict(c) for c in self.components],
        }
        if self.trusted_changes:
            stored[TRUSTED_CHANGES_KEY] = [dataclasses.asdict(c) for c in self.trusted_changes]
        return stored


def _reason(stored: Any) -> PlanReason:
    if not isinstance(stored, Mapping):
        return PlanReason(text=str(stored))
    return PlanReason(text=str(stored.get("text") or ""), path=str(stored.get("path") or ""),
                      rule=str(stored.get("rule") or ""), detail=str(stored.get("detail") or ""))


def _component(stored: Any) -> PlanComponent:
    if not isinstance(stored, Mapping):
        return PlanComponent(name=str(stored))
    return PlanComponent(name=str(stored.get("name") or ""), path=str(stored.get("path") or ""),
                         shared=bool(stored.get("shared")), image=stored.get("image"),
                         rebuild=bool(stored.get("rebuild")))


@dataclass(frozen=True)
class Transition:
    """One state change of a run, with when and why."""

    state: RunState
    at: datetime
    detail: str = ""


@dataclass(frozen=True)
class Run:
    """One pipeline run for one commit, as stored and as shown on GitHub, Slack and the page."""

    id: str
    repo: str
    pr: int | None
    sha: str
    base_sha: str | None
    pipeline: str
    trigger: Trigger
    state: RunState
    created_at: datetime
    updated_at: datetime
    triggered_by: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    overrides: Mapping[str, str] = field(default_factory=dict)
    plan: RunPlan = field(default_factory=RunPlan)
    url: str | None = None
    error: str | None = None
    clone_url: str | None = None
    installation_id: int | None = None
    transitions: tuple[Transition, ...] = ()

    @property
    def duration_seconds(self) -> float | None:
        """Time from creation to the last update for finished runs, to now otherwise."""
        if not self.state.terminal:
            return None
        return (self.updated_at - self.created_at).total_seconds()

    def to_json(self) -> dict[str, Any]:
        """The run as `/api/runs` shows it."""
        return {
            "id": self.id, "repo": self.repo, "pr": self.pr, "sha": self.sha,
            "pipeline": self.pipeline, "trigger": self.trigger.value,
            "triggered_by": self.triggered_by, "state": self.state.value,
            "parameters": dict(self.parameters), "overrides": dict(self.overrides),
            "url": self.url, "error": self.error,
            "created_at": self.created_at.isoformat(), "updated_at": self.updated_at.isoformat(),
            "transitions": [{"state": t.state.value, "at": t.at.isoformat(), "detail": t.detail}
                            for t in self.transitions],
        }


def run_id_for(*parts: object) -> str:
    """A deterministic run id: the same trigger of the same commit always gets the same id."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()
    return f"run-{digest[:16]}"


class FailureStage(enum.Enum):
    """Where a webhook delivery failed: refused at the edge (GitHub saw a 4xx) or in a handler
    after it was accepted (GitHub saw a 202)."""

    REJECTED = "rejected"
    HANDLER = "handler"


@dataclass(frozen=True)
class FailedDelivery:
    """A webhook delivery that did not lead where it should, as `/api/deliveries?failed=1` lists it."""

    delivery_id: str
    event: str
    stage: FailureStage
    reason: str
    at: datetime

    def to_json(self) -> dict[str, Any]:
        """The failure as the API shows it."""
        return {"delivery": self.delivery_id, "event": self.event, "stage": self.stage.value,
                "reason": self.reason, "at": self.at.isoformat()}
