"""Check runs and commit statuses: what a pipeline's check, the head's aggregate `kfp-bot` check and
the trusted-settings notice say (titles, summaries, ≤ 140 character descriptions, buttons).

Rendered from `handlers/templates/` (`check_summary`, `head_summary`, `head_note`, `plan_failed`,
`trusted_settings`, the one-liners of `short.j2`) through `handlers.messages.rendering`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from handlers.messages.guardrails import queue_place
from handlers.messages.pipeline_diff import diff_markdown
from handlers.messages.rendering import (
    MAX_ERROR_CHARS,
    MAX_MARKDOWN_CHARS,
    MAX_STATUS_CHARS,
    MAX_TITLE_CHARS,
    NO_PAGES,
    clip,
    code,
    fit_bytes,
    format_value,
    latest_runs,
    macro,
    render,
    run_view,
    web_url,
)
from handlers.messages.results import results_section
from handlers.models import RepoRef
from handlers.queue_models import QueueSpot
from handlers.reports import CheckButton, HeadOutcome, HeadReport, Notice, RunPages, RunReport
from handlers.run_models import Run, RunState
from handlers.run_results import RunResults
from pipeline_registry.spec_diff import PipelineDiff

HEAD_CHECK_NAME = "kfp-bot"
# The neutral check a head gets when it changes trusted settings.
TRUSTED_CHECK_NAME = "kfp-bot / trusted settings"
# A check run's output summary and text: 65,535 UTF-8 *bytes* (GitHub: "summary exceeds a maximum
# bytesize of 65535"; https://docs.github.com/en/rest/checks/runs). The templates carry emoji.
MAX_CHECK_OUTPUT_BYTES = 65_535


@dataclass(frozen=True)
class HeadNote:
    """What the aggregate check says besides its runs; `failed` concludes it as a failure."""

    text: str = ""
    failed: bool = False

    def __bool__(self) -> bool:
        return bool(self.text.strip())


NoteLike = str | HeadNote | None


def as_note(note: NoteLike) -> HeadNote:
    """A `HeadNote` from a plain string (informational), a note, or nothing."""
    if isinstance(note, HeadNote):
        return note
    return HeadNote(text=note or "")


def plan_failed(reason: str) -> HeadNote:
    """The head could not be planned (fetch failed, bad `.kfp-bot.yaml`, ...): a failing note."""
    return HeadNote(render("plan_failed.md.j2", MAX_ERROR_CHARS, reason=reason), failed=True)


def head_note(*, deleted: Sequence[str] = ()) -> HeadNote:
    """Informational note of a planned head: pipelines the change deleted."""
    return HeadNote(render("head_note.md.j2", MAX_ERROR_CHARS, deleted=list(deleted)))


def head_outcome(runs: Sequence[Run], note: NoteLike = "") -> HeadOutcome:
    """The outcome of a head commit's latest runs, first match wins.

    | runs                                  | outcome        |
    |---------------------------------------|----------------|
    | none, and no note                      | NONE_AFFECTED  |
    | none, with a note (why nothing ran)    | NOT_RUN        |
    | any still queued/building/.../running  | ACTIVE         |
    | any failed or error                    | FAILED         |
    | any cancelled                          | CANCELLED      |
    | all skipped                            | NOT_RUN        |
    | otherwise (succeeded, maybe skipped)   | SUCCEEDED      |
    """
    note = as_note(note)
    if note.failed:
        return HeadOutcome.FAILED
    latest = latest_runs(runs)
    if not latest:
        return HeadOutcome.NOT_RUN if note else HeadOutcome.NONE_AFFECTED
    states = {r.state for r in latest}
    if any(not s.terminal for s in states):
        return HeadOutcome.ACTIVE
    if states & {RunState.FAILED, RunState.ERROR}:
        return HeadOutcome.FAILED
    if RunState.CANCELLED in states:
        return HeadOutcome.CANCELLED
    if states == {RunState.SKIPPED}:
        return HeadOutcome.NOT_RUN
    return HeadOutcome.SUCCEEDED


def check_name(pipeline: str) -> str:
    """The name of a pipeline's check run and commit status context."""
    return f"{HEAD_CHECK_NAME} / {pipeline}"


# Buttons on a pipeline's check run (GitHub App only). GitHub allows at most 3 per check, each with
# an identifier and a label of at most 20 characters and a description of at most 40
# (https://docs.github.com/en/rest/checks/runs). Pressing one sends `check_run.requested_action`
# with the identifier (handlers/check_run.py); the identifiers are `CheckAction` values.
RUN_BUTTON = CheckButton(label="Run", description="Run this pipeline at this commit", identifier="run")
CANCEL_BUTTON = CheckButton(label="Cancel", description="Cancel this pipeline run", identifier="cancel")


def check_buttons(run: Run) -> tuple[CheckButton, ...]:
    """The buttons of a run's check: Run on a skipped pipeline, Cancel on an unfinished one, else none
    (none removes the buttons a check had)."""
    if run.state is RunState.SKIPPED:
        return (RUN_BUTTON,)
    if not run.state.terminal:
        return (CANCEL_BUTTON,)
    return ()


def run_report(run: Run, results: RunResults | None = None, diff: PipelineDiff | None = None, *,
               queue: QueueSpot | None = None, pages: RunPages = NO_PAGES) -> RunReport:
    """Everything a reporter shows for one run's check or commit status (with its results and its
    pipeline diff, when it has them), rendered; `queue`: where a waiting run stands in its
    repository's line; `pages`: where its page is (the check's link: else the backend's)."""
    place = queue_place(queue) if queue is not None else ""
    return RunReport(run=run, name=check_name(run.pipeline), title=check_title(run, queue=place),
                     summary=check_summary(run, results, diff, queue=place, pages=pages),
                     description=status_description(run, queue=place),
                     url=pages.url(run.id) or web_url(run.url),
                     buttons=check_buttons(run))


