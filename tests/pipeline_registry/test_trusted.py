"""Merging and comparing trusted keys: the default branch's values win, changes are listed."""

from __future__ import annotations

from pipeline_registry.repo_config import Target, load_repo_config
from pipeline_registry.settings import RunOptions
from pipeline_registry.trusted import (
    capped_compile,
    config_changes,
    run_option_changes,
    trusted_config,
    trusted_run_options,
)

TRUSTED = load_repo_config("autorun: false\ntarget: vertex\nallowed_users: [ann]\n"
                           "compile: {timeout_seconds: 300, memory_mb: 2048}\n"
                           "pipelines: {a: {autorun: true, target: local}}\n")
HEAD = load_repo_config("autorun: true\nallowed_users: [ann, mallory]\nimage_registry: eu.gcr.io/p\n"
                        "compile: {timeout_seconds: 3600, memory_mb: 65536, requirements: ['kfp==1.8.22']}\n"
                        "pipelines: {b: {target: kfp, pipeline_file: b.py}}\n")


def test_trusted_keys_come_from_the_default_branch_and_the_rest_from_the_head() -> None:
    merged = trusted_config(HEAD, TRUSTED)
    assert (merged.autorun.enabled, merged.target, merged.allowed_users) == (False, Target.VERTEX, ("ann",))
    assert (merged.compile.timeout_seconds, merged.compile.memory_mb) == (300, 2048)
    assert merged.compile.requirements == ("kfp==1.8.22",) and merged.image_registry == "eu.gcr.io/p"
    assert merged.autorun_for("a").enabled is True and merged.target_for("a") is Target.LOCAL
    assert merged.target_for("b") is Target.VERTEX and merged.override("b").pipeline_file == "b.py"


def test_changes_list_every_trusted_key_the_head_changes() -> None:
    keys = {(c.key, str(c.proposed), str(c.in_effect)) for c in config_changes(HEAD, TRUSTED)}
    assert keys == {("autorun", "true", "false"), ("target", "None", "Target.VERTEX"),
                    ("allowed_users", "('ann', 'mallory')", "('ann',)"),
                    ("compile.timeout_seconds", "3600", "300"), ("compile.memory_mb", "65536", "2048"),
                    ("pipelines.a.autorun", "None", "true"), ("pipelines.a.target", "None", "Target.LOCAL"),
                    ("pipelines.b.target", "Target.KFP", "None")}
    assert config_changes(TRUSTED, TRUSTED) == []
    as_json = {c.key: c.to_json() for c in config_changes(HEAD, TRUSTED)}
    assert as_json["target"]["in_effect"] == "vertex" and as_json["allowed_users"]["proposed"] == ["ann", "mallory"]


def test_run_options_identity_target_and_root_are_trusted() -> None:
    head = RunOptions(service_account="evil@x", target=Target.VERTEX, pipeline_root="gs://mine", enable_caching=False)
    trusted = RunOptions(service_account="ok@x")
    merged = trusted_run_options(head, trusted)
    assert (merged.service_account, merged.target, merged.pipeline_root, merged.enable_caching) == (
        "ok@x", None, None, False)
    assert [c.key for c in run_option_changes("s.yaml", head, trusted)] == [
        "run.service_account", "run.target", "run.pipeline_root"]


def test_compile_limits_are_capped() -> None:
    capped = capped_compile(HEAD, max_timeout_seconds=600, max_memory_mb=8192)
    assert (capped.compile.timeout_seconds, capped.compile.memory_mb) == (600, 8192)
    low = capped_compile(TRUSTED, max_timeout_seconds=600, max_memory_mb=8192)
    assert (low.compile.timeout_seconds, low.compile.memory_mb) == (300, 2048)
