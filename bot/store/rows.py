"""Conversions between the domain models (runs, pull requests) and table rows."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, fields
from datetime import date, datetime
from typing import Any

from sqlalchemy import RowMapping

from bot.store.errors import StoreError
from handlers.models import PullRequestRef, RepoRef
from handlers.ports.store import StoredPull
from handlers.run_models import Run, RunPlan, RunState, Transition, Trigger

_REPO_FIELDS = frozenset(f.name for f in fields(RepoRef))
# Labels are not kept: they matter only to the `labeled` event that carries them.
_PULL_FIELDS = tuple(f.name for f in fields(PullRequestRef) if f.name != "labels")


def run_values(run: Run) -> dict[str, Any]:
    """The `runs` row of a run (its transitions go to their own table)."""
    return {
        "id": run.id, "repo": run.repo, "pr": run.pr, "sha": run.sha, "base_sha": run.base_sha,
        "pipeline": run.pipeline, "trigger": run.trigger.value, "triggered_by": run.triggered_by,
        "state": run.state.value, "parameters": json_value(run.id, "parameters", run.parameters),
        "overrides": json_value(run.id, "overrides", run.overrides),
        "plan": json_value(run.id, "plan", run.plan.to_json()), "url": run.url, "error": run.error, "clone_url": run.clone_url,
        "installation_id": run.installation_id, "created_at": run.created_at, "updated_at": run.updated_at,
    }


def transition_values(run_id: str, seq: int, state: RunState, at: datetime, detail: str) -> dict[str, Any]:
    """One `transitions` row."""
    return {"run_id": run_id, "seq": seq, "state": state.value, "at": at, "detail": detail}


def run_from_row(row: RowMapping, history: Iterable[RowMapping]) -> Run:
    """A run from its `runs` row and its `transitions` rows (in order)."""
    return Run(
        id=row["id"], repo=row["repo"], pr=row["pr"], sha=row["sha"], base_sha=row["base_sha"],
        pipeline=row["pipeline"], trigger=Trigger(row["trigger"]), state=RunState(row["state"]),
        created_at=row["created_at"], updated_at=row["updated_at"], triggered_by=row["triggered_by"],
        parameters=row["parameters"] or {}, overrides=row["overrides"] or {}, plan=RunPlan.from_json(row["plan"]),
        url=row["url"], error=row["error"], clone_url=row["clone_url"],
        installation_id=row["installation_id"],
        transitions=tuple(Transition(state=RunState(t["state"]), at=t["at"], detail=t["detail"])
                          for t in history),
    )


def pull_values(repo: RepoRef, pull: PullRequestRef, installation_id: int | None,
                now: datetime) -> dict[str, Any]:
    """The `pulls` row of a pull request's latest head."""
    values = {name: getattr(pull, name) for name in _PULL_FIELDS}
    values.update(repo=repo.full_name, repo_ref=asdict(repo), installation_id=installation_id,
                  updated_at=now)
    return values


def pull_from_row(row: RowMapping) -> StoredPull:
    """The stored pull request; repository fields this code does not know are ignored."""
    repo = RepoRef(**{k: v for k, v in row["repo_ref"].items() if k in _REPO_FIELDS})
    pull = PullRequestRef(**{name: row[name] for name in _PULL_FIELDS})
    return StoredPull(repo=repo, pull=pull, installation_id=row["installation_id"])


def json_value(run_id: str, name: str, value: Mapping[str, Any]) -> dict[str, Any]:
    """`value` as it will come back from a JSON column; StoreError when it cannot be stored.

    Checked here rather than left to the driver, so that every backend stores the same thing
    and fails the same way, before anything is written.
    """
    try:
        return json.loads(dumps_json(dict(value)))
    except (TypeError, ValueError) as exc:
        raise StoreError(f"run {run_id}: its {name} cannot be stored: {exc}",
                         hint="parameters must be strings, numbers, booleans, lists or mappings") from exc


def dumps_json(value: Any) -> str:
    """JSON for the JSON columns; dates (which YAML settings produce) become ISO strings."""
    return json.dumps(value, default=_json_default, sort_keys=True)


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"a {type(value).__name__} is not JSON: {value!r}")
