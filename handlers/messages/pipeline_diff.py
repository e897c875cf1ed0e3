"""What a change does to compiled pipelines, as reviewers read it: markdown for checks and the PR
comment (collapsed there), plain text for `kfp-bot diff`. Words in templates/pipeline_diff.*.j2."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from handlers.messages.rendering import MAX_MARKDOWN_CHARS, render
from pipeline_registry.spec_diff import PipelineDiff

# The command line prints everything; a terminal has no size limit worth cutting at.
_TEXT_LIMIT = 10_000_000


def diff_markdown(diffs: Sequence[PipelineDiff], *, collapsed: bool = False) -> str:
    """Each pipeline's diff as a markdown table; `collapsed` wraps each in `<details>` (PR comment)."""
    return render("pipeline_diff.md.j2", MAX_MARKDOWN_CHARS, diffs=[diff_view(d) for d in diffs],
                  collapsed=collapsed)


def diff_text(diffs: Sequence[PipelineDiff], *, base: str, head: str) -> str:
    """`kfp-bot diff` output: a headline per pipeline, then one line per change."""
    return render("pipeline_diff.txt.j2", _TEXT_LIMIT, diffs=[diff_view(d) for d in diffs], base=base, head=head)


def headline(diff: PipelineDiff) -> str:
    """A few words for a title or a collapsed summary: "3 changes", "unchanged", "new pipeline"."""
    if diff.added:
        return "new pipeline"
    if diff.removed:
        return "removed"
    if diff.note and not diff.changes:
        return "not compared"
    count = len(diff.changes)
    return "unchanged" if count == 0 else f"{count} change{'s' if count != 1 else ''}"


def diff_view(diff: PipelineDiff) -> dict[str, Any]:
    """A diff as the templates see it (these, and the run's page in bot/templates)."""
    return {"pipeline": diff.pipeline, "headline": headline(diff), "added": diff.added,
            "removed": diff.removed, "note": diff.note,
            "changes": [{"kind": c.kind.value, "subject": c.subject, "before": c.before, "after": c.after}
                        for c in diff.changes]}
