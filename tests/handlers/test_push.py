"""Deploy on merge, end to end: a `push` webhook to main deploys the pipelines it changed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.schedules import VertexSchedules, make_schedule_client
from handlers.targets import ByTarget
from tests.fakes.vertex import FakeVertexPipelines
from tests.handlers.conftest import REPO, WRITER, Bot, Ports
from tests.support.github_clients import INSTALLATION_ID
from tests.support.webhooks import load_payload

HELLO_SETTINGS = "pipelines/hello-pipeline/settings.yaml"
SCHEDULE = "schedule:\n  cron: '0 6 * * *'\n  time_zone: Europe/Paris\n  parameters:\n    repeat: 1\n"


def push_payload(bot: Bot, before: str, after: str, *, branch: str = "main") -> dict[str, Any]:
    """GitHub's `push` example adapted to the example monorepo."""
    return load_payload("push", {
        "ref": f"refs/heads/{branch}", "before": before, "after": after, "created": False,
        "repository.full_name": REPO, "repository.name": REPO.split("/")[1],
        "repository.clone_url": str(bot.repo.root), "repository.default_branch": "main",
        "head_commit.id": after, "compare": f"https://github.com/{REPO}/compare/{before[:12]}...{after[:12]}",
        "pusher.name": WRITER, "sender.login": WRITER, "installation.id": INSTALLATION_ID})


def merge(bot: Bot, changes: dict[str, str | None]) -> tuple[str, str]:
    """Commit `changes` (None deletes a path) on main, as a merged PR would; (before, after)."""
    before = bot.repo.head()
    for path, content in changes.items():
        if content is None:
            bot.repo.git("rm", "-r", "-q", path)
        else:
            bot.repo.write(path, content)
    after = bot.repo.commit("merge")
    bot.github.add_commit(REPO, after, branch="main")
    return before, after


def hello_settings(bot: Bot, extra: str = "") -> str:
    return (bot.repo.root / HELLO_SETTINGS).read_text().replace("repeat: 3", "repeat: 4") + extra


@pytest.fixture
def vertex() -> Iterator[FakeVertexPipelines]:
    """A fake Vertex AI."""
    with FakeVertexPipelines() as fake:
        yield fake


@pytest.fixture
def ports(request: pytest.FixtureRequest) -> Ports | None:
    """A test asking for `vertex` gets a bot scheduling on it (as with KFP_BOT_RUNNER=vertex)."""
    if "vertex" not in request.fixturenames:
        return None
    fake: FakeVertexPipelines = request.getfixturevalue("vertex")
    return lambda context: replace(context, schedules=ByTarget.only(VertexSchedules(
        make_schedule_client("europe-west4", fake.endpoint), "my-project", "europe-west4",
        pipeline_root="gs://my-bucket/root")))


def test_a_push_to_main_deploys_the_changed_pipeline_to_the_template_store(bot: Bot) -> None:
    before, after = merge(bot, {HELLO_SETTINGS: hello_settings(bot)})
    payload = push_payload(bot, before, after)
    answer = bot.deliver("push", payload)
    assert answer.status_code == 202
    bot.settle()

    [run] = bot.runs(sha=after)
    assert (run["pipeline"], run["trigger"], run["pr"], run["state"]) == ("hello-pipeline", "deploy", None,
                                                                         "succeeded")
    assert run["triggered_by"] == WRITER
    assert [t["state"] for t in run["transitions"]] == ["queued", "building", "compiling", "succeeded"]
    folder: Path = bot.services.context.templates.for_target(None).folder / "hello-pipeline"
    assert run["transitions"][-1]["detail"] == f"deployed {folder / f'{after}.yaml'}"

    template = yaml.safe_load((folder / f"{after}.yaml").read_text())
    assert template["pipelineInfo"]["name"] == "hello-pipeline"
    assert (folder / "latest.yaml").read_text() == (folder / f"{after}.yaml").read_text()
    recorded = json.loads((folder / f"{after}.json").read_text())
    assert recorded["version"] == after and recorded["tags"] == [after, "latest"]
    assert recorded["metadata"]["commit"] == after and recorded["metadata"]["repo"] == REPO

    checks = bot.checks(after)
    assert (checks["kfp-bot / hello-pipeline"]["status"], checks["kfp-bot / hello-pipeline"]["conclusion"]) == (
        "completed", "success")
    assert checks["kfp-bot"]["conclusion"] == "success"

    bot.deliver("push", payload)  # a redelivery (new delivery id) deploys nothing twice
    bot.settle()
    assert len(bot.runs(sha=after)) == 1


def test_a_push_to_another_branch_or_a_tag_is_ignored(bot: Bot) -> None:
    before, after = merge(bot, {HELLO_SETTINGS: hello_settings(bot)})

    branch = bot.deliver("push", push_payload(bot, before, after, branch="feature"))
    tag = bot.deliver("push", {**push_payload(bot, before, after), "ref": "refs/tags/v1"})
    bot.settle()

    assert branch.status_code == 200 and "deploys happen on main" in branch.json()["reason"]
    assert tag.status_code == 200 and "not tags" in tag.json()["reason"]
    assert bot.runs(sha=after) == []


def test_a_schedule_is_created_updated_and_removed_with_the_pipeline(bot: Bot, vertex: FakeVertexPipelines) -> None:
    before, first = merge(bot, {HELLO_SETTINGS: hello_settings(bot, SCHEDULE)})
    bot.deliver("push", push_payload(bot, before, first))
    bot.settle()

    assert bot.runs(sha=first)[0]["state"] == "succeeded"
    schedule = vertex.schedules.named("kfp-bot-hello-pipeline")
    assert schedule is not None and schedule.cron == "TZ=Europe/Paris 0 6 * * *"
    job = schedule.create_pipeline_job_request.pipeline_job
    assert dict(job.runtime_config.parameter_values)["repeat"] == 1
    assert job.pipeline_spec["pipelineInfo"]["name"] == "hello-pipeline"

    _, second = merge(bot, {HELLO_SETTINGS: hello_settings(bot, SCHEDULE.replace("0 6", "30 7"))})
    bot.deliver("push", push_payload(bot, first, second))
    bot.settle()
    [updated] = vertex.schedules.schedules
    assert (updated.name, updated.cron) == (schedule.name, "TZ=Europe/Paris 30 7 * * *")

    _, third = merge(bot, {"pipelines/hello-pipeline": None})
    bot.deliver("push", push_payload(bot, second, third))
    bot.settle()
    assert bot.runs(sha=third) == []
    [paused] = vertex.schedules.schedules
    assert paused.state == paused.State.PAUSED
    assert "hello-pipeline" in bot.checks(third)["kfp-bot"]["output"]["summary"]


def test_a_bad_schedule_fails_the_deploy_naming_the_settings_file(bot: Bot, vertex: FakeVertexPipelines) -> None:
    bad = SCHEDULE.replace("repeat: 1", "repeats: 1")
    before, after = merge(bot, {HELLO_SETTINGS: hello_settings(bot, bad)})
    bot.deliver("push", push_payload(bot, before, after))
    bot.settle()

    [run] = bot.runs(sha=after)
    assert run["state"] == "failed"
    assert HELLO_SETTINGS in run["error"] and "repeats" in run["error"] and "repeat" in run["error"]
    assert vertex.schedules.schedules == []
    assert bot.checks(after)["kfp-bot / hello-pipeline"]["conclusion"] == "failure"
