"""Local runs' files (their folder and log) are removed once older than the retention, never while
the run goes on; the last test runs a real kfp.local pipeline through the runner."""

import os
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from deploy.compiler.package import CompiledPipeline, PackageFormat
from deploy.runners.local_logs import read_tail
from deploy.runners.local_retention import RunFilesRetention
from deploy.runners.local_runner import LocalRunner
from handlers.ports.run import RunRequest
from handlers.run_models import Run, RunState, Trigger
from tests.conftest import EXAMPLE_MONOREPO
from tests.test_examples import compile_example

DAY = 24 * 3600


def make_run_files(runs_dir: Path, run_id: str, age_days: float, *, log: bool = True) -> None:
    """A run's folder (with an artifact deep inside) and log, last written `age_days` ago."""
    artifact = runs_dir / run_id / "pipeline_root" / "task" / "model.txt"
    artifact.parent.mkdir(parents=True)
    artifact.write_text("weights")
    paths = [artifact, artifact.parent, artifact.parent.parent, runs_dir / run_id]
    if log:
        (runs_dir / f"{run_id}.log").write_text("Executing task 'train'\n")
        paths.append(runs_dir / f"{run_id}.log")
    then = time.time() - age_days * DAY
    for path in paths:
        os.utime(path, (then, then))


def test_runs_older_than_the_retention_lose_their_folder_and_log(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    make_run_files(runs, "run-old", 20)
    make_run_files(runs, "run-recent", 2)
    make_run_files(runs, "run-no-log", 30, log=False)
    (runs / "run-only-log.log").write_text("x")
    os.utime(runs / "run-only-log.log", (time.time() - 40 * DAY,) * 2)

    removed = RunFilesRetention(runs, timedelta(days=14)).prune(active=())

    assert removed == ["run-no-log", "run-old", "run-only-log"]
    assert sorted(p.name for p in runs.iterdir()) == ["run-recent", "run-recent.log"]


def test_a_run_still_going_keeps_its_files_however_old(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    make_run_files(runs, "run-long", 20)
    assert RunFilesRetention(runs, timedelta(days=14)).prune(active={"run-long"}) == []
    assert (runs / "run-long.log").exists() and (runs / "run-long" / "pipeline_root").is_dir()


def test_a_log_written_recently_keeps_an_old_folder(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    make_run_files(runs, "run-a", 20)
    (runs / "run-a.log").write_text("still writing\n")
    assert RunFilesRetention(runs, timedelta(days=14)).prune(active=()) == []


def test_without_a_retention_nothing_is_removed(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    make_run_files(runs, "run-old", 400)
    assert RunFilesRetention(runs, None).maybe_prune(active=()) == []
    assert RunFilesRetention(runs, None).prune(active=()) == []
    assert (runs / "run-old").is_dir()


def test_pruning_runs_at_most_once_per_period(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    retention = RunFilesRetention(runs, timedelta(days=14), every=timedelta(hours=1))
    make_run_files(runs, "run-1", 20)
    assert retention.maybe_prune(active=()) == ["run-1"]
    make_run_files(runs, "run-2", 20)
    assert retention.maybe_prune(active=()) == []  # within the hour: left for the next pass
    assert (runs / "run-2").is_dir()


def test_a_missing_runs_folder_is_nothing_to_prune(tmp_path: Path) -> None:
    assert RunFilesRetention(tmp_path / "never-made", timedelta(days=1)).prune(active=()) == []


def test_the_runner_prunes_old_runs_after_a_real_run_and_keeps_the_new_runs_files(tmp_path: Path) -> None:
    repo = tmp_path / "kfp-monorepo"
    shutil.copytree(EXAMPLE_MONOREPO, repo, ignore=shutil.ignore_patterns("__pycache__"))
    package = compile_example(repo, "hello-pipeline", tmp_path / "hello-pipeline.yaml")
    runs = tmp_path / "runs"
    make_run_files(runs, "run-last-month", 30)
    runner = LocalRunner(runs, retention=RunFilesRetention(runs, timedelta(days=14)))
    now = datetime.now(UTC)
    run = Run(id="run-today", repo="o/r", pr=1, sha="a" * 40, base_sha=None, pipeline="hello-pipeline",
              trigger=Trigger.AUTORUN, state=RunState.RUNNING, created_at=now, updated_at=now)

    submission = runner.submit_run(RunRequest(run=run, package=_compiled(package), parameters={}))

    assert submission.state is RunState.SUCCEEDED, submission.detail
    assert not (runs / "run-last-month").exists() and not (runs / "run-last-month.log").exists()
    log = read_tail(runs / "run-today.log")
    assert log is not None and log.text.rstrip().endswith("finished with status SUCCESS")


def _compiled(path: Path) -> CompiledPipeline:
    return CompiledPipeline(pipeline="hello-pipeline", name="hello-pipeline", format=PackageFormat.IR_YAML,
                            package_path=path, inputs=(), images=(), sdk_version="2")