def head_report(repo: RepoRef, sha: str, runs: Sequence[Run], note: NoteLike,
                installation_id: int | None, *, pages: RunPages = NO_PAGES) -> HeadReport:
    """The aggregate `kfp-bot` check of `sha` from its runs (and a note), rendered."""
    latest = latest_runs(runs)
    return HeadReport(repo=repo, sha=sha, installation_id=installation_id, name=HEAD_CHECK_NAME,
                      outcome=head_outcome(runs, note), title=head_title(runs, note),
                      summary=head_summary(runs, note, pages=pages), description=head_description(runs, note),
                      note=as_note(note).text, run_ids=tuple(r.id for r in runs),
                      started_at=min((r.created_at for r in latest), default=None),
                      finished_at=max((r.updated_at for r in latest), default=None))


def check_title(run: Run, *, queue: str = "") -> str:
    """One line for the check run title: state, and what it is doing or why it stopped."""
    return clip(macro("short.j2", "check_title", run=run_view(run, queue=queue)), MAX_TITLE_CHARS)


def check_summary(run: Run, results: RunResults | None = None, diff: PipelineDiff | None = None, *,
                  queue: str = "", pages: RunPages = NO_PAGES) -> str:
    """Markdown for a pipeline's check: state (a waiting run's place in line), results beside the baseline, why affected, the
    pipeline diff against the merge base (in the room the rest leaves), images, parameters,
    reproduce."""
    view = run_view(run, queue=queue, pages=pages)
    section = results_section(results).strip()
    rest = render("check_summary.md.j2", MAX_MARKDOWN_CHARS, run=view, results=section, diff="")
    table = diff_markdown([diff], limit=MAX_MARKDOWN_CHARS - len(rest) - 2) if diff is not None else ""
    summary = render("check_summary.md.j2", MAX_MARKDOWN_CHARS, run=view, results=section,
                     diff=table) if table else rest
    return fit_bytes(summary, MAX_CHECK_OUTPUT_BYTES)


def status_description(run: Run, *, queue: str = "") -> str:
    """The ≤ 140 character description of a pipeline's commit status (token mode)."""
    return clip(macro("short.j2", "status_description", run=run_view(run, queue=queue)), MAX_STATUS_CHARS)


def head_title(runs: Sequence[Run], note: NoteLike = "") -> str:
    """One line for the aggregate `kfp-bot` check: how many pipelines and where they are."""
    return clip(macro("short.j2", "head_title", **_head_view(runs, note)), MAX_TITLE_CHARS)


def head_description(runs: Sequence[Run], note: NoteLike = "") -> str:
    """The ≤ 140 character description of the aggregate `kfp-bot` commit status."""
    return clip(macro("short.j2", "head_title", **_head_view(runs, note)), MAX_STATUS_CHARS)


def head_summary(runs: Sequence[Run], note: NoteLike = "", *, pages: RunPages = NO_PAGES) -> str:
    """Markdown for the aggregate check: a table of every affected pipeline (each linked to its
    page, else its backend), or why there is none."""
    return fit_bytes(render("head_summary.md.j2", MAX_MARKDOWN_CHARS, **_head_view(runs, note, pages)),
                     MAX_CHECK_OUTPUT_BYTES)


def _head_view(runs: Sequence[Run], note: NoteLike, pages: RunPages = NO_PAGES) -> dict[str, Any]:
    note = as_note(note)
    latest = latest_runs(runs)
    counts: dict[str, int] = {}
    for run in latest:
        counts[run.state.value] = counts.get(run.state.value, 0) + 1
    return {"outcome": head_outcome(runs, note).value, "runs": [run_view(r, pages=pages) for r in latest],
            "counts": counts, "note": note.text.strip()}


def trusted_settings_notice(repo: RepoRef, sha: str, installation_id: int | None,
                            changes: Sequence[Mapping[str, Any]], branch: str,
                            allowed_accounts: Sequence[str]) -> Notice:
    """The neutral `kfp-bot / trusted settings` check of a head that changes trusted settings."""
    title = trusted_settings_title(changes)
    return Notice(repo=repo, sha=sha, installation_id=installation_id, name=TRUSTED_CHECK_NAME, title=title,
                  summary=trusted_settings_summary(changes, branch, allowed_accounts),
                  description=clip(title, MAX_STATUS_CHARS))


def trusted_settings_title(changes: Sequence[Mapping[str, Any]]) -> str:
    """Title of the neutral check on a head that changes trusted settings."""
    count = len(changes)
    return clip(f"{count} trusted setting{'s' if count != 1 else ''} changed: "
                "takes effect after merge", MAX_TITLE_CHARS)


def trusted_settings_summary(changes: Sequence[Mapping[str, Any]], branch: str,
                             allowed_accounts: Sequence[str]) -> str:
    """Summary of that check: each changed key with its proposed and effective value, and service
    accounts the bot will refuse (`changes` are `TrustedChange.to_json()` mappings)."""
    rows = [{"file": c["file"], "key": c["key"], "proposed": _shown_setting(c.get("proposed")),
             "in_effect": _shown_setting(c.get("in_effect"))} for c in changes]
    refused = [{"file": c["file"], "account": c["proposed"]} for c in changes
               if c["key"] == "run.service_account" and c.get("proposed")
               and c["proposed"] not in allowed_accounts]
    return render("trusted_settings.md.j2", MAX_MARKDOWN_CHARS, changes=rows, branch=branch,
                  refused=refused, allowed=list(allowed_accounts))


def _shown_setting(value: Any) -> str:
    return "not set" if value is None else code(format_value(value))
