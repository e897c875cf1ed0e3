"""A pull request on the Google Cloud path with Google's Pub/Sub emulator as the bus: webhook →
kfp-bot-events → push → Cloud Build → cloud-builds → push → compile → Vertex AI job →
kfp-bot-pipeline-events → push → succeeded, and every run notification pushed back through
kfp-bot-notifications; then what at-least-once delivery does to it (a 503 the emulator
redelivers, duplicates, out-of-order states).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import grpc
from google.api_core import exceptions as api_exceptions
from google.api_core import retry as retries

from bot.pubsub.publisher import message_attributes
from handlers.event_codec import event_to_dict
from handlers.models import RunStart
from pipeline_registry.repo_config import Target
from tests.emulator.conftest import EmulatedCloud, wait_until

TRAIN_MAIN = "pipelines/training-pipeline/train/main.py"


def open_training_pull(cloud: EmulatedCloud, note: str) -> str:
    bot = cloud.bot
    head = bot.branch("train", {TRAIN_MAIN: (bot.repo.root / TRAIN_MAIN).read_text() + f"\n# {note}\n"})
    assert bot.open_pull(head).status_code == 202
    return head


def one_build(cloud: EmulatedCloud):
    [build] = wait_until(lambda: cloud.cloudbuild.builds, what="a Cloud Build build")
    return build


def one_job_id(cloud: EmulatedCloud) -> str:
    [job] = wait_until(lambda: cloud.vertex.jobs, what="a Vertex AI pipeline job")
    return job.name.rsplit("/", 1)[-1]


def test_a_pull_request_travels_the_production_path_over_the_emulator(cloud: EmulatedCloud) -> None:
    head = open_training_pull(cloud, "faster")

    build = one_build(cloud)
    assert any(image.endswith(f":{head}") for image in build.images)
    cloud.run(state="building")
    notification = cloud.cloudbuild.finish(build.id, "SUCCESS")
    cloud.publish("cloud-builds", notification.data, notification.attributes)

    job_id = one_job_id(cloud)
    cloud.run(state="running")
    # The run is `running` from its submission on; its URL becomes the job's once Vertex AI answered.
    wait_until(lambda: job_id in (cloud.bot.runs()[0]["url"] or ""),
               what=lambda: f"the run to link Vertex AI job {job_id}: {cloud.bot.runs()}")
    event = cloud.vertex.set_state(job_id, "PIPELINE_STATE_SUCCEEDED")
    cloud.publish("kfp-bot-pipeline-events", event.data, event.attributes)

    cloud.run(state="succeeded")
    checks = wait_until(lambda: (c := cloud.bot.checks(head)).get("kfp-bot", {}).get("conclusion") and c,
                        what="the aggregate check to conclude")
    assert checks["kfp-bot / training-pipeline"]["conclusion"] == "success"
    assert checks["kfp-bot"]["conclusion"] == "success"

    # every subscription of the setup pushed to the bot, and the bot took every message
    wait_until(lambda: len(cloud.recorder.of(lambda p: p.kind == "notification")) >= 4,
               what="the run's notifications to come back through kfp-bot-notifications-push")
    # A push is noted when the bot has answered it: the pipeline event's push answers only after the
    # bot handled it (results, reports), which may be after the notifications it caused came back.
    subscriptions = {"kfp-bot-events-push", "kfp-bot-cloud-builds-push", "kfp-bot-pipeline-events-push",
                     "kfp-bot-notifications-push"}
    cloud.recorder.wait_for(lambda pushes: {p.subscription.rsplit("/", 1)[-1] for p in pushes} >= subscriptions)
    pushed = {p.subscription.rsplit("/", 1)[-1] for p in cloud.recorder.pushes}
    assert pushed == subscriptions
    assert {p.outcome for p in cloud.recorder.pushes} == {"processed"}
    assert len(cloud.cloudbuild.requests("CreateBuild")) == 1
    assert len(cloud.vertex.requests("CreatePipelineJob")) == 1


def test_a_503_from_the_bot_is_redelivered_by_the_emulator(cloud: EmulatedCloud) -> None:
    # Vertex AI answers UNAVAILABLE for a while; the runner's own retry (short here) gives up,
    # the push is answered 503, and the emulator pushes the build notification again.
    vertex = cloud.bot.services.context.runner.runners.for_target(Target.VERTEX)
    vertex.retry = retries.Retry(predicate=retries.if_exception_type(api_exceptions.ServiceUnavailable),
                                 initial=0.05, maximum=0.1, timeout=0.3)
    cloud.vertex.fail("CreatePipelineJob", grpc.StatusCode.UNAVAILABLE, times=None)
    open_training_pull(cloud, "flaky vertex")
    build = one_build(cloud)
    notification = cloud.cloudbuild.finish(build.id, "SUCCESS")
    message_id = cloud.publish("cloud-builds", notification.data, notification.attributes)

    def pushes():
        return [(p.status, p.outcome) for p in cloud.recorder.of(lambda p: p.message_id == message_id
                                                                 and "cloud-builds" in p.subscription)]

    wait_until(lambda: (503, "retry") in pushes(), what="the bot to answer 503")
    cloud.vertex.clear_faults()

    wait_until(lambda: pushes()[-1] == (200, "processed"), what="the redelivery to be processed")
    running = cloud.run(state="running")
    assert set(pushes()[:-1]) == {(503, "retry")}
    assert len(cloud.vertex.jobs) == 1 and one_job_id(cloud) in running["url"]


def test_duplicates_and_out_of_order_deliveries_make_one_build_and_one_job(cloud: EmulatedCloud) -> None:
    open_training_pull(cloud, "again and again")
    build = one_build(cloud)
    [run] = cloud.bot.runs()
    start = RunStart(run_id=run["id"])
    with ThreadPoolExecutor(4) as pool:  # the same step published again, pushed concurrently
        list(pool.map(lambda _: cloud.publish("kfp-bot-events", json.dumps(event_to_dict(start)).encode(),
                                              message_attributes(start)), range(3)))
    working = cloud.cloudbuild.start_working(build.id)
    success = cloud.cloudbuild.finish(build.id, "SUCCESS")
    for notification in (success, working, success, working):  # late and repeated states
        cloud.publish("cloud-builds", notification.data, notification.attributes)

    job_id = one_job_id(cloud)
    cloud.run(state="running")
    running = cloud.vertex.pipeline_event(job_id, "PIPELINE_STATE_RUNNING")
    succeeded = cloud.vertex.set_state(job_id, "PIPELINE_STATE_SUCCEEDED")
    for event in (succeeded, running, succeeded):  # the end arrives before the start
        cloud.publish("kfp-bot-pipeline-events", event.data, event.attributes)

    done = cloud.run(state="succeeded")
    wait_until(lambda: len(cloud.recorder.of(lambda p: "pipeline-events" in p.subscription)) >= 3,
               what="every pipeline event to be pushed")
    wait_until(lambda: len(cloud.recorder.of(lambda p: "cloud-builds" in p.subscription)) >= 4,
               what="every build notification to be pushed")
    assert len(cloud.cloudbuild.builds) == 1
    assert len(cloud.vertex.jobs) == 1
    states = [t["state"] for t in cloud.bot.runs()[0]["transitions"]]
    assert states == ["queued", "building", "compiling", "running", "succeeded"]
    assert cloud.bot.runs()[0]["transitions"] == done["transitions"]
