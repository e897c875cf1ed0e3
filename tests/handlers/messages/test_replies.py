"""Answers to commands, compared with tests/golden/messages/."""

from __future__ import annotations

from handlers.messages.pull_comment import waiting_for_approval
from handlers.messages.replies import (
    approved,
    cancel_reply,
    command_error,
    command_help,
    command_refused,
    plan_reply,
    run_accepted,
)
from tests.handlers.messages.samples import (
    BASE,
    HEAD,
    HEAD_POSE_DIFF,
    HEAD_POSE_PLAN,
    MNIST_DIFF,
    MNIST_PLAN,
    failed_command_run,
    running_autorun,
    skipped_run,
)
from tests.support.golden import assert_golden


def test_command_replies() -> None:
    plan = {"base": BASE, "head": HEAD, "pipelines": [HEAD_POSE_PLAN, MNIST_PLAN]}
    replies = {
        "command_help.md": command_help(["mnist-pipeline", "head-pose-pipeline"]),
        "command_refused.md": command_refused(
            "mallory", "only people with write access to octo/monorepo can run pipelines"),
        "command_error.md": command_error(
            "/run head-pose-pipeline epochs=ten lr=0.1",
            ["epochs: expected an integer, got 'ten'", "lr: not a parameter of head-pose-pipeline"],
            ["epochs", "learning_rate", "dataset"], valid_label="Parameters of head-pose-pipeline"),
        "plan_reply.md": plan_reply(plan),
        "plan_reply_diff.md": plan_reply(plan, [HEAD_POSE_DIFF, MNIST_DIFF]),
        "plan_reply_none.md": plan_reply({"base": BASE, "head": HEAD, "pipelines": []}),
        "waiting_for_approval.md": waiting_for_approval("outsider", HEAD,
                                                                 ["mnist-pipeline", "head-pose-pipeline"]),
        "run_accepted.md": run_accepted("alice", [failed_command_run(), skipped_run()]),
        "approved.md": approved("maintainer", HEAD, ["head-pose-pipeline"]),
        "cancel_reply.md": cancel_reply("alice", [running_autorun()]),
        "cancel_reply_nothing.md": cancel_reply("alice", [], "mnist-pipeline"),
    }
    for name, text in replies.items():
        assert_golden(text, f"messages/{name}")


def test_replies_to_commands_bound_to_an_older_head() -> None:
    moved = "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d"
    text = (run_accepted("maria", [failed_command_run()], head_now=moved) + "\n---\n\n"
            + approved("maria", HEAD, ["head-pose-pipeline"], head_now=moved))
    assert_golden(text, "messages/bound_to_older_head.md")
