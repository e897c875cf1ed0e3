"""Fixed runs and plans the message tests render (their output is compared with tests/golden/messages/)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from handlers.run_models import Run, RunPlan, RunState, Transition, Trigger
from pipeline_registry.spec_diff import Change, ChangeKind, PipelineDiff

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

TRUSTED_CHANGES = [
    {"file": ".kfp-bot.yaml", "key": "compile.timeout_seconds", "proposed": 3600, "in_effect": 300},
    {"file": ".kfp-bot.yaml", "key": "allowed_users", "proposed": ["mallory"], "in_effect": []},
    {"file": "pipelines/head-pose-pipeline/settings.yaml", "key": "run.service_account",
     "proposed": "owner@acme.iam.gserviceaccount.com", "in_effect": None},
]


# What head-pose-pipeline's change does to its compiled pipeline (a run's diff), and mnist-pipeline's.
HEAD_POSE_DIFF = PipelineDiff("head-pose-pipeline", (
    Change(ChangeKind.IMAGE, "training", "europe-docker.pkg.dev/acme/ml/head-pose-pipeline-training:0b1c2d3e",
           "europe-docker.pkg.dev/acme/ml/head-pose-pipeline-training:3f2a9c1d"),
    Change(ChangeKind.RESOURCES, "training.accelerator", None, "NVIDIA_TESLA_T4 × 1"),
    Change(ChangeKind.SETTING, "parameters.epochs", "10", "20"),
))
MNIST_DIFF = PipelineDiff("mnist-pipeline", added=True)
