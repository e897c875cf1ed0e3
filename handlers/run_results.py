"""A run's results beside its baseline, and the quality gates they must meet.

When a run ends `succeeded`, its backend is asked for what it produced (`Runner.run_results`:
kfp.local's outputs and metrics artifacts, Vertex AI's task details), which is compared with the
baseline — the last run of the same pipeline on the default branch (a deploy with `deploy.run`,
a push run) whose results passed — and held to the pipeline's `run.gates` (trusted: the default
branch's, recorded when the run was compiled). A gate that does not hold turns the run `failed`
with the numbers; a relative gate with no baseline passes, saying so; a metric a gate names that
the run did not report fails it. The outcome is one frozen `RunResults`, kept as JSON in the
store's `run-results` scope (`load_results`), shown in the check, the PR comment, Slack and the
run's page.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from handlers.ports.run import CollectedResults
from handlers.ports.store import Store
from handlers.run_models import Run
from kfp_bot_errors import KfpBotError
from pipeline_registry.gates import GateVerdict, parse_gates

if TYPE_CHECKING:
    from handlers.context import HandlerContext

RESULTS_SCOPE = "run-results"
"""Store scope: run id → its `RunResults` as JSON."""
GATES_SCOPE = "run-gates"
"""Store scope: run id → the `run.gates` it is held to (JSON), recorded when it is compiled."""
BASELINE_SCOPE = "results-baseline"
"""Store scope: `<repo>:<pipeline>` → the id of the default-branch run that is the baseline."""

# Bounds on what a backend's answer may put into the store and the messages.
MAX_METRICS = 100
MAX_OUTPUTS = 50
MAX_OUTPUT_CHARS = 500


@dataclass(frozen=True)
class Comparison:
    """One metric of the run beside the baseline's (either may be missing)."""

    metric: str
    value: float | None
    baseline: float | None = None

    @property
    def delta(self) -> float | None:
        """The change from the baseline, when both are known."""
        if self.value is None or self.baseline is None:
            return None
        return self.value - self.baseline


@dataclass(frozen=True)
class GateOutcome:
    """What one gate said: the value held to the limit (limit None: no baseline to compute it)."""

    metric: str
    condition: str
    verdict: GateVerdict
    value: float | None = None
    limit: float | None = None
    baseline: float | None = None

    @property
    def holds(self) -> bool:
        """True unless the gate failed or its metric is missing."""
        return self.verdict in (GateVerdict.PASSED, GateVerdict.NO_BASELINE)


@dataclass(frozen=True)
class RunResults:
    """A finished run's metrics and outputs, its baseline, the comparisons and the gates."""

    run_id: str
    metrics: Mapping[str, float] = field(default_factory=dict)
    outputs: Mapping[str, Any] = field(default_factory=dict)
    baseline_run_id: str | None = None
    comparisons: tuple[Comparison, ...] = ()
    gates: tuple[GateOutcome, ...] = ()
    note: str = ""

    @property
    def passed(self) -> bool:
        """True when every gate holds (no gate: True)."""
        return all(gate.holds for gate in self.gates)

    @property
    def failed_gates(self) -> tuple[GateOutcome, ...]:
        """The gates that did not hold, in the file's order."""
        return tuple(gate for gate in self.gates if not gate.holds)

    @property
    def headline(self) -> Comparison | None:
        """The metric to show first: the first gate's metric, or else the first metric."""
        by_metric = {c.metric: c for c in self.comparisons}
        for gate in self.gates:
            if gate.metric in by_metric:
                return by_metric[gate.metric]
        return self.comparisons[0] if self.comparisons else None

    @property
    def empty(self) -> bool:
        """True when the run reported neither metrics nor outputs."""
        return not self.metrics and not self.outputs

    def to_json(self) -> dict[str, Any]:
        """The stored form."""
        return {"run_id": self.run_id, "metrics": dict(self.metrics), "outputs": dict(self.outputs),
                "baseline_run_id": self.baseline_run_id,
                "comparisons": [{"metric": c.metric, "value": c.value, "baseline": c.baseline}
                                for c in self.comparisons],
                "gates": [{"metric": g.metric, "condition": g.condition, "verdict": g.verdict.value,
                           "value": g.value, "limit": g.limit, "baseline": g.baseline} for g in self.gates],
                "note": self.note}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunResults:
        """Results as `to_json` stored them."""
        return cls(run_id=str(data.get("run_id") or ""), metrics=dict(data.get("metrics") or {}),
                   outputs=dict(data.get("outputs") or {}), baseline_run_id=data.get("baseline_run_id"),
                   comparisons=tuple(Comparison(str(c["metric"]), c.get("value"), c.get("baseline"))
                                     for c in data.get("comparisons") or ()),
                   gates=tuple(GateOutcome(str(g["metric"]), str(g["condition"]), GateVerdict(g["verdict"]),
                                           g.get("value"), g.get("limit"), g.get("baseline"))
                               for g in data.get("gates") or ()),
                   note=str(data.get("note") or ""))


