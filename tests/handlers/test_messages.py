"""Every user-visible message, rendered for fixed runs and compared with tests/golden/messages/.

The golden files are what reviewers and PR authors read; KFP_BOT_UPDATE_GOLDEN=1 rewrites them
(see tests/support/golden.py). The other tests pin the rules the wording must keep whatever it
says: limits GitHub enforces, escaping of what users typed, which run of a pipeline is shown.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from handlers import messages
from handlers.messages import HeadOutcome
from handlers.run_models import Run, RunPlan, RunState, Transition, Trigger
from tests.support.golden import assert_golden

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
HEAD = "4f1c2a9d0e8b7c6a5f4e3d2c1b0a9f8e7d6c5b4a"
BASE = "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567"
REPO = "octo/monorepo"

HEAD_POSE_PLAN = {
    "name": "head-pose-pipeline", "change": "modified",
    "reasons": [
        {"path": "pipelines/head-pose-pipeline/training/main.py", "rule": "pipeline-folder",
         "detail": "in the pipeline folder",
         "text": "pipelines/head-pose-pipeline/training/main.py: in the pipeline folder"},
        {"path": "utils/io.py", "rule": "image-input", "detail": "copied into the training image",
         "text": "utils/io.py: copied into the training image"},
    ],
    "components": [
        {"name": "training", "path": "pipelines/head-pose-pipeline/training", "shared": False,
         "image": "europe-docker.pkg.dev/acme/ml/head-pose-pipeline-training:3f2a9c1d", "rebuild": True},
        {"name": "evaluate", "path": "components/evaluate", "shared": True,
         "image": "europe-docker.pkg.dev/acme/ml/evaluate:aa11bb22", "rebuild": False},
        {"name": "report", "path": "pipelines/head-pose-pipeline/report", "shared": False,
         "image": None, "rebuild": False},
    ],
}
MNIST_PLAN = {
    "name": "mnist-pipeline", "change": "added",
    "reasons": [{"path": "pipelines/mnist-pipeline/settings.yaml", "rule": "pipeline-folder", "detail": "",
                 "text": "pipelines/mnist-pipeline/settings.yaml"}],
    "components": [{"name": "train", "path": "pipelines/mnist-pipeline/train", "shared": False,
                    "image": "europe-docker.pkg.dev/acme/ml/mnist-pipeline-train:77e0d1c2", "rebuild": True}],
}


def make_run(pipeline: str = "head-pose-pipeline", state: RunState = RunState.SUCCEEDED, *,
             trigger: Trigger = Trigger.AUTORUN, by: str | None = None, seconds: float = 125,
             overrides: dict[str, str] | None = None, url: str | None = None, error: str | None = None,
             created: datetime = T0, run_id: str = "run-0123456789abcdef", plan: dict | None = None,
             parameters: dict | None = None, history: tuple[RunState, ...] = ()) -> Run:
    """A run with fixed timestamps; `history` adds a transition per state, 30 s apart."""
    transitions = tuple(Transition(s, created + timedelta(seconds=30 * i), f"{s.value} step")
                        for i, s in enumerate(history))
    return Run(
        id=run_id, repo=REPO, pr=7, sha=HEAD, base_sha=BASE, pipeline=pipeline, trigger=trigger, state=state,
        created_at=created, updated_at=created + timedelta(seconds=seconds), triggered_by=by,
        parameters={"epochs": 10, "learning_rate": 0.001, "dataset": "gs://acme-data/head-pose"}
        if parameters is None else parameters,
        overrides=overrides or {}, plan=RunPlan.from_json(HEAD_POSE_PLAN if plan is None else plan), url=url, error=error,
        transitions=transitions,
    )


VERTEX_URL = "https://console.cloud.google.com/vertex-ai/locations/europe-west4/pipelines/runs/hp-123?project=acme"


def running_autorun() -> Run:
    return make_run(state=RunState.RUNNING, url=VERTEX_URL,
                    history=(RunState.QUEUED, RunState.BUILDING, RunState.COMPILING, RunState.RUNNING))


def failed_command_run() -> Run:
    return make_run(state=RunState.FAILED, trigger=Trigger.COMMAND, by="alice", seconds=3725,
                    overrides={"epochs": "1", "learning_rate": "0.01"},
                    parameters={"epochs": 1, "learning_rate": 0.01, "dataset": "gs://acme-data/head-pose"},
                    url=VERTEX_URL, run_id="run-fedcba9876543210", created=T0 + timedelta(minutes=5),
                    error="task 'training' failed: exit code 1\nValueError: learning_rate must be < 0.005",
                    history=(RunState.QUEUED, RunState.BUILDING, RunState.COMPILING, RunState.RUNNING,
                             RunState.FAILED))


def skipped_run() -> Run:
    return make_run("mnist-pipeline", RunState.SKIPPED, plan=MNIST_PLAN, parameters={}, seconds=2,
                    error="no container engine (docker or podman) is installed: images cannot be built here",
                    run_id="run-5555555555555555")


def error_run() -> Run:
    """An error whose text has everything that breaks markdown: pipes, backticks, fences."""
    return make_run("mnist-pipeline", RunState.ERROR, plan=MNIST_PLAN, seconds=9,
                    parameters={"layers": [64, 32], "note": "a|b `c`"}, run_id="run-6666666666666666",
                    error="pipelines/mnist-pipeline/settings.yaml:4: arguments.layers: expected a list\n"
                          "```\nlayers: 64 | 32\n```")


# -- golden files ---------------------------------------------------------------------------------

CHECK_SUMMARIES = {
    "check_summary_running.md": running_autorun,
    "check_summary_failed_command.md": failed_command_run,
    "check_summary_skipped.md": skipped_run,
    "check_summary_error.md": error_run,
}


@pytest.mark.parametrize("name", sorted(CHECK_SUMMARIES))
def test_check_summary(name: str) -> None:
    assert_golden(messages.check_summary(CHECK_SUMMARIES[name]()), f"messages/{name}")


def test_check_titles_and_status_descriptions_of_every_state() -> None:
    lines = ["| state | check title | commit status description |", "|---|---|---|"]
    for state in RunState:
        run = make_run(state=state, url=VERTEX_URL if state is RunState.RUNNING else None,
                       error="it broke\nsecond line" if state in (RunState.FAILED, RunState.ERROR,
                                                                   RunState.CANCELLED, RunState.SKIPPED) else None)
        lines.append(f"| {state.value} | {messages.check_title(run)} | {messages.status_description(run)} |")
    assert_golden("\n".join(lines) + "\n", "messages/check_titles.md")


def test_head_summary_with_runs() -> None:
    runs = [running_autorun(), failed_command_run(), skipped_run()]
    text = f"# {messages.head_title(runs)}\n\n{messages.head_summary(runs, '')}"
    assert_golden(text, "messages/head_summary.md")


def test_head_summary_without_affected_pipelines() -> None:
    text = f"# {messages.head_title([], '')}\n\n{messages.head_summary([], '')}"
    assert_golden(text, "messages/head_summary_none.md")


def test_head_summary_not_run() -> None:
    note = ("This pull request is a draft: 2 pipelines are affected and will run when it is marked "
            "ready for review.")
    text = f"# {messages.head_title([], note)}\n\n{messages.head_summary([], note)}"
    assert_golden(text, "messages/head_summary_not_run.md")


def test_pull_comment() -> None:
    superseded = make_run(state=RunState.SUCCEEDED, run_id="run-0000000000000001", created=T0 - timedelta(hours=1))
    other = replace(running_autorun(), id="run-7777777777777777", pipeline="face-detect-pipeline")
    runs = [superseded, failed_command_run(), other, skipped_run()]
    assert_golden(messages.pull_comment(runs), "messages/pull_comment.md")


def test_pull_comment_without_pipelines() -> None:
    assert_golden(messages.pull_comment([]), "messages/pull_comment_none.md")


def test_command_replies() -> None:
    plan = {"base": BASE, "head": HEAD, "pipelines": [HEAD_POSE_PLAN, MNIST_PLAN]}
    replies = {
        "command_help.md": messages.command_help(["mnist-pipeline", "head-pose-pipeline"]),
        "command_refused.md": messages.command_refused(
            "mallory", "only people with write access to octo/monorepo can run pipelines"),
        "command_error.md": messages.command_error(
            "/run head-pose-pipeline epochs=ten lr=0.1",
            ["epochs: expected an integer, got 'ten'", "lr: not a parameter of head-pose-pipeline"],
            ["epochs", "learning_rate", "dataset"], valid_label="Parameters of head-pose-pipeline"),
        "plan_reply.md": messages.plan_reply(plan),
        "plan_reply_none.md": messages.plan_reply({"base": BASE, "head": HEAD, "pipelines": []}),
        "waiting_for_approval.md": messages.waiting_for_approval("outsider", HEAD,
                                                                 ["mnist-pipeline", "head-pose-pipeline"]),
        "run_accepted.md": messages.run_accepted("alice", [failed_command_run(), skipped_run()]),
        "approved.md": messages.approved("maintainer", HEAD, ["head-pose-pipeline"]),
        "cancel_reply.md": messages.cancel_reply("alice", [running_autorun()]),
        "cancel_reply_nothing.md": messages.cancel_reply("alice", [], "mnist-pipeline"),
    }
    for name, text in replies.items():
        assert_golden(text, f"messages/{name}")


# -- rules the wording must keep --------------------------------------------------------------------


def test_reproduce_command_quotes_overrides_for_the_shell() -> None:
    run = make_run(overrides={"epochs": "1", "note": "it's a test; rm -rf /"})
    assert messages.reproduce_command(run) == \
        "kfp-bot run head-pose-pipeline --repo . -p epochs=1 -p 'note=it'\"'\"'s a test; rm -rf /'"


def test_autorun_reproduce_command_has_no_overrides() -> None:
    assert messages.reproduce_command(make_run()) == "kfp-bot run head-pose-pipeline --repo ."


def test_pull_comment_starts_with_marker_and_shows_latest_run_per_pipeline() -> None:
    old = make_run(state=RunState.FAILED, run_id="run-old", created=T0, error="old failure")
    new = make_run(state=RunState.SUCCEEDED, run_id="run-new", created=T0 + timedelta(minutes=1))
    body = messages.pull_comment([new, old])
    assert body.splitlines()[0] == messages.SUMMARY_MARKER
    rows = [line for line in body.splitlines() if line.startswith("| head-pose-pipeline |")]
    assert len(rows) == 1 and "✅ succeeded" in rows[0]
    assert "old failure" not in body


def test_user_text_cannot_break_tables() -> None:
    summary = messages.check_summary(error_run())
    row = next(line for line in summary.splitlines() if line.startswith("| note |"))
    # the value's pipe is escaped and its backticks fenced by a longer run, so the row keeps 3 cells
    assert row == "| note | `` a\\|b `c` `` | settings.yaml |"
    assert "\n````\n" in summary  # the error's own ``` fence cannot close the block


def test_status_description_fits_githubs_limit() -> None:
    run = make_run(state=RunState.FAILED, error="x" * 500)
    description = messages.status_description(run)
    assert len(description) == messages.MAX_STATUS_CHARS and description.endswith("…")


def test_long_errors_keep_their_end_within_githubs_limit() -> None:
    run = make_run(state=RunState.ERROR, error="boom\n" * 40_000 + "ValueError: the real cause")
    summary = messages.check_summary(run)
    assert len(summary) <= messages.MAX_MARKDOWN_CHARS
    assert "ValueError: the real cause" in summary


def test_long_summaries_are_cut_below_githubs_limit() -> None:
    run = make_run(parameters={f"p{i}": "v" * 100 for i in range(1000)})
    summary = messages.check_summary(run)
    assert len(summary) <= messages.MAX_MARKDOWN_CHARS
    assert summary.endswith("_… truncated: the full text was longer than GitHub allows._\n")


def test_links_only_to_web_urls() -> None:
    run = make_run(url="/tmp/kfp-local/runs/run-1")
    assert "/tmp/kfp-local" not in messages.check_summary(run)
    assert "/tmp/kfp-local" not in messages.pull_comment([run])


@pytest.mark.parametrize(("states", "note", "outcome"), [
    ((), "", HeadOutcome.NONE_AFFECTED),
    ((), "draft pull request", HeadOutcome.NOT_RUN),
    ((RunState.SKIPPED, RunState.SKIPPED), "", HeadOutcome.NOT_RUN),
    ((RunState.SUCCEEDED, RunState.RUNNING), "", HeadOutcome.ACTIVE),
    ((RunState.FAILED, RunState.QUEUED), "", HeadOutcome.ACTIVE),
    ((RunState.SUCCEEDED, RunState.ERROR), "", HeadOutcome.FAILED),
    ((RunState.FAILED, RunState.CANCELLED), "", HeadOutcome.FAILED),
    ((RunState.SUCCEEDED, RunState.CANCELLED), "", HeadOutcome.CANCELLED),
    ((RunState.SUCCEEDED, RunState.SKIPPED), "", HeadOutcome.SUCCEEDED),
])
def test_head_outcome(states: tuple[RunState, ...], note: str, outcome: HeadOutcome) -> None:
    runs = [make_run(f"pipeline-{i}", s, run_id=f"run-{i}") for i, s in enumerate(states)]
    assert messages.head_outcome(runs, note) is outcome


def test_head_outcome_uses_the_latest_run_of_each_pipeline() -> None:
    failed = make_run(state=RunState.FAILED, run_id="run-a", created=T0)
    rerun = replace(failed, id="run-b", state=RunState.SUCCEEDED, created_at=T0 + timedelta(minutes=3),
                    updated_at=T0 + timedelta(minutes=4))
    assert messages.head_outcome([failed, rerun], "") is HeadOutcome.SUCCEEDED


# -- trusted settings and commands bound to an older head ------------------------------------------

TRUSTED_CHANGES = [
    {"file": ".kfp-bot.yaml", "key": "compile.timeout_seconds", "proposed": 3600, "in_effect": 300},
    {"file": ".kfp-bot.yaml", "key": "allowed_users", "proposed": ["mallory"], "in_effect": []},
    {"file": "pipelines/head-pose-pipeline/settings.yaml", "key": "run.service_account",
     "proposed": "owner@acme.iam.gserviceaccount.com", "in_effect": None},
]


def test_trusted_settings_check() -> None:
    allowed = ["pipelines@acme.iam.gserviceaccount.com"]
    text = (f"{messages.trusted_settings_title(TRUSTED_CHANGES)}\n\n"
            f"{messages.trusted_settings_summary(TRUSTED_CHANGES, 'main', allowed)}")
    assert_golden(text, "messages/trusted_settings.md")


def test_pull_comment_with_trusted_changes() -> None:
    run = make_run(plan={**HEAD_POSE_PLAN, "trusted_changes": TRUSTED_CHANGES})
    assert_golden(messages.pull_comment([run]), "messages/pull_comment_trusted.md")


def test_replies_to_commands_bound_to_an_older_head() -> None:
    moved = "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d"
    text = (messages.run_accepted("maria", [failed_command_run()], head_now=moved) + "\n---\n\n"
            + messages.approved("maria", HEAD, ["head-pose-pipeline"], head_now=moved))
    assert_golden(text, "messages/bound_to_older_head.md")
