"""A run's pipeline diff: what its change does to the compiled pipeline, kept with the run.

The diff is computed once, in the run's compile step (against the pull request's merge base),
and read back by every report of the run (its check summary, the PR comment) and by its page.
It lives in the store's key-value table (scope `run-diff`, JSON), so no table changes shape for it.
A diff that could not be computed is kept too, as a `PipelineDiff` whose `note` says why: the
check then says in one line why there is no diff instead of staying silent.
"""

from __future__ import annotations

import json

from handlers.ports import Store
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
