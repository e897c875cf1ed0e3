"""Pipeline functions read from the text agree with `ast` wherever the scan answers, and the scan
steps aside (None) for text it cannot read exactly."""

from __future__ import annotations

import ast
import re
import sysconfig
from pathlib import Path

import pytest

from pipeline_registry.declared import _is_pipeline_decorator, pipeline_functions
from pipeline_registry.decorated import scan_pipeline_functions

ROOT = Path(__file__).resolve().parents[2]


def by_ast(text: bytes) -> tuple[str, ...] | None:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    return tuple(node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                 and any(_is_pipeline_decorator(d) for d in node.decorator_list))


TRICKY = {
    "docstring hides a pipeline": b'"""\n@dsl.pipeline\ndef not_me():\n    pass\n"""\n@dsl.pipeline\ndef me():\n    pass\n',
    "arguments over lines": b'@dsl.pipeline(\n    name="x",\n    description="""a\n@dsl.pipeline\n""",\n)\ndef first(a: int = (1 +\n2)):\n    pass\n',
    "comments and blank lines between": b"@dsl.pipeline  # the pipeline\n\n# more\n@other.decorator(1)\nasync def second():\n    pass\n",
    "a decorated class": b"@dsl.pipeline\nclass NotAFunction:\n    @dsl.pipeline\n    def method(self):\n        pass\n",
    "nested and indented": b"def outer():\n    @dsl.pipeline\n    def inner():\n        pass\n",
    "called twice": b"@dsl.pipeline(name='a')(b)\ndef odd():\n    pass\n",
    "subscript": b"@pipelines[0]\ndef picked():\n    pass\n",
    "crlf": b"@kfp.dsl.pipeline(name='x')\r\ndef windows():\r\n    pass\r\n",
    "two pipelines": b"from kfp.dsl import pipeline\n@pipeline\ndef a():\n    pass\n@dsl.pipeline()\ndef b():\n    pass\n",
    "a string with quotes and escapes": b"x = 'it\\'s'\ny = r\"\\d\"\n@dsl.pipeline\ndef escaped():\n    pass\n",
}


@pytest.mark.parametrize("name", sorted(TRICKY))
def test_the_scan_agrees_with_the_parser_or_steps_aside(name: str) -> None:
    text = TRICKY[name]
    scanned = scan_pipeline_functions(text)
    assert scanned is None or scanned == by_ast(text)
    assert pipeline_functions(text) == (by_ast(text) or ())


def test_what_the_scan_reads_itself() -> None:
    assert scan_pipeline_functions(TRICKY["docstring hides a pipeline"]) == ("me",)
    assert scan_pipeline_functions(TRICKY["arguments over lines"]) == ("first",)
    assert scan_pipeline_functions(TRICKY["comments and blank lines between"]) == ("second",)
    assert scan_pipeline_functions(TRICKY["a decorated class"]) == ()
    assert scan_pipeline_functions(TRICKY["two pipelines"]) == ("a", "b")


@pytest.mark.parametrize("text", [
    b"@dsl.pipeline\ndef f(:\n",  # unbalanced
    b"x = 'unterminated\n@dsl.pipeline\ndef f():\n    pass\n",
    b"x = 1 + \\\n  2\n@dsl.pipeline\ndef f():\n    pass\n",  # a line continuation
    "@dsl.pipeline\ndef fünf():\n    pass\n".encode(),  # a name the scan does not read
    b"@pipelines[0]\ndef picked():\n    pass\n",  # an expression decorator
    b"@dsl.pipeline\n",  # decorates nothing
])
def test_text_the_scan_does_not_read_exactly_is_left_to_the_parser(text: bytes) -> None:
    assert scan_pipeline_functions(text) is None


def corpus() -> list[Path]:
    """Real Python: this project's own code and part of the standard library."""
    own = [p for top in ("bot", "handlers", "deploy", "pipeline_registry", "tests", "examples")
           for p in sorted((ROOT / top).rglob("*.py"))]
    stdlib = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))[:150]
    return own + stdlib


def test_on_real_code_with_every_top_level_function_made_a_pipeline_the_scan_agrees() -> None:
    scanned = 0
    for path in corpus():
        original = path.read_bytes()
        decorated = re.sub(rb"(?m)^(async def |def )", rb"@dsl.pipeline(\n    name='x',\n)\n\1", original)
        for text in (original, decorated):
            expected = by_ast(text)
            found = scan_pipeline_functions(text)
            if expected is None or found is None:
                continue
            scanned += 1
            assert found == expected, path
    assert scanned > 500  # the scan reads most real files itself: the comparison is not vacuous
