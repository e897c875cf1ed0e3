"""Static evaluation of string expressions in pipeline files."""

from __future__ import annotations

import ast

import pytest

from pipeline_registry.static_strings import StringEvaluator

SOURCE = '''
import os
from pathlib import Path

ROOT = "components"
SUB = ROOT + "/shared"
NAMES = ["a", "b"]
for item in ("x", "y"):
    pass
counter = 0
counter += 1


def build(param):
    return param
'''


@pytest.mark.parametrize("expression, expected", [
    ('"plain"', ["plain"]),
    ("ROOT", ["components"]),
    ("SUB", ["components/shared"]),
    ('os.path.join(ROOT, "notify", "component.yaml")', ["components/notify/component.yaml"]),
    ('Path(ROOT) / "notify"', ["components/notify"]),
    ('Path("x").joinpath("y", "z")', ["x/y/z"]),
    ('f"{ROOT}/notify"', ["components/notify"]),
    ('os.path.join("a", "/abs")', ["/abs"]),
    ("item", ["x", "y"]),
    ("param", None),
    ("counter", None),
    ("undefined", None),
    ("str(ROOT)", None),
    ("42", None),
])
def test_values_of(expression: str, expected: list[str] | None) -> None:
    evaluator = StringEvaluator(SOURCE.encode())
    assert evaluator.values_of(ast.parse(expression, mode="eval").body) == expected


def test_lists_of_values() -> None:
    evaluator = StringEvaluator(SOURCE.encode())
    assert evaluator.values_of_list(ast.parse("NAMES", mode="eval").body) == ["a", "b"]
    assert evaluator.values_of_list(ast.parse("[ROOT, 'pipelines/p']", mode="eval").body) == [
        "components", "pipelines/p"]
    assert evaluator.values_of_list(ast.parse("[ROOT, param]", mode="eval").body) is None


def test_self_reference_does_not_loop() -> None:
    evaluator = StringEvaluator(b"A = B\nB = A\n")
    assert evaluator.values_of(ast.parse("A", mode="eval").body) is None
