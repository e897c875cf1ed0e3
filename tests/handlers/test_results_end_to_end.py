"""Results beside the baseline and quality gates, end to end on embedded defaults: a real kfp.local
run of a pipeline that logs `Metrics`, deployed on main (`deploy.run`) to become the baseline, then
pull requests whose runs are compared with it and held to the default branch's gates — as the
check, the PR comment and Slack show them."""

from __future__ import annotations

import requests

from handlers.run_results import load_results
from tests.fakes.slack import FakeSlack
from tests.handlers.conftest import PR, REPO, Bot
from tests.handlers.test_push import merge, push_payload

PIPELINE = "scored-pipeline"
FOLDER = f"pipelines/{PIPELINE}"
SETTINGS = f"{FOLDER}/settings.yaml"
CODE = '''"""A pipeline that scores itself: its metrics are its parameters."""

from kfp import dsl
from kfp.dsl import Metrics, Output


@dsl.component(base_image="python:3.11-slim")
def evaluate(accuracy: float, loss: float, metrics: Output[Metrics]) -> float:
    metrics.log_metric("accuracy", accuracy)
    metrics.log_metric("loss", loss)
    return accuracy * 100


@dsl.pipeline(name="scored-pipeline")
def scored_pipeline(accuracy: float = 0.9, loss: float = 0.2) -> float:
    return evaluate(accuracy=accuracy, loss=loss).outputs["Output"]
'''
GATES = 'run:\n  gates:\n    accuracy: ">= 0.9"\n    loss: "<= baseline * 1.05"\n'


def settings(accuracy: float, loss: float, gates: str = GATES) -> str:
    return f"arguments:\n  accuracy: {accuracy}\n  loss: {loss}\n{gates}deploy:\n  run: true\n"


def deploy_baseline(bot: Bot) -> str:
    """scored-pipeline merged into main and run on deploy: the baseline; its commit."""
    before, after = merge(bot, {f"{FOLDER}/{PIPELINE}.py": CODE, SETTINGS: settings(0.91, 0.2)})
    bot.deliver("push", push_payload(bot, before, after))
    bot.settle()
    bot.base = after
    return after


def test_pull_request_runs_are_compared_with_mains_and_held_to_its_gates(slack_bot: tuple[Bot, FakeSlack]) -> None:
    bot, slack = slack_bot
    main = deploy_baseline(bot)
    [deployed] = bot.runs(sha=main, pipeline=PIPELINE)
    assert deployed["state"] == "succeeded", (deployed["error"], deployed["transitions"])
    baseline = load_results(bot.services.store, deployed["id"])
    assert baseline is not None and dict(baseline.metrics) == {"accuracy": 0.91, "loss": 0.2}
    assert baseline.outputs == {"Output": 91.0} and baseline.baseline_run_id is None
    # The first run on main has nothing to compare with: the relative gate says so and passes.
    assert [g.verdict.value for g in baseline.gates] == ["passed", "no baseline"]
    summary = bot.checks(main)[f"kfp-bot / {PIPELINE}"]["output"]["summary"]
    assert "No baseline yet" in summary and "| accuracy | 0.91 | — | — |" in summary

    # A PR that makes loss worse, and tries to loosen the gate: the default branch's gate holds it.
    worse = bot.branch("worse", {SETTINGS: settings(0.93, 0.25, GATES.replace("1.05", "2"))})
    bot.open_pull(worse)
    bot.settle()
    [run] = bot.runs(pr=PR, pipeline=PIPELINE)
    assert run["state"] == "failed"
    assert run["error"] == "quality gate loss <= baseline * 1.05 failed: loss = 0.25, limit 0.21 (baseline 0.2)"
    check = bot.checks(worse)[f"kfp-bot / {PIPELINE}"]
    assert check["conclusion"] == "failure"
    summary = check["output"]["summary"]
    assert f"Compared with run `{deployed['id']}`" in summary
    assert "| accuracy | 0.93 | 0.91 | +0.02 (+2.2%) |" in summary
    assert "| loss | 0.25 | 0.2 | +0.05 (+25.0%) |" in summary
    assert "| `loss <= baseline * 1.05` | 0.25 | 0.21 | ❌ failed |" in summary
    [comment] = [body for body in bot.replies() if "#### Results beside the default branch" in body]
    assert f"**{PIPELINE}** (baseline: run `{deployed['id']}`)" in comment
    assert "| loss | 0.25 | 0.2 | +0.05 (+25.0%) |" in comment

    # The next push fixes it: the run succeeds, and Slack leads with the headline metric.
    better = bot.branch("better", {SETTINGS: settings(0.95, 0.19)}, start=worse)
    bot.github.update_pull(REPO, PR, head_sha=better)
    bot.open_pull(better, action="synchronize")
    bot.settle()
    [latest, _] = bot.runs(pr=PR, pipeline=PIPELINE)
    assert latest["sha"] == better and latest["state"] == "succeeded", latest
    assert bot.checks(better)[f"kfp-bot / {PIPELINE}"]["conclusion"] == "success"
    replies = [m.mrkdwn for parent in slack.in_channel("#ml-ci") for m in slack.thread("#ml-ci", parent.ts)]
    assert any(f"*{PIPELINE}* succeeded" in text and "accuracy 0.95, +0.04 (+4.4%) vs baseline" in text
               for text in replies), replies

    # The PR's runs never become the baseline: only the default branch's do.
    api = requests.get(f"{bot.url}/api/runs/{latest['id']}", timeout=10).json()
    assert api["state"] == "succeeded"
    assert load_results(bot.services.store, latest["id"]).baseline_run_id == deployed["id"]  # type: ignore[union-attr]
