"""Results and quality gates on the production path: a pull request's run on the fake Vertex AI,
whose task details carry a `system.Metrics` artifact, held to the default branch's gates."""

from __future__ import annotations

from handlers.run_results import load_results
from tests.handlers.conftest import PR
from tests.handlers.test_production_path import TRAIN_MAIN, CloudBot, cloud_bot  # noqa: F401 (the fixture)
from tests.handlers.test_push import merge

SETTINGS = "pipelines/training-pipeline/settings.yaml"
EVALUATE = "pipelines/training-pipeline/evaluate/component.yaml"


def test_a_vertex_run_below_its_gate_fails_with_the_numbers(cloud_bot: CloudBot) -> None:  # noqa: F811
    bot, cloud = cloud_bot, cloud_bot.cloud
    # On main: evaluate logs its metrics (an Output[Metrics]) and the pipeline has a gate.
    component = (bot.repo.root / EVALUATE).read_text()
    component = component.replace("outputs:\n", "outputs:\n- {name: metrics, type: Metrics}\n").replace(
        "    - {outputPath: summary}\n", "    - {outputPath: summary}\n    - --metrics\n    - {outputPath: metrics}\n")
    settings = (bot.repo.root / SETTINGS).read_text() + 'run:\n  gates:\n    accuracy: ">= 0.9"\n'
    _, main = merge(bot, {EVALUATE: component, SETTINGS: settings})
    bot.base = main

    head = bot.branch("train", {TRAIN_MAIN: (bot.repo.root / TRAIN_MAIN).read_text() + "\n# faster\n"})
    bot.pull_built(head)
    [job] = cloud.vertex.jobs
    job_id = job.name.rsplit("/", 1)[-1]

    event = cloud.vertex.set_state(job_id, "PIPELINE_STATE_SUCCEEDED",
                                   logged={"evaluate": {"metrics": {"accuracy": 0.85, "f1": 0.8},
                                                        "summary": "accuracy 0.850 (passed, minimum 0.8)"}})
    cloud.pubsub.deliver(event.data, event.attributes, topic="pipeline-events")
    bot.settle()

    [run] = bot.runs(pr=PR)
    assert run["state"] == "failed"
    assert run["error"] == "quality gate accuracy >= 0.9 failed: accuracy = 0.85"
    results = load_results(bot.services.store, run["id"])
    assert results is not None and dict(results.metrics) == {"accuracy": 0.85, "f1": 0.8}
    check = bot.checks(head)["kfp-bot / training-pipeline"]
    assert check["conclusion"] == "failure"
    summary = check["output"]["summary"]
    assert "No baseline yet" in summary
    assert "| accuracy | 0.85 | — | — |" in summary and "| f1 | 0.8 | — | — |" in summary
    assert "| `accuracy >= 0.9` | 0.85 | 0.9 | ❌ failed |" in summary
    assert "| summary | `accuracy 0.850 (passed, minimum 0.8)` |" in summary
    assert bot.checks(head)["kfp-bot"]["conclusion"] == "failure"
