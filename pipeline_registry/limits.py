"""`limits:` in `.kfp-bot.yaml`: how many runs a repository may have going at once, and per day.

    limits:
      concurrent_runs: 10         # runs of the repository building, compiling or running at once
      concurrent_runs_per_pr: 5   # of those, for one pull request
      runs_per_day: 200           # runs the repository may start in a UTC day
      runs_per_pr_per_day: 50     # runs one pull request may start in a UTC day

A run beyond a concurrency limit waits in the queue (`queued`) until a slot frees; a run beyond a
day's budget does not start. Deploys on merge are neither queued nor budgeted. `limits` is a
trusted key: the default branch's values apply, never a pull request's, and the bot's own
settings cap every value (`capped`). This module is pure configuration (no pydantic at import:
see `config_rules`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pipeline_registry.config_rules import STRICT, Limits

DEFAULT_CONCURRENT_RUNS = 10
DEFAULT_CONCURRENT_RUNS_PER_PR = 5
DEFAULT_RUNS_PER_DAY = 200
DEFAULT_RUNS_PER_PR_PER_DAY = 50


@dataclass(frozen=True)
class LimitsConfig:
    """`limits:` of `.kfp-bot.yaml`; a key left out takes the default above (then the bot's cap)."""

    __pydantic_config__ = STRICT

    concurrent_runs: Annotated[int, Limits(ge=1, le=10_000)] = DEFAULT_CONCURRENT_RUNS
    concurrent_runs_per_pr: Annotated[int, Limits(ge=1, le=10_000)] = DEFAULT_CONCURRENT_RUNS_PER_PR
    runs_per_day: Annotated[int, Limits(ge=0, le=1_000_000)] = DEFAULT_RUNS_PER_DAY
    runs_per_pr_per_day: Annotated[int, Limits(ge=0, le=1_000_000)] = DEFAULT_RUNS_PER_PR_PER_DAY


@dataclass(frozen=True)
class RunLimits:
    """The limits in effect for one repository: its `limits:` capped by the bot's settings."""

    concurrent_runs: int = DEFAULT_CONCURRENT_RUNS
    concurrent_runs_per_pr: int = DEFAULT_CONCURRENT_RUNS_PER_PR
    runs_per_day: int = DEFAULT_RUNS_PER_DAY
    runs_per_pr_per_day: int = DEFAULT_RUNS_PER_PR_PER_DAY

    def to_json(self) -> dict[str, int]:
        """The limits as stored and shown (`/api/runs/<id>`)."""
        return {"concurrent_runs": self.concurrent_runs, "concurrent_runs_per_pr": self.concurrent_runs_per_pr,
                "runs_per_day": self.runs_per_day, "runs_per_pr_per_day": self.runs_per_pr_per_day}

    @classmethod
    def from_json(cls, data: object) -> RunLimits | None:
        """Limits stored by `to_json`; None for anything else (then the caller's default applies)."""
        if not isinstance(data, dict):
            return None
        try:
            return cls(**{key: int(data[key]) for key in cls().to_json()})
        except (KeyError, TypeError, ValueError):
            return None


def capped(config: LimitsConfig, ceiling: RunLimits) -> RunLimits:
    """`config` with no value above the bot's `ceiling` (its settings; a repository can only lower them)."""
    return RunLimits(concurrent_runs=min(config.concurrent_runs, ceiling.concurrent_runs),
                     concurrent_runs_per_pr=min(config.concurrent_runs_per_pr, ceiling.concurrent_runs_per_pr),
                     runs_per_day=min(config.runs_per_day, ceiling.runs_per_day),
                     runs_per_pr_per_day=min(config.runs_per_pr_per_day, ceiling.runs_per_pr_per_day))
