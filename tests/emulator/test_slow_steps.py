"""A step slower than the ack deadline is never delivered twice at the same time.

Google's emulator, like Pub/Sub, pushes a message again when its request is still unanswered at
the ack deadline (10 s here), while the first request goes on. Cloud Build holds the run's
CreateBuild for longer than that; the bot's push request waits for its step only the step budget
(KFP_BOT_PUBSUB_STEP_SECONDS, 2 s here), answers 503 and keeps the step running under a lease, and
every delivery while the step runs is answered 503 without running it again.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest

from tests.emulator.conftest import EmulatedCloud, emulated_cloud, wait_until
from tests.support.gitrepo import GitRepo
from tests.support.pubsub_emulator import MIN_ACK_DEADLINE_SECONDS, PubSubEmulator

TRAIN_MAIN = "pipelines/training-pipeline/train/main.py"
STEP_SECONDS = 2.0


@pytest.fixture
def cloud(tmp_path: Path, example_repo: GitRepo, pubsub_emulator: PubSubEmulator) -> Iterator[EmulatedCloud]:
    yield from emulated_cloud(tmp_path, example_repo, pubsub_emulator, pubsub_step_seconds=STEP_SECONDS)


def test_a_step_slower_than_the_ack_deadline_runs_once_and_is_acknowledged_after(cloud: EmulatedCloud) -> None:
    bot = cloud.bot
    cloud.cloudbuild.hold("CreateBuild")
    head = bot.branch("train", {TRAIN_MAIN: (bot.repo.root / TRAIN_MAIN).read_text() + "\n# slow\n"})
    assert bot.open_pull(head).status_code == 202
    assert cloud.cloudbuild.wait_held("CreateBuild")

    def starts():
        return cloud.recorder.of(lambda p: p.kind == "run.start")

    # Hold the step well past the ack deadline, while the emulator keeps delivering the message.
    wait_until(lambda: starts() and starts()[-1].ended - starts()[0].started > MIN_ACK_DEADLINE_SECONDS + 2,
               timeout=120, what=lambda: f"deliveries past the ack deadline: {cloud.recorder.summary()}")
    assert cloud.cloudbuild.held("CreateBuild") == 1  # the step ran once, however often it was delivered
    pushes = starts()
    assert len({p.message_id for p in pushes}) == 1 and len(pushes) >= 2
    assert {(p.status, p.outcome) for p in pushes} == {(503, "in-progress")}
    assert all(p.ended - p.started < STEP_SECONDS + 5 for p in pushes)  # no request held the message
    for earlier, later in pairwise(pushes):
        assert later.started >= earlier.ended - 0.05, "two deliveries of the message were in flight at once"

    cloud.cloudbuild.release("CreateBuild")
    wait_until(lambda: starts()[-1].status == 200, what=lambda: f"the step's end: {cloud.recorder.summary()}")
    assert starts()[-1].outcome == "duplicate"  # the step's outcome was remembered when it ended
    assert len(cloud.cloudbuild.builds) == 1
    cloud.run(state="building")