def load_results(store: Store, run_id: str) -> RunResults | None:
    """The results kept for a run (None: it has none: not finished, not run, or stored unreadably)."""
    stored = store.get_external(RESULTS_SCOPE, run_id)
    if stored is None:
        return None
    try:
        return RunResults.from_json(json.loads(stored))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def save_results(store: Store, results: RunResults) -> None:
    """Keep a run's results (replacing what was kept)."""
    store.set_external(RESULTS_SCOPE, results.run_id, json.dumps(results.to_json(), sort_keys=False))


def remember_gates(store: Store, run_id: str, gates: Mapping[str, str] | None) -> None:
    """Record the gates (`run.gates`, trusted) a run is held to when it ends."""
    store.set_external(GATES_SCOPE, run_id, json.dumps(dict(gates or {})))


def gates_of(store: Store, run_id: str) -> dict[str, str]:
    """The gates recorded for a run (none recorded: none)."""
    stored = store.get_external(GATES_SCOPE, run_id)
    try:
        gates = json.loads(stored) if stored else {}
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in gates.items()} if isinstance(gates, dict) else {}


def evaluate(run_id: str, collected: CollectedResults, baseline: RunResults | None,
             gates: Mapping[str, str]) -> RunResults:
    """The results of `run_id`: its metrics beside `baseline`'s, held to `gates` (pure)."""
    metrics = _bounded_metrics(collected.metrics)
    before = dict(baseline.metrics) if baseline is not None else {}
    comparisons = [Comparison(name, value, before.get(name)) for name, value in metrics.items()]
    comparisons += [Comparison(name, None, value) for name, value in before.items() if name not in metrics]
    outcomes = []
    for gate in parse_gates(dict(gates)):
        verdict, limit = gate.check(metrics.get(gate.metric), before.get(gate.metric))
        outcomes.append(GateOutcome(gate.metric, gate.condition, verdict, metrics.get(gate.metric), limit,
                                    before.get(gate.metric)))
    return RunResults(run_id=run_id, metrics=metrics, outputs=_bounded_outputs(collected.outputs),
                      baseline_run_id=baseline.run_id if baseline is not None else None,
                      comparisons=tuple(comparisons), gates=tuple(outcomes), note=collected.note)


def conclude(ctx: HandlerContext, run: Run) -> RunResults:
    """Collect, compare, gate and keep the results of `run`, which its backend says succeeded.

    A default-branch run (no pull request) whose gates hold becomes its pipeline's baseline. A
    backend that reports no results (a KFP endpoint) keeps nothing, unless gates need them: then
    they fail as missing, saying why."""
    try:
        collected = ctx.runner.run_results(run)
    except KfpBotError as exc:
        collected = CollectedResults(note=f"Outputs and metrics could not be read: {exc}")
    gates = gates_of(ctx.store, run.id)
    if collected is None:
        collected = CollectedResults(note="This backend does not report outputs and metrics.")
        if not gates:  # nothing to show or hold: the check stays as it was
            return RunResults(run_id=run.id, note=collected.note)
    baseline = baseline_for(ctx.store, run)
    results = evaluate(run.id, collected, baseline, gates)
    save_results(ctx.store, results)
    if run.pr is None and results.passed and not results.empty:
        ctx.store.set_external(BASELINE_SCOPE, _baseline_key(run), run.id)
    return results


def reuse(ctx: HandlerContext, run: Run, earlier: Run) -> RunResults | None:
    """A run that ends as `unchanged since run X` takes X's results (compared with today's
    baseline, held to its own gates); None when X kept none."""
    kept = load_results(ctx.store, earlier.id)
    if kept is None:
        return None
    collected = CollectedResults(metrics=kept.metrics, outputs=kept.outputs,
                                 note=f"Results of run {earlier.id}, which ran exactly this.")
    results = evaluate(run.id, collected, baseline_for(ctx.store, run), gates_of(ctx.store, run.id))
    save_results(ctx.store, results)
    return results


def baseline_for(store: Store, run: Run) -> RunResults | None:
    """The results of the pipeline's baseline run (never the run itself), or None."""
    baseline_id = store.get_external(BASELINE_SCOPE, _baseline_key(run))
    if baseline_id is None or baseline_id == run.id:
        return None
    return load_results(store, baseline_id)


def _baseline_key(run: Run) -> str:
    return f"{run.repo}:{run.pipeline}"


def _bounded_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    kept: dict[str, float] = {}
    for name, value in metrics.items():
        if len(kept) >= MAX_METRICS:
            break
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            continue
        kept[str(name)[:200]] = float(value)
    return kept


def _bounded_outputs(outputs: Mapping[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for name, value in list(outputs.items())[:MAX_OUTPUTS]:
        if not isinstance(value, str | int | float | bool) or value is None:
            value = json.dumps(value, default=str)
        if isinstance(value, float) and not math.isfinite(value):
            value = str(value)
        if isinstance(value, str) and len(value) > MAX_OUTPUT_CHARS:
            value = value[:MAX_OUTPUT_CHARS - 1] + "…"
        kept[str(name)[:200]] = value
    return kept
