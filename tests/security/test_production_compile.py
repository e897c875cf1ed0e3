"""The production path: a hostile pipeline file is compiled by Cloud Build, never by the bot.

The bot (this process, with the Cloud Build builder and compiler) uploads the pull request's
code and reads back what the build's compile step wrote; the fake Cloud Build runs that step in
its own sandbox, standing for Google's workers. The pipeline file reads every /proc/*/environ
and /proc/*/cmdline, the bot's data folder, key file and database, a 127.0.0.1 service, writes
outside its folder and drops a marker file, then raises an exception carrying all it found, so
everything it reached ends up in the error a user would see.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.builders.cloudbuild import CloudBuildBuilder, make_cloudbuild_client
from deploy.builders.cloudbuild_compile import CloudBuildCompiler, CloudCompile
from deploy.builders.cloudbuild_source import StorageUpload
from deploy.errors import CompileError
from deploy.google_clients import make_gcs_client
from handlers.models import BuildStatus
from handlers.ports.build import BuildRequest, BuildState
from handlers.run_models import RunState, run_id_for
from tests.fakes.cloudbuild import FakeCloudBuild
from tests.fakes.template_stores import FakeGcs
from tests.handlers.test_production_path import CloudBot
from tests.security.hostile import Victim, attack_statements, leaked
from tests.support.gitrepo import GitRepo

HELLO = "pipelines/hello-pipeline/hello-pipeline.py"
BUCKET = "ml-project-kfp-bot"
TAIL = '''
from kfp import dsl


@dsl.pipeline(name="hello-pipeline")
def hello():
    pass
'''


def hostile_source(victim: Victim, marker: str) -> str:
    """hello-pipeline's file, hostile: drops `marker` where it runs, steals, raises with the loot."""
    attack = attack_statements(victim.read_targets, [victim.service_port], victim.write_targets)
    drop = (f"open({marker!r}, 'w').write('x')\ntry:\n    open('/tmp/' + {marker!r}, 'w').write('x')\n"
            "except OSError:\n    pass\n")
    return drop + attack + "raise RuntimeError('stolen: ' + repr(found))\n" + TAIL


@pytest.fixture
def cloud() -> Iterator[tuple[FakeGcs, FakeCloudBuild]]:
    with FakeGcs() as gcs, FakeCloudBuild(gcs=gcs) as cloudbuild:
        yield gcs, cloudbuild


def test_a_hostile_pipeline_runs_only_in_the_build_and_its_loot_holds_no_secret(
        example_repo: GitRepo, victim: Victim, cloud: tuple[FakeGcs, FakeCloudBuild], tmp_path: Path) -> None:
    gcs, fake = cloud
    marker = f"ran-here-{uuid.uuid4().hex[:12]}"
    example_repo.write(HELLO, hostile_source(victim, marker))
    head = example_repo.commit("a hostile pipeline")
    client, storage = make_cloudbuild_client(fake.endpoint), make_gcs_client(gcs.url)
    compile_settings = CloudCompile(storage, BUCKET)
    builder = CloudBuildBuilder(client, "ml-project", upload=StorageUpload(storage, BUCKET), compile=compile_settings)
    request = BuildRequest(run_id=run_id_for("octo/monorepo", 7, head, "hello-pipeline", "autorun"),
                           repo="octo/monorepo", sha=head, pr=7, pipeline="hello-pipeline",
                           repo_dir=example_repo.root, components=())
    modules_before = set(sys.modules)

    assert builder.build(request).state is BuildState.STARTED
    [build] = fake.builds
    event = builder.decode_notification(**vars(fake.finish(build.id, "SUCCESS")))
    assert isinstance(event, BuildStatus) and event.state is RunState.COMPILING
    with pytest.raises(CompileError) as raised:
        CloudBuildCompiler(compile_settings).compile(example_repo.root, "hello-pipeline", {}, tmp_path / "out")
    client.transport.close()

    error = raised.value
    assert "stolen:" in str(error) + error.output  # the attack ran, and reported what it found
    artifacts = [stored.data for stored in gcs.objects.values()]
    assert leaked(str(error), error.output, fake.builds, *artifacts) == []
    # it ran in the build's workspace, and there only: not in the bot's checkout, not on the bot's /tmp
    assert (fake.workspaces[build.id] / marker).is_file()
    assert not (example_repo.root / marker).exists() and not Path("/tmp", marker).exists()
    assert not list(victim.data_dir.rglob(marker))
    # the bot never imported it
    # (read from each module's __dict__: getattr would wake lazily loaded modules)
    loaded = {name: getattr(module, "__dict__", {}).get("__file__") for name, module in list(sys.modules.items())
              if name not in modules_before}
    assert not [name for name, file in loaded.items() if str(file or "").startswith(str(example_repo.root))]
    assert "__kfp_bot_pipeline__" not in sys.modules


def test_a_hostile_pull_request_on_the_production_path_fails_showing_no_secret(
        cloud_bot: CloudBot, victim: Victim, caplog: pytest.LogCaptureFixture) -> None:
    bot, cloud = cloud_bot, cloud_bot.cloud
    marker = f"ran-here-{uuid.uuid4().hex[:12]}"
    head = bot.branch("evil", {HELLO: hostile_source(victim, marker)})
    with caplog.at_level("INFO"):
        assert bot.open_pull(head).status_code == 202
        bot.settle()
        [build] = [b for b in cloud.cloudbuild.builds if "pipeline-hello-pipeline" in b.tags]
        notification = cloud.cloudbuild.finish(build.id, "SUCCESS")
        cloud.pubsub.deliver(notification.data, notification.attributes, topic="cloud-builds")
        bot.settle()

    [run] = bot.runs(pr=12, pipeline="hello-pipeline")
    assert run["state"] == "failed" and "stolen:" in run["error"]  # the attack ran, in the build
    checks = bot.github.check_runs("octo-org/kfp-monorepo", head)
    assert leaked(bot.runs(), checks, bot.replies(), caplog.text) == []
    assert cloud.vertex.requests("CreatePipelineJob") == []
    assert (cloud.cloudbuild.workspaces[build.id] / marker).is_file()
    assert not list(victim.root.rglob(marker)) and not Path("/tmp", marker).exists()
