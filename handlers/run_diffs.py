"""A run's pipeline diff: what its change does to the compiled pipeline, kept with the run.

The diff is computed once, in the run's compile step (against the pull request's merge base),
and read back by every report of the run (its check summary, the PR comment) and by its page.
It lives in the store's key-value table (scope `run-diff`, JSON), so no table changes shape for it.
A diff that could not be computed is kept too, as a `PipelineDiff` whose `note` says why: the
check then says in one line why there is no diff instead of staying silent.
"""

from __future__ import annotations

import json
from pathlib import Path

from handlers.context import HandlerContext
from handlers.ports.store import Store
from handlers.run_models import Run
from kfp_bot_errors import KfpBotError
from pipeline_registry.spec_diff import PipelineDiff

# run id -> the run's PipelineDiff as JSON (PipelineDiff.to_json).
DIFF_SCOPE = "run-diff"


def save_diff(store: Store, run_id: str, diff: PipelineDiff) -> None:
    """Keep `diff` as the pipeline diff of run `run_id` (a later save replaces it)."""
    store.set_external(DIFF_SCOPE, run_id, json.dumps(diff.to_json(), sort_keys=True))


def load_diff(store: Store, run_id: str) -> PipelineDiff | None:
    """The pipeline diff kept for run `run_id`; None when none was computed (yet, or ever: runs
    that compile nothing, runs from before diffs were kept). A stored value that cannot be read
    comes back as a diff whose note says so, so whoever shows it shows why there is no table."""
    text = store.get_external(DIFF_SCOPE, run_id)
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError as exc:
        return PipelineDiff("", note=f"the stored diff is unreadable: {exc}")
    if not isinstance(data, dict):
        return PipelineDiff("", note="the stored diff is unreadable: not a JSON object")
    try:
        return PipelineDiff.from_json(data)
    except ValueError as exc:
        pipeline = data.get("pipeline")
        return PipelineDiff(pipeline if isinstance(pipeline, str) else "", note=f"the stored diff is unreadable: {exc}")


def diff_run(ctx: HandlerContext, run: Run, repo_dir: Path, head_package: Path) -> PipelineDiff | None:
    """In the run's compile step: its pipeline diff against its merge base, kept with the run; None
    for a run with no base (a push that created its branch). A diff that cannot be made raises
    nothing: it is kept as its reason, and the run goes on."""
    if not run.base_sha:
        return None
    diff = pipeline_diff(ctx, repo_dir, run.pipeline, run.base_sha, head_package=head_package)
    save_diff(ctx.store, run.id, diff)
    return diff


def pipeline_diff(ctx: HandlerContext, repo_dir: Path, pipeline: str, base_sha: str, *,
                  head_package: Path | None = None) -> PipelineDiff:
    """`pipeline`'s diff against the merge base of `base_sha` through the `PipelineDiffs` port, or
    a diff whose note says in one line why there is none (the port missing or failing)."""
    if ctx.diffs is None:
        return PipelineDiff(pipeline, note="No pipeline diff: this kfp-bot compares no compiled pipelines.")
    try:
        return ctx.diffs.diff_against_base(repo_dir, pipeline, base_sha, head_package=head_package)
    except KfpBotError as exc:
        return PipelineDiff(pipeline, note=f"No pipeline diff against the merge base: {_one_line(str(exc))}")
    except Exception as exc:  # a diff is extra information: its failure must not fail the run
        ctx.log.exception("pipeline diff of %s failed", pipeline)
        return PipelineDiff(pipeline, note=f"No pipeline diff: kfp-bot failed to compare ({type(exc).__name__}; "
                                           "see the bot's log).")


def _one_line(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else "no reason given"
    return first if len(first) <= 300 else first[:299] + "…"
