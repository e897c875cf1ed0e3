"""When a pull request's affected pipelines run by themselves: `autorun` in `.kfp-bot.yaml`.

`autorun: true` (the default) runs every affected pipeline on each new head, `false` only plans
them. A rule narrows it, for the whole repository or one pipeline (`pipelines.<name>.autorun`):

    autorun:
      label: run-pipelines        # only pull requests carrying this label run by themselves
    pipelines:
      training:
        autorun:
          paths: ["pipelines/training/**", "utils/**"]   # only when the change reaches these

A pipeline held by its rule is still planned and shown (a skipped check saying why); adding the
label later runs it, and `/run NAME` always does. `autorun` is a trusted key: the default
branch's value applies to a pull request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pipeline_registry.config_rules import STRICT, After, Before
from pipeline_registry.globs import clean_pattern, glob_regex


def _switch(value: Any) -> Any:
    if isinstance(value, bool):
        return {"enabled": value}
    if not isinstance(value, Mapping):
        raise ValueError("must be true, false, or a rule with `label` and/or `paths`")
    return value


def _label(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise ValueError("must be the name of a label (e.g. run-pipelines)")
    return value.strip() if value is not None else None


def _paths(value: tuple[str, ...]) -> tuple[str, ...]:
    cleaned = tuple(clean_pattern(pattern) for pattern in value)
    if any(not pattern for pattern in cleaned):
        raise ValueError("each path must be a glob pattern such as 'pipelines/training/**'")
    return cleaned


@dataclass(frozen=True)
class AutorunRule:
    """`autorun`: on or off, and when on, only with a label and/or when the change reaches `paths`.

    `autorun: true` / `false` in the file are rules too (`enabled`), so every form is one model
    and an error in a rule names its key (`autorun.label`)."""

    __pydantic_config__ = STRICT

    enabled: bool = True
    label: Annotated[str | None, After(_label)] = None
    paths: Annotated[tuple[str, ...], After(_paths)] = ()

    def __str__(self) -> str:
        if not self.enabled or (self.label is None and not self.paths):
            return "true" if self.enabled else "false"
        parts = ([f"label {self.label}"] if self.label else []) + ([f"paths {', '.join(self.paths)}"]
                                                                     if self.paths else [])
        return "; ".join(parts)


# `autorun` as written in the file: `true` and `false` stand for `{enabled: ...}`.
Autorun = Annotated[AutorunRule, Before(_switch)]

ALWAYS = AutorunRule()


def autorun_hold(rule: AutorunRule, pipeline: str, *, labels: Iterable[str], paths: Iterable[str]) -> str | None:
    """Why `pipeline` does not run by itself on this pull request, or None when it does.

    `labels` are the pull request's labels; `paths` the changed files that reach the pipeline
    (its plan's reasons)."""
    if not rule.enabled:
        return f"autorun is off in .kfp-bot.yaml: comment /run {pipeline}"
    if rule.label is not None and rule.label not in set(labels):
        return (f"runs by itself only with the label `{rule.label}` (.kfp-bot.yaml autorun.label): "
                f"add the label, or comment /run {pipeline}")
    if rule.paths and not any(glob_regex(p).match(path) for p in rule.paths for path in paths):
        shown = ", ".join(rule.paths)
        return (f"runs by itself only when the change reaches {shown} (.kfp-bot.yaml autorun.paths): "
                f"comment /run {pipeline}")
    return None
