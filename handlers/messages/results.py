"""A run's results beside its baseline, as the check summary, the PR comment, Slack and the run
page show them (`handlers/templates/results.md.j2`), and the words of a failed quality gate.

Data in (a `handlers.run_results.RunResults`), text out: numbers are formatted once here so a
value reads the same everywhere.
"""

from __future__ import annotations

from typing import Any

from handlers.messages.rendering import MAX_ERROR_CHARS, format_value, macro, render
from handlers.run_results import Comparison, GateOutcome, RunResults
from pipeline_registry.gates import GateVerdict

GATE_EMOJI = {GateVerdict.PASSED: "✅", GateVerdict.FAILED: "❌", GateVerdict.NO_BASELINE: "➖",
              GateVerdict.MISSING: "❌"}


def format_number(value: float | None) -> str:
    """A metric as people read it: up to 6 significant digits, an em dash when unknown."""
    if value is None:
        return "—"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def format_delta(comparison: Comparison) -> str:
    """The change from the baseline: `+0.02 (+2.2%)`, `±0`, or an em dash when there is none."""
    delta = comparison.delta
    if delta is None:
        return "—"
    if delta == 0:
        return "±0"
    text = f"{delta:+.4g}"
    if comparison.baseline:
        text += f" ({delta / abs(comparison.baseline) * 100:+.1f}%)"
    return text


def results_view(results: RunResults | None) -> dict[str, Any] | None:
    """Results as the templates see them (None: the run has none)."""
    if results is None:
        return None
    return {
        "baseline": results.baseline_run_id,
        "note": results.note,
        "metrics": [{"metric": c.metric, "value": format_number(c.value), "baseline": format_number(c.baseline),
                     "delta": format_delta(c)} for c in results.comparisons],
        # By name: runners report outputs in no fixed order, and a table should not reshuffle.
        "outputs": [{"name": name, "value": format_value(value)} for name, value in sorted(results.outputs.items())],
        "gates": [_gate_view(g) for g in results.gates],
        "passed": results.passed,
        "headline": headline(results),
    }


def _gate_view(gate: GateOutcome) -> dict[str, Any]:
    return {"metric": gate.metric, "condition": gate.condition, "verdict": gate.verdict.value,
            "emoji": GATE_EMOJI[gate.verdict], "value": format_number(gate.value),
            "limit": format_number(gate.limit), "baseline": format_number(gate.baseline),
            "relative": "baseline" in gate.condition}


def results_section(results: RunResults | None) -> str:
    """The markdown `Results` section of a check summary (empty without results)."""
    view = results_view(results)
    if view is None:
        return ""
    return render("results.md.j2", MAX_ERROR_CHARS, r=view)


def gate_failure(results: RunResults) -> str:
    """Why a run whose metrics did not meet its gates failed: one line per gate, with the numbers."""
    return "\n".join(macro("_results.j2", "gate_line", g=_gate_view(g)) for g in results.failed_gates)


def headline(results: RunResults | None) -> str:
    """One short line for Slack: the headline metric, its value and its change from the baseline."""
    if results is None:
        return ""
    comparison = results.headline
    if comparison is None or comparison.value is None:
        return ""
    return macro("_results.j2", "headline", c={"metric": comparison.metric,
                                                 "value": format_number(comparison.value),
                                                 "delta": format_delta(comparison),
                                                 "has_baseline": comparison.baseline is not None})
