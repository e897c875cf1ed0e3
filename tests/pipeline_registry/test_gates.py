"""Quality gates in `settings.yaml` (`run.gates`): absolute and relative conditions, the verdict on
a value, and errors naming the file, line and field; the gates are trusted (default branch)."""

from __future__ import annotations

import pytest

from pipeline_registry.errors import ConfigError
from pipeline_registry.gates import GateVerdict, parse_gate
from pipeline_registry.settings import parse_settings
from pipeline_registry.trusted import run_option_changes, trusted_run_options

FILE = "pipelines/p/settings.yaml"


@pytest.mark.parametrize(("condition", "value", "baseline", "verdict", "limit"), [
    (">= 0.90", 0.93, None, GateVerdict.PASSED, 0.90),
    (">= 0.90", 0.85, None, GateVerdict.FAILED, 0.90),
    ("<= baseline * 1.05", 0.21, 0.20, GateVerdict.PASSED, 0.21),
    ("<= baseline * 1.05", 0.30, 0.20, GateVerdict.FAILED, 0.21),
    ("<= baseline * 1.05", 0.30, None, GateVerdict.NO_BASELINE, None),
    (">= baseline - 0.01", 0.905, 0.91, GateVerdict.PASSED, 0.90),
    ("> baseline", 0.91, 0.91, GateVerdict.FAILED, 0.91),
    ("< 1e-3", 0.0005, None, GateVerdict.PASSED, 0.001),
    ("== 3", 3.0, None, GateVerdict.PASSED, 3.0),
    (">= 0.9", None, None, GateVerdict.MISSING, 0.9),
])
def test_a_gate_decides_a_value(condition: str, value: float | None, baseline: float | None,
                                verdict: GateVerdict, limit: float | None) -> None:
    got, held_to = parse_gate("m", condition).check(value, baseline)
    assert got is verdict
    assert held_to == pytest.approx(limit) if limit is not None else held_to is None


def test_gates_are_read_from_the_run_section_in_order() -> None:
    settings = parse_settings('arguments:\n  epochs: 2\nrun:\n  gates:\n    accuracy: ">=   0.9"\n'
                              '    loss: "<= baseline * 1.05"\n', FILE)
    assert settings.run.gates == {"accuracy": ">= 0.9", "loss": "<= baseline * 1.05"}
    assert settings.parameters == {"epochs": 2}


@pytest.mark.parametrize(("written", "line", "words"), [
    ('accuracy: ">= abc"', 5, "'>= abc' is not a gate"),
    ("accuracy: 0.9", 5, "a gate is a quoted comparison"),
    ('loss: "baseline * 2"', 5, "is not a gate"),
    ('loss: "<= baseline / 2"', 5, "is not a gate"),
])
def test_a_gate_that_is_not_understood_names_file_line_and_field(written: str, line: int, words: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_settings(f"arguments:\n  x: 1\nrun:\n  gates:\n    {written}\n", FILE)
    message = str(raised.value)
    assert f"{FILE}:{line}" in message and "run.gates." in message and words in message
    assert "'>= 0.9' or '<= baseline * 1.05'" in message


def test_gates_that_are_not_a_mapping_say_what_to_write() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_settings("run:\n  gates: [accuracy]\n", FILE)
    assert str(raised.value).startswith(f"{FILE}:2: run.gates: must map metric names to conditions")


def test_a_pull_request_cannot_loosen_its_own_gates() -> None:
    trusted = parse_settings('run:\n  gates:\n    accuracy: ">= 0.9"\n', FILE).run
    proposed = parse_settings('run:\n  gates:\n    accuracy: ">= 0.1"\n', FILE).run
    assert trusted_run_options(proposed, trusted).gates == {"accuracy": ">= 0.9"}
    [change] = run_option_changes(FILE, proposed, trusted)
    assert (change.key, change.proposed, change.in_effect) == ("run.gates", {"accuracy": ">= 0.1"},
                                                                {"accuracy": ">= 0.9"})
