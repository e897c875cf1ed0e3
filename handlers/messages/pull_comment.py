"""The one bot comment of a pull request, edited in place, and the comment asking a maintainer
for `/ok-to-run` (`handlers/templates/pull_comment.md.j2`, `trusted_line.md.j2`,
`waiting_for_approval.md.j2`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from handlers.messages.checks import TRUSTED_CHECK_NAME
from handlers.messages.guardrails import queue_place
from handlers.messages.pipeline_diff import diff_markdown
from handlers.messages.rendering import MAX_MARKDOWN_CHARS, NO_PAGES, latest_runs, render, run_view
from handlers.messages.results import results_view
from handlers.models import RepoRef
from handlers.queue_models import QueueSpot
from handlers.reports import SUMMARY_MARKER, PullReport, RunPages
from handlers.run_models import Run
from handlers.run_results import RunResults
from pipeline_registry.spec_diff import PipelineDiff


def pull_comment(runs: Sequence[Run], results: Mapping[str, RunResults] | None = None,
                 diffs: Mapping[str, PipelineDiff] | None = None, *, pages: RunPages = NO_PAGES,
                 queues: Mapping[str, QueueSpot] | None = None) -> str:
    """The one bot comment of a PR: hidden marker first, the latest run of each pipeline, their
    results beside the baseline (`results`: run id → results), each one's pipeline diff collapsed
    (`diffs`: run id → diff, in the room the rest leaves), how to reproduce, and a line when the
    newest head changes trusted settings (kept in the runs' plans); each run links to its page
    (`pages`), else to its backend; a waiting run shows its place in line (`queues`: run id → spot)."""
    latest = latest_runs(runs)
    views = [{**run_view(r, pages=pages, queue=_place((queues or {}).get(r.id))), "results": results_view((results or {}).get(r.id))} for r in latest]
    commands = list(dict.fromkeys(v["reproduce"] for v in views))
    newest = max(latest, key=lambda r: r.created_at).sha if latest else None
    trusted = {(c.file, c.key): c for r in latest if r.sha == newest for c in r.plan.trusted_changes}
    line = render("trusted_line.md.j2", MAX_MARKDOWN_CHARS, changes=list(trusted.values()),
                   check=TRUSTED_CHECK_NAME).strip()
    limit = MAX_MARKDOWN_CHARS - len(SUMMARY_MARKER) - len(line) - 2
    body = render("pull_comment.md.j2", limit, runs=views, commands=commands, trusted_line=line, diffs="")
    shown = [diffs[r.id] for r in latest if diffs and r.id in diffs]
    collapsed = diff_markdown(shown, collapsed=True, limit=limit - len(body) - 2) if shown else ""
    if collapsed:
        body = render("pull_comment.md.j2", limit, runs=views, commands=commands, trusted_line=line,
                      diffs=collapsed)
    return f"{SUMMARY_MARKER}\n{body}"


def pull_report(repo: RepoRef, number: int, runs: Sequence[Run], installation_id: int | None,
                results: Mapping[str, RunResults] | None = None,
                diffs: Mapping[str, PipelineDiff] | None = None, *, pages: RunPages = NO_PAGES,
                queues: Mapping[str, QueueSpot] | None = None) -> PullReport:
    """The PR comment of `runs` (the PR's, with their results and pipeline diffs by run id),
    rendered, with each pipeline's state in one line for a log."""
    latest = latest_runs(runs)
    line = ", ".join(f"{r.pipeline}={r.state.value}" for r in latest) or "no pipelines affected"
    return PullReport(repo=repo, number=number, installation_id=installation_id,
                      body=pull_comment(runs, results, diffs, pages=pages, queues=queues),
                      line=line, run_ids=tuple(r.id for r in latest))


def _place(spot: QueueSpot | None) -> str:
    return queue_place(spot) if spot is not None else ""


def waiting_for_approval(author: str, sha: str, pipelines: Sequence[str]) -> str:
    """Comment on a PR from a fork or an outside contributor: runs wait for a maintainer's `/ok-to-run`."""
    return render("waiting_for_approval.md.j2", MAX_MARKDOWN_CHARS, author=author, sha=sha,
                   pipelines=sorted(pipelines))
