"""What a change does to compiled pipelines, as reviewers read it: markdown for checks and the PR
comment (collapsed there), plain text for `kfp-bot diff`. Words in templates/pipeline_diff.*.j2."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from handlers.messages.rendering import MAX_MARKDOWN_CHARS, render
from pipeline_registry.spec_diff import PipelineDiff

# The command line prints everything; a terminal has no size limit worth cutting at. Markdown is
# fitted diff by diff (`_fitted`), never cut by the renderer.
_TEXT_LIMIT = _UNLIMITED = 10_000_000


def diff_markdown(diffs: Sequence[PipelineDiff], *, collapsed: bool = False,
                  limit: int = MAX_MARKDOWN_CHARS) -> str:
    """Each pipeline's diff as a markdown table; `collapsed` wraps each in `<details>` (PR comment).

    At most `limit` characters, the room a check summary or a comment leaves it: a diff too long
    for what is left shows its first changes and how many more there are (never a table or a
    `<details>` cut in the middle); one with no room at all is left out. "" when nothing fits."""
    parts: list[str] = []
    room = limit
    for diff in diffs:
        text = _fitted(diff, collapsed, room)
        if text:
            parts.append(text)
            room -= len(text) + 1
    return "\n".join(parts)


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


def _fitted(diff: PipelineDiff, collapsed: bool, room: int) -> str:
    """One diff in at most `room` characters: whole, else as many of its first changes as fit."""
    def rendered(shown: int) -> str:
        return render("pipeline_diff.md.j2", _UNLIMITED, diffs=[diff_view(diff, shown)], collapsed=collapsed)

    whole = rendered(len(diff.changes))
    if len(whole) <= room:
        return whole
    low, high = 0, len(diff.changes) - 1  # the most changes that fit: binary search, few renders
    if not diff.changes or len(rendered(0)) > room:
        return ""
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if len(rendered(middle)) <= room else (low, middle - 1)
    return rendered(low)


def diff_view(diff: PipelineDiff, shown: int | None = None) -> dict[str, Any]:
    """A diff as the templates see it (these, and the run's page in bot/templates); `shown` keeps
    only the first changes, counting the rest as `more`."""
    changes = diff.changes if shown is None else diff.changes[:shown]
    return {"pipeline": diff.pipeline, "headline": headline(diff), "added": diff.added,
            "removed": diff.removed, "note": diff.note, "more": len(diff.changes) - len(changes),
            "changes": [{"kind": c.kind.value, "subject": c.subject, "before": c.before, "after": c.after}
                        for c in changes]}
