"""Trusted settings: the keys a pull request cannot change for its own runs.

Who may run, limits, targets and the identity a pipeline runs as decide what a pull request's
code may do; they are read from the repository's default branch, never from the pull request.
A pull request that edits them gets runs with the default branch's values and a notice that
its change takes effect after merge. This module is pure: it merges and compares configurations;
`handlers` fetches the default branch and reports.

Trusted keys (the README has the same table):

| file | key |
|---|---|
| `.kfp-bot.yaml` | `allowed_users`, `autorun`, `target`, `limits`, `compile.timeout_seconds`, `compile.memory_mb` |
| `.kfp-bot.yaml` | `pipelines.<name>.allowed_users`, `.autorun`, `.target` |
| `settings.yaml` | `run.service_account`, `run.target`, `run.pipeline_root`, `run.timeout`, `run.gates` |
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from pipeline_registry.autorun import AutorunRule
from pipeline_registry.config_rules import plain
from pipeline_registry.limits import LimitsConfig
from pipeline_registry.repo_config import CONFIG_FILE, PipelineOverride, RepoConfig
from pipeline_registry.settings import RunOptions

CONFIG_KEYS = ("allowed_users", "autorun", "target", "limits")
COMPILE_KEYS = ("timeout_seconds", "memory_mb")
PIPELINE_KEYS = ("allowed_users", "autorun", "target")
RUN_KEYS = ("service_account", "target", "pipeline_root", "timeout", "gates")


@dataclass(frozen=True)
class TrustedChange:
    """A trusted key whose value in the pull request differs from the default branch's."""

    file: str
    key: str
    proposed: Any
    in_effect: Any

    def to_json(self) -> dict[str, Any]:
        """The change as stored with a run's plan (JSON-safe values)."""
        return {"file": self.file, "key": self.key, "proposed": _plain(self.proposed),
                "in_effect": _plain(self.in_effect)}


def trusted_config(head: RepoConfig, trusted: RepoConfig) -> RepoConfig:
    """`head`'s configuration with every trusted key taken from `trusted` (the default branch)."""
    pipelines: dict[str, PipelineOverride] = {}
    for name in sorted(set(head.pipelines) | set(trusted.pipelines)):
        mine = head.pipelines.get(name, PipelineOverride())
        theirs = trusted.pipelines.get(name, PipelineOverride())
        pipelines[name] = replace(mine, **{key: getattr(theirs, key) for key in PIPELINE_KEYS})
    compile_ = replace(head.compile, **{key: getattr(trusted.compile, key) for key in COMPILE_KEYS})
    return head.replace(**{key: getattr(trusted, key) for key in CONFIG_KEYS}, compile=compile_, pipelines=pipelines)


def capped_compile(config: RepoConfig, *, max_timeout_seconds: int, max_memory_mb: int) -> RepoConfig:
    """`config` with its compile limits no higher than the bot's caps."""
    limits = config.compile
    capped = replace(limits, timeout_seconds=min(limits.timeout_seconds, max_timeout_seconds),
                     memory_mb=min(limits.memory_mb, max_memory_mb))
    return config.replace(compile=capped)


def trusted_run_options(head: RunOptions, trusted: RunOptions) -> RunOptions:
    """`head`'s run options with the trusted ones (identity, target, pipeline root) from `trusted`."""
    return head.model_copy(update={key: getattr(trusted, key) for key in RUN_KEYS})


def config_changes(head: RepoConfig, trusted: RepoConfig) -> list[TrustedChange]:
    """Trusted keys of `.kfp-bot.yaml` that the pull request changes."""
    changes = [TrustedChange(CONFIG_FILE, key, getattr(head, key), getattr(trusted, key))
               for key in CONFIG_KEYS if getattr(head, key) != getattr(trusted, key)]
    changes += [TrustedChange(CONFIG_FILE, f"compile.{key}", getattr(head.compile, key),
                              getattr(trusted.compile, key))
                for key in COMPILE_KEYS if getattr(head.compile, key) != getattr(trusted.compile, key)]
    for name in sorted(set(head.pipelines) | set(trusted.pipelines)):
        mine, theirs = head.override(name), trusted.override(name)
        changes += [TrustedChange(CONFIG_FILE, f"pipelines.{name}.{key}", getattr(mine, key), getattr(theirs, key))
                    for key in PIPELINE_KEYS if getattr(mine, key) != getattr(theirs, key)]
    return changes


def run_option_changes(file: str, head: RunOptions, trusted: RunOptions) -> list[TrustedChange]:
    """Trusted `run:` keys of a pipeline's `settings.yaml` that the pull request changes."""
    return [TrustedChange(file, f"run.{key}", getattr(head, key), getattr(trusted, key))
            for key in RUN_KEYS if getattr(head, key) != getattr(trusted, key)]


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, AutorunRule):
        return str(value)
    if isinstance(value, LimitsConfig):
        return plain(value)
    return getattr(value, "value", value)
