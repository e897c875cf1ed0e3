"""`limits:` in `.kfp-bot.yaml`: validated, defaults, capped by the bot's settings, and trusted
(the default branch's values apply; a pull request changing them is listed)."""

from __future__ import annotations

import pytest

from pipeline_registry.errors import ConfigError
from pipeline_registry.limits import LimitsConfig, RunLimits, capped
from pipeline_registry.repo_config import load_repo_config
from pipeline_registry.trusted import config_changes, trusted_config

CEILING = RunLimits(concurrent_runs=20, concurrent_runs_per_pr=10, runs_per_day=1000, runs_per_pr_per_day=200)


def test_limits_have_defaults_and_a_repository_may_set_each() -> None:
    assert capped(load_repo_config(None).limits, CEILING) == RunLimits(10, 5, 200, 50)
    config = load_repo_config("limits:\n  concurrent_runs: 8\n  runs_per_pr_per_day: 5\n")
    assert capped(config.limits, CEILING) == RunLimits(8, 5, 200, 5)


def test_the_bots_settings_cap_every_value() -> None:
    asked = LimitsConfig(concurrent_runs=50, concurrent_runs_per_pr=1, runs_per_day=5000, runs_per_pr_per_day=3)
    assert capped(asked, CEILING) == RunLimits(20, 1, 1000, 3)


@pytest.mark.parametrize(("text", "named"), [
    ("limits:\n  concurrent_run: 2\n", "limits.concurrent_run"),
    ("limits:\n  concurrent_runs: 0\n", "limits.concurrent_runs"),
    ("limits:\n  runs_per_day: -1\n", "limits.runs_per_day"),
])
def test_a_bad_limit_is_an_error_naming_the_key(text: str, named: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_repo_config(text)
    assert named in str(error.value)


def test_limits_are_trusted_the_default_branchs_apply_and_a_change_is_listed() -> None:
    trusted = load_repo_config("limits: {concurrent_runs: 2, runs_per_day: 10}\n")
    head = load_repo_config("limits: {concurrent_runs: 50, runs_per_day: 10000}\n")
    assert trusted_config(head, trusted).limits == trusted.limits
    [change] = config_changes(head, trusted)
    assert change.key == "limits"
    assert change.to_json()["proposed"] == {"concurrent_runs": 50, "concurrent_runs_per_pr": 5,
                                            "runs_per_day": 10000, "runs_per_pr_per_day": 50}


def test_stored_limits_read_back_and_anything_else_is_refused() -> None:
    limits = RunLimits(3, 1, 7, 2)
    assert RunLimits.from_json(limits.to_json()) == limits
    assert RunLimits.from_json({"concurrent_runs": 3}) is None
    assert RunLimits.from_json("nonsense") is None
