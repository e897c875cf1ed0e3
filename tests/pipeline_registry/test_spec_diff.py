"""The structural diff of compiled pipelines, on specs compiled by the real kfp SDK.

Each test compiles a small pipeline twice (base and head differ by one kind of change) and
checks that the diff names exactly that change, and nothing else; an edit that compiles to the
same spec (a comment, reformatting) shows no difference.
"""

from __future__ import annotations

import runpy
import textwrap
from pathlib import Path

import pytest
import yaml

from pipeline_registry.spec_diff import Change, ChangeKind, PipelineDiff, diff_settings, diff_specs, flatten_settings

kfp_compiler = pytest.importorskip("kfp.compiler")

BASE = '''
from kfp import dsl

@dsl.container_component
def prepare(rows: int, data: dsl.Output[dsl.Dataset]):
    return dsl.ContainerSpec(image="gcr.io/p/prepare:content-aaaa", command=["python", "prep.py"],
                             args=["--rows", rows, "--out", data.path])

@dsl.container_component
def train(data: dsl.Input[dsl.Dataset], epochs: int):
    return dsl.ContainerSpec(image="gcr.io/p/train:content-bbbb", command=["python", "train.py"],
                             args=["--data", data.path, "--epochs", epochs])

@dsl.pipeline(name="demo")
def demo(rows: int = 100, epochs: int = 3):
    prep = prepare(rows=rows)
    fit = train(data=prep.outputs["data"], epochs=epochs)
'''


def compile_source(tmp_path: Path, source: str, name: str) -> dict:
    """Compile `source`'s `demo` pipeline with the real kfp compiler and load the package."""
    module = tmp_path / f"{name}.py"
    module.write_text(textwrap.dedent(source), encoding="utf-8")
    package = tmp_path / f"{name}.yaml"
    kfp_compiler.Compiler().compile(runpy.run_path(str(module))["demo"], str(package))
    return yaml.safe_load(package.read_text(encoding="utf-8"))


def changes_for(tmp_path: Path, head_source: str) -> tuple[Change, ...]:
    return diff_specs(compile_source(tmp_path, BASE, "base"), compile_source(tmp_path, head_source, "head"))


def test_an_edit_that_compiles_to_the_same_spec_shows_no_difference(tmp_path):
    reformatted = BASE.replace("def demo(rows: int = 100, epochs: int = 3):",
                               "def demo(rows: int = 100,\n         epochs: int = 3):  # tuned later")
    assert changes_for(tmp_path, reformatted) == ()


def test_a_new_image_tag_is_an_image_change_of_that_task(tmp_path):
    changes = changes_for(tmp_path, BASE.replace("train:content-bbbb", "train:content-cccc"))
    assert changes == (Change(ChangeKind.IMAGE, "train", "gcr.io/p/train:content-bbbb",
                              "gcr.io/p/train:content-cccc"),)


def test_an_added_task_and_its_dependencies(tmp_path):
    head = BASE + '''
@dsl.pipeline(name="demo")
def demo(rows: int = 100, epochs: int = 3):
    prep = prepare(rows=rows)
    fit = train(data=prep.outputs["data"], epochs=epochs)
    again = train(data=prep.outputs["data"], epochs=1)
    again.after(fit)
'''
    changes = changes_for(tmp_path, head)
    assert Change(ChangeKind.TASK_ADDED, "train-2", None, "gcr.io/p/train:content-bbbb") in changes
    assert [c.kind for c in changes] == [ChangeKind.TASK_ADDED]


def test_a_removed_task(tmp_path):
    head = BASE.replace('    fit = train(data=prep.outputs["data"], epochs=epochs)\n', "")
    changes = changes_for(tmp_path, head)
    assert Change(ChangeKind.TASK_REMOVED, "train", "gcr.io/p/train:content-bbbb", None) in changes
    assert [c.kind for c in changes] == [ChangeKind.TASK_REMOVED]


def test_a_renamed_task_is_one_rename_not_a_removal_and_an_addition(tmp_path):
    head = BASE.replace("def prepare(", "def load_rows(").replace("prep = prepare(", "prep = load_rows(")
    changes = changes_for(tmp_path, head)
    assert changes == (Change(ChangeKind.TASK_RENAMED, "prepare", "prepare", "load-rows"),)


def test_a_changed_default_of_a_pipeline_input(tmp_path):
    changes = changes_for(tmp_path, BASE.replace("epochs: int = 3", "epochs: int = 5"))
    assert changes == (Change(ChangeKind.PIPELINE_INPUT, "epochs", "NUMBER_INTEGER, default 3",
                              "NUMBER_INTEGER, default 5"),)


def test_a_constant_task_argument(tmp_path):
    changes = changes_for(tmp_path, BASE.replace("epochs=epochs)", "epochs=7)"))
    assert Change(ChangeKind.TASK_INPUT, "train.epochs", "pipeline input epochs", "7") in changes


def test_caching_resources_and_retries(tmp_path):
    head = BASE.replace('    fit = train(data=prep.outputs["data"], epochs=epochs)\n',
                        '    fit = train(data=prep.outputs["data"], epochs=epochs)\n'
                        '    fit.set_caching_options(False)\n'
                        '    fit.set_cpu_limit("2").set_memory_limit("4G")\n'
                        '    fit.set_retry(num_retries=3)\n')
    changes = changes_for(tmp_path, head)
    kinds = [c.kind for c in changes]
    assert Change(ChangeKind.CACHING, "train", "on", "off") in changes
    assert kinds.count(ChangeKind.RESOURCES) >= 2
    assert any(c.kind is ChangeKind.RESOURCES and c.after == "2" for c in changes)
    retry = next(c for c in changes if c.kind is ChangeKind.RETRY)
    assert retry.before == "none" and '"maxRetryCount": 3' in (retry.after or "")


def test_a_changed_command_is_a_component_code_change(tmp_path):
    changes = changes_for(tmp_path, BASE.replace('"train.py"', '"train_v2.py"'))
    assert [(c.kind, c.subject) for c in changes] == [(ChangeKind.COMPONENT_CODE, "train")]


def test_settings_values_pipeline_root_and_service_account():
    base = flatten_settings({"arguments": {"epochs": 3, "rows": 10},
                             "run": {"pipeline_root": "gs://a", "service_account": "x@p.iam"}})
    head = flatten_settings({"arguments": {"epochs": 4, "rows": 10},
                             "run": {"pipeline_root": "gs://b", "service_account": "y@p.iam"}})
    assert diff_settings(base, head) == (
        Change(ChangeKind.SETTING, "arguments.epochs", "3", "4"),
        Change(ChangeKind.PIPELINE_ROOT, "run.pipeline_root", "gs://a", "gs://b"),
        Change(ChangeKind.SERVICE_ACCOUNT, "run.service_account", "x@p.iam", "y@p.iam"),
    )


def test_a_diff_read_back_from_its_json_is_equal() -> None:
    diff = PipelineDiff("demo", (Change(ChangeKind.TASK_REMOVED, "old", "gcr.io/p/old:1", None),
                                 Change(ChangeKind.RESOURCES, "train.cpu_limit", "1", "2")), note="")
    assert PipelineDiff.from_json(diff.to_json()) == diff
    added = PipelineDiff("demo", added=True)
    assert PipelineDiff.from_json(added.to_json()) == added


def test_json_that_is_not_a_diff_is_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match="kind"):
        PipelineDiff.from_json({"pipeline": "demo", "changes": [{"subject": "x"}]})
    with pytest.raises(ValueError, match="pipeline"):
        PipelineDiff.from_json({"changes": []})
