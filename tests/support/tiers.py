"""A pytest plugin that ends every test session with which test tiers ran and which were skipped, and why.

Some tiers need programs a machine may not have (Google's Pub/Sub emulator, a PostgreSQL server,
bubblewrap); their tests skip themselves with the reason. The summary groups the outcomes by
tier so that `make test` and `.ci/run` say plainly, e.g., "Pub/Sub emulator: SKIPPED (Java is not
installed ...)" instead of leaving it to a count of skips.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest


@dataclass
class Tier:
    """One tier: how its tests are recognised, and what happened to them."""

    name: str
    matches: Callable[[str], bool]
    outcomes: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        ran = self.outcomes["passed"] + self.outcomes["failed"]
        skipped = self.outcomes["skipped"]
        if not ran and not skipped:
            return f"{self.name}: not selected"
        why = "; ".join(f"{reason} ({count})" if count > 1 else reason for reason, count in self.reasons.most_common())
        if not ran:
            return f"{self.name}: SKIPPED: {why}"
        text = f"{self.name}: ran {ran} ({self.outcomes['passed']} passed, {self.outcomes['failed']} failed)"
        return f"{text}, {skipped} skipped: {why}" if skipped else text


def _tiers() -> list[Tier]:
    return [
        Tier("Pub/Sub emulator (tests/emulator, Google's emulator)", lambda node: node.startswith("tests/emulator/")),
        Tier("sandbox + hostile suite (tests/security, bubblewrap)", lambda node: node.startswith("tests/security/")),
        Tier("headless Chromium (tests/browser, Debian chromium + chromium-driver)",
             lambda node: node.startswith("tests/browser/")),
        Tier("PostgreSQL (store tests on a throwaway server)", lambda node: "postgresql" in node.split("[", 1)[-1]
             if "[" in node else False),
        # The fakes' own tests check the fakes against the services' documented behaviour; they are
        # reported apart so the product's count says what the product's tests did (`-m "not fakes"`
        # runs the product's alone).
        Tier("the fakes' own tests (tests/fakes, not the product)", lambda node: node.startswith("tests/fakes/")),
        Tier("the product, everything else (SQLite, git, kfp, against the fakes)", lambda node: True),
    ]


class TierSummary:
    """Collects test outcomes by tier and prints them at the end of the session."""

    def __init__(self) -> None:
        self.tiers = _tiers()
        self.outcome: dict[str, str] = {}
        self.reason: dict[str, str] = {}

    def tier_of(self, nodeid: str) -> Tier:
        return next(t for t in self.tiers if t.matches(nodeid))

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # One outcome per test: a failure in any phase wins, then a skip, then a passed call.
        before = self.outcome.get(report.nodeid)
        if report.failed:
            self.outcome[report.nodeid] = "failed"
        elif report.skipped and before != "failed":
            self.outcome[report.nodeid] = "skipped"
            self.reason[report.nodeid] = _reason(report.longrepr)
        elif report.when == "call" and before is None:
            self.outcome[report.nodeid] = "passed"

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        for nodeid, outcome in self.outcome.items():
            tier = self.tier_of(nodeid)
            tier.outcomes[outcome] += 1
            if outcome == "skipped":
                tier.reasons[self.reason[nodeid]] += 1
        terminalreporter.section("test tiers")
        for tier in self.tiers:
            terminalreporter.write_line(tier.line())


def _reason(longrepr: Any) -> str:
    """The text of a skip: pytest gives (file, line, 'Skipped: reason')."""
    text = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return str(text).removeprefix("Skipped: ").strip()


def pytest_configure(config: pytest.Config) -> None:
    """Register the summary once per session (not in xdist workers' own reports)."""
    config.pluginmanager.register(TierSummary(), "kfp-bot-tier-summary")
