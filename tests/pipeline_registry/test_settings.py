"""`settings.yaml` run options: `run.timeout` as seconds or a duration, with errors naming file and line."""

from __future__ import annotations

import pytest

from pipeline_registry.errors import ConfigError
from pipeline_registry.settings import parse_settings
from pipeline_registry.trusted import run_option_changes


@pytest.mark.parametrize(("written", "seconds"), [("3600", 3600), ("90m", 5400), ("2h", 7200),
                                                   ("1h30m", 5400), ("45s", 45), ("'600'", 600)])
def test_run_timeout_as_seconds_or_a_duration(written: str, seconds: int) -> None:
    settings = parse_settings(f"run:\n  timeout: {written}\n", "pipelines/p/settings.yaml")
    assert settings.run.timeout == seconds


@pytest.mark.parametrize("written", ["soon", "0", "-5", "1d", "h", "''"])
def test_a_timeout_that_is_not_a_duration_names_file_line_and_key(written: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_settings(f"arguments:\n  x: 1\nrun:\n  timeout: {written}\n", "pipelines/p/settings.yaml")
    assert "pipelines/p/settings.yaml:4" in str(raised.value) and "run.timeout" in str(raised.value)


def test_a_pull_request_cannot_lengthen_its_own_timeout() -> None:
    trusted = parse_settings("run:\n  timeout: 1h\n", "pipelines/p/settings.yaml").run
    proposed = parse_settings("run:\n  timeout: 48h\n", "pipelines/p/settings.yaml").run
    [change] = run_option_changes("pipelines/p/settings.yaml", proposed, trusted)
    assert (change.key, change.proposed, change.in_effect) == ("run.timeout", 48 * 3600, 3600)
