"""`autorun` rules in `.kfp-bot.yaml`: on/off, a label, paths; errors name file, line and key."""

from __future__ import annotations

import pytest

from pipeline_registry.autorun import ALWAYS, AutorunRule, autorun_hold
from pipeline_registry.errors import ConfigError
from pipeline_registry.repo_config import load_repo_config


def test_on_off_and_rules_for_the_repository_and_one_pipeline() -> None:
    config = load_repo_config("autorun:\n  label: run-pipelines\n"
                              "pipelines:\n  training:\n    autorun:\n      paths: ['utils/**', pipelines/training/**]\n"
                              "  nightly:\n    autorun: false\n")
    assert config.autorun_for("hello") == AutorunRule(label="run-pipelines")
    assert config.autorun_for("training") == AutorunRule(paths=("utils/**", "pipelines/training/**"))
    assert config.autorun_for("nightly").enabled is False
    assert load_repo_config(None).autorun_for("any") == ALWAYS


def test_what_holds_a_pipeline_and_what_lets_it_run() -> None:
    label = AutorunRule(label="run-pipelines")
    paths = AutorunRule(paths=("utils/**",))
    assert autorun_hold(ALWAYS, "p", labels=(), paths=()) is None
    assert "autorun is off" in (autorun_hold(AutorunRule(enabled=False), "p", labels=(), paths=()) or "")
    assert "label `run-pipelines`" in (autorun_hold(label, "p", labels=("bug",), paths=()) or "")
    assert autorun_hold(label, "p", labels=("bug", "run-pipelines"), paths=()) is None
    assert "reaches utils/**" in (autorun_hold(paths, "p", labels=(), paths=("pipelines/p/a.py",)) or "")
    assert autorun_hold(paths, "p", labels=(), paths=("utils/io/read.py",)) is None
    both = AutorunRule(label="go", paths=("utils/**",))
    assert autorun_hold(both, "p", labels=("go",), paths=("docs.md",)) is not None


@pytest.mark.parametrize(("text", "key"), [
    ("autorun:\n  label: ''\n", "autorun.label"),
    ("autorun: maybe\n", "autorun"),
    ("autorun:\n  lable: go\n", "autorun"),
    ("pipelines:\n  p:\n    autorun:\n      paths: ['']\n", "pipelines.p.autorun"),
])
def test_a_bad_rule_names_the_key(text: str, key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_repo_config(text)
    assert key in str(raised.value) and ".kfp-bot.yaml:" in str(raised.value)
