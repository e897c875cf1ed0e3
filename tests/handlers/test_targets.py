"""Picking an adapter by pipeline target: one route per target, a fallback, the bot's default."""

from __future__ import annotations

from handlers.targets import ByTarget
from pipeline_registry.repo_config import Target


def test_a_target_gets_its_own_adapter_else_the_fallback() -> None:
    routed = ByTarget({Target.KFP: "kfp"}, default=Target.LOCAL, fallback="folder")
    assert routed.for_target(Target.KFP) == "kfp"
    assert routed.for_target(Target.VERTEX) == "folder"
    assert routed.for_target(None) == "folder"  # a pipeline naming no target: the bot's default (local)
    assert set(routed.every()) == {"kfp", "folder"}


def test_the_default_target_decides_for_pipelines_naming_none() -> None:
    routed: ByTarget[str] = ByTarget({Target.KFP: "kfp"}, default=Target.KFP)
    assert routed.for_target(None) == "kfp"
    assert routed.for_target(Target.VERTEX) is None  # no adapter and no fallback: the caller says what is missing


def test_one_adapter_for_every_target_or_none_at_all() -> None:
    shared = ByTarget.only("store")
    assert [shared.for_target(t) for t in (*Target, None)] == ["store"] * (len(Target) + 1)
    assert shared.every() == ("store",)
    nothing: ByTarget[str] = ByTarget.only(None)
    assert nothing.for_target(Target.VERTEX) is None and nothing.every() == ()


def test_an_adapter_serving_several_targets_is_listed_once() -> None:
    runner = object()
    assert ByTarget({Target.LOCAL: runner, Target.VERTEX: runner}, fallback=runner).every() == (runner,)
