"""Quality gates: conditions a run's metrics must meet, written in `settings.yaml` under `run.gates`.

```yaml
run:
  gates:
    accuracy: ">= 0.90"                 # absolute
    loss: "<= baseline * 1.05"          # relative to the baseline run (the default branch's)
    f1: ">= baseline - 0.01"
```

A condition is a comparison (`>=`, `<=`, `>`, `<`, `==`) with a number, or with `baseline`
optionally scaled (`* x`) or shifted (`+ x`, `- x`). Parsing is pure and happens when
`settings.yaml` is read, so a condition that cannot be understood is an error naming the file and
the field; `Gate.check` decides one metric against it.
"""

from __future__ import annotations

import enum
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

EXAMPLES = "write e.g. '>= 0.9' or '<= baseline * 1.05'"
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_CONDITION = re.compile(rf"^\s*(?P<op>>=|<=|==|>|<)\s*(?:(?P<number>{_NUMBER})|baseline"
                        rf"(?:\s*(?P<arith>[*+-])\s*(?P<operand>{_NUMBER}))?)\s*$")


class GateOp(enum.Enum):
    """How a metric is compared with its limit."""

    GE = ">="
    LE = "<="
    GT = ">"
    LT = "<"
    EQ = "=="

    @property
    def compare(self) -> Callable[[float, float], bool]:
        """The comparison as a function of (value, limit)."""
        return _COMPARE[self]


_COMPARE: dict[GateOp, Callable[[float, float], bool]] = {
    GateOp.GE: operator.ge, GateOp.LE: operator.le, GateOp.GT: operator.gt, GateOp.LT: operator.lt,
    GateOp.EQ: lambda value, limit: math.isclose(value, limit, rel_tol=1e-9, abs_tol=1e-12),
}


class GateVerdict(enum.Enum):
    """What a gate said about one run."""

    PASSED = "passed"
    FAILED = "failed"
    NO_BASELINE = "no baseline"   # relative gate, nothing to compare with: it passes, saying so
    MISSING = "missing"           # the run reported no such metric: it fails


@dataclass(frozen=True)
class Gate:
    """One parsed condition on one metric."""

    metric: str
    condition: str
    op: GateOp
    number: float | None = None          # absolute limit
    arith: str | None = None             # relative: `*`, `+`, `-` with `operand`, or None (baseline itself)
    operand: float = 0.0

    @property
    def relative(self) -> bool:
        """True when the limit comes from the baseline run."""
        return self.number is None

    def limit(self, baseline: float | None) -> float | None:
        """The number the metric is compared with (None: relative, and no baseline value)."""
        if self.number is not None:
            return self.number
        if baseline is None:
            return None
        if self.arith == "*":
            return baseline * self.operand
        if self.arith == "+":
            return baseline + self.operand
        if self.arith == "-":
            return baseline - self.operand
        return baseline

    def check(self, value: float | None, baseline: float | None) -> tuple[GateVerdict, float | None]:
        """The verdict on `value` (None: not reported) and the limit it was held to."""
        if value is None:
            return GateVerdict.MISSING, self.limit(baseline)
        limit = self.limit(baseline)
        if limit is None:
            return GateVerdict.NO_BASELINE, None
        return (GateVerdict.PASSED if self.op.compare(value, limit) else GateVerdict.FAILED), limit


def parse_gate(metric: str, condition: object) -> Gate:
    """The gate `metric: condition`; ValueError naming what is wrong (pydantic shows it with the
    file, line and field)."""
    if not isinstance(condition, str):
        raise ValueError(f"a gate is a quoted comparison, not {condition!r}: {EXAMPLES}")
    match = _CONDITION.match(condition)
    if match is None:
        raise ValueError(f"'{condition}' is not a gate: {EXAMPLES}")
    op = GateOp(match["op"])
    text = " ".join(condition.split())
    if match["number"] is not None:
        number = float(match["number"])
        if not math.isfinite(number):
            raise ValueError(f"'{condition}' is not a gate: the limit must be a finite number")
        return Gate(metric=metric, condition=text, op=op, number=number)
    operand = float(match["operand"]) if match["operand"] is not None else 0.0
    if not math.isfinite(operand):
        raise ValueError(f"'{condition}' is not a gate: the factor must be a finite number")
    return Gate(metric=metric, condition=text, op=op, arith=match["arith"], operand=operand)


def parse_gates(gates: dict[str, str]) -> tuple[Gate, ...]:
    """Every gate of a `run.gates` mapping, in the file's order (validated when it was read)."""
    return tuple(parse_gate(metric, condition) for metric, condition in gates.items())
