"""The pipeline diff as reviewers read it, for every kind of change, against golden files.

Markdown for a pipeline's check (a table), collapsed `<details>` for the PR comment, plain text
for `kfp-bot diff`. Hostile text (a `|` or backticks in a task name or value) cannot break the
table.
"""

from __future__ import annotations

from handlers.messages.pipeline_diff import diff_markdown, diff_text, headline
from pipeline_registry.spec_diff import Change, ChangeKind, PipelineDiff
from tests.support.golden import assert_golden

EVERY_KIND = PipelineDiff("training-pipeline", (
    Change(ChangeKind.TASK_ADDED, "report", None, "gcr.io/p/report:content-1111"),
    Change(ChangeKind.TASK_REMOVED, "notify", "gcr.io/p/notify:content-2222", None),
    Change(ChangeKind.TASK_RENAMED, "prepare", "prepare", "load-rows"),
    Change(ChangeKind.DEPENDENCIES, "evaluate", "train", "train, load-rows"),
    Change(ChangeKind.IMAGE, "train", "gcr.io/p/train:content-aaaa", "gcr.io/p/train:content-bbbb"),
    Change(ChangeKind.COMPONENT_CODE, "train", "digest 0123456789ab", "digest ba9876543210"),
    Change(ChangeKind.TASK_INPUT, "train.epochs", "pipeline input epochs", "7"),
    Change(ChangeKind.PIPELINE_INPUT, "learning_rate", "NUMBER_DOUBLE, default 0.001", None),
    Change(ChangeKind.PIPELINE_OUTPUT, "model", None, "system.Model"),
    Change(ChangeKind.CACHING, "train", "on", "off"),
    Change(ChangeKind.RESOURCES, "train.resourceMemoryLimit", None, "4G"),
    Change(ChangeKind.RETRY, "train", "none", '{"maxRetryCount": 3}'),
    Change(ChangeKind.PIPELINE_ROOT, "run.pipeline_root", "gs://old", "gs://new"),
    Change(ChangeKind.SERVICE_ACCOUNT, "run.service_account", "a@p.iam.gserviceaccount.com",
           "b@p.iam.gserviceaccount.com"),
    Change(ChangeKind.SETTING, "parameters.epochs", "2", "4"),
))
UNCHANGED = PipelineDiff("hello-pipeline")
ADDED = PipelineDiff("greeting", added=True)
REMOVED = PipelineDiff("old-pipeline", removed=True)


def test_every_kind_of_change_in_a_check_summary():
    assert_golden(diff_markdown([EVERY_KIND, UNCHANGED, ADDED, REMOVED]), "messages/pipeline_diff.md")


def test_collapsed_in_the_pr_comment():
    assert_golden(diff_markdown([EVERY_KIND, UNCHANGED], collapsed=True), "messages/pipeline_diff_collapsed.md")


def test_plain_text_for_the_command_line():
    text = diff_text([EVERY_KIND, UNCHANGED, ADDED], base="main", head="working tree")
    assert_golden(text, "messages/pipeline_diff.txt")


def test_headlines():
    assert [headline(d) for d in (EVERY_KIND, UNCHANGED, ADDED, REMOVED)] == \
        ["15 changes", "unchanged", "new pipeline", "removed"]


def test_hostile_names_and_values_cannot_break_the_table():
    hostile = PipelineDiff("p", (Change(ChangeKind.TASK_INPUT, "t|x.`a`", "a | b", "``` </details>"),))
    table = diff_markdown([hostile])
    row = next(line for line in table.splitlines() if line.startswith("| task input"))
    assert row.count(" | ") == 3  # four cells, whatever the values hold
    collapsed = diff_markdown([PipelineDiff("<b>x</b>")], collapsed=True)
    assert "<b>x</b>" not in collapsed and "&lt;b&gt;x&lt;/b&gt;" in collapsed
