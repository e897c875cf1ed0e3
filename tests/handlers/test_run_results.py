"""A run's results: metrics compared with the baseline's, gates held, kept in the store as JSON and
read back (`load_results` is what the run page shows)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from bot.store import SqlStore
from deploy.errors import RunError
from handlers.ports.run import CollectedResults
from handlers.run_models import Run, RunState
from handlers.run_results import (
    BASELINE_SCOPE,
    RESULTS_SCOPE,
    RunResults,
    baseline_for,
    conclude,
    evaluate,
    gates_of,
    load_results,
    remember_gates,
    save_results,
)
from pipeline_registry.gates import GateVerdict
from tests.handlers.messages.samples import make_run
from tests.support.status_ports import FixedBuilder, FixedRunner, RecordingBus, SteppingClock, make_context, stored_run


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    with SqlStore(f"sqlite:///{tmp_path / 'bot.db'}") as opened:
        yield opened


BASELINE = RunResults(run_id="run-base", metrics={"accuracy": 0.91, "loss": 0.20, "old": 1.0})


def test_metrics_are_compared_with_the_baseline_and_held_to_the_gates() -> None:
    collected = CollectedResults(metrics={"accuracy": 0.93, "loss": 0.25}, outputs={"model": "gs://m/1"})
    results = evaluate("run-1", collected, BASELINE, {"accuracy": ">= 0.9", "loss": "<= baseline * 1.05",
                                                       "f1": ">= 0.5"})
    assert results.baseline_run_id == "run-base"
    assert [(c.metric, c.value, c.baseline) for c in results.comparisons] == [
        ("accuracy", 0.93, 0.91), ("loss", 0.25, 0.20), ("old", None, 1.0)]
    assert results.comparisons[0].delta == pytest.approx(0.02)
    verdicts = [(g.metric, g.verdict) for g in results.gates]
    assert verdicts == [("accuracy", GateVerdict.PASSED), ("loss", GateVerdict.FAILED), ("f1", GateVerdict.MISSING)]
    assert results.gates[1].limit == pytest.approx(0.21)
    assert not results.passed and [g.metric for g in results.failed_gates] == ["loss", "f1"]
    assert results.headline is not None and results.headline.metric == "accuracy"


def test_without_a_baseline_a_relative_gate_passes_saying_so() -> None:
    results = evaluate("run-1", CollectedResults(metrics={"loss": 0.3}), None, {"loss": "<= baseline * 1.05"})
    assert results.passed and results.gates[0].verdict is GateVerdict.NO_BASELINE
    assert results.baseline_run_id is None and results.comparisons[0].baseline is None


def test_the_headline_is_the_first_metric_without_gates() -> None:
    results = evaluate("run-1", CollectedResults(metrics={"f1": 0.7, "auc": 0.8}), None, {})
    assert results.headline is not None and results.headline.metric == "f1"


def test_what_a_backend_reports_is_bounded() -> None:
    metrics = {f"m{i}": float(i) for i in range(500)} | {"nan": float("nan"), "flag": True}
    results = evaluate("run-1", CollectedResults(metrics=metrics, outputs={"long": "x" * 10_000, "obj": {"a": 1}}),
                       None, {})
    assert len(results.metrics) == 100 and "nan" not in results.metrics
    assert len(results.outputs["long"]) == 500 and results.outputs["obj"] == '{"a": 1}'


def test_results_are_kept_and_read_back(store: SqlStore) -> None:
    results = evaluate("run-1", CollectedResults(metrics={"accuracy": 0.93}, note="one task unreadable"),
                       BASELINE, {"accuracy": ">= 0.95"})
    save_results(store, results)
    assert load_results(store, "run-1") == results
    assert load_results(store, "run-unknown") is None
    store.set_external(RESULTS_SCOPE, "run-broken", "{not json")
    assert load_results(store, "run-broken") is None


def test_gates_are_recorded_per_run(store: SqlStore) -> None:
    remember_gates(store, "run-1", {"accuracy": ">= 0.9"})
    assert gates_of(store, "run-1") == {"accuracy": ">= 0.9"}
    assert gates_of(store, "run-2") == {}


def test_the_baseline_is_the_pipelines_default_branch_run_never_the_run_itself(store: SqlStore) -> None:
    run = make_run(run_id="run-1")
    assert baseline_for(store, run) is None
    save_results(store, BASELINE)
    store.set_external(BASELINE_SCOPE, f"{run.repo}:{run.pipeline}", "run-base")
    assert baseline_for(store, run) == BASELINE
    store.set_external(BASELINE_SCOPE, f"{run.repo}:{run.pipeline}", "run-1")
    assert baseline_for(store, run) is None


class BrokenResults(FixedRunner):
    """A backend that cannot be asked for results."""

    def run_results(self, run: Run) -> CollectedResults | None:
        raise RunError("Vertex AI is unavailable")


def test_a_backend_without_results_keeps_nothing_unless_gates_need_them(tmp_path: Path) -> None:
    clock = SteppingClock()
    with SqlStore(f"sqlite:///{tmp_path / 'bot.db'}", clock=clock) as store:
        ctx = make_context(store, tmp_path, clock, builder=FixedBuilder(), runner=FixedRunner(), bus=RecordingBus())
        quiet = stored_run(store, clock, "run-quiet", RunState.RUNNING)
        assert conclude(ctx, quiet).passed and load_results(store, "run-quiet") is None

        gated = stored_run(store, clock, "run-gated", RunState.RUNNING)
        remember_gates(store, "run-gated", {"accuracy": ">= 0.9"})
        results = conclude(ctx, gated)
        assert not results.passed and results.gates[0].verdict is GateVerdict.MISSING
        assert load_results(store, "run-gated") == results and "does not report" in results.note

        broken = replace(ctx, runner=BrokenResults())
        unread = stored_run(store, clock, "run-unread", RunState.RUNNING)
        remember_gates(store, "run-unread", {"accuracy": ">= 0.9"})
        results = conclude(broken, unread)
        assert not results.passed
        assert results.note == "Outputs and metrics could not be read: Vertex AI is unavailable"
