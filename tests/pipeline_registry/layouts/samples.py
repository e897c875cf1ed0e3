"""Shape 3: samples-style folders, several pipeline files per folder, tests and notebooks beside them."""

from __future__ import annotations

from tests.pipeline_registry.layouts import Shape, step

CONFIG = """\
pipeline_files: ["samples/*/*.py"]
exclude: ["*_test.py"]
"""

CACHING = '''from kfp import dsl


@dsl.component
def square(x: int) -> int:
    return x * x


@dsl.pipeline(name="caching")
def caching_pipeline(x: int = 3):
    square(x=x).set_caching_options(True)
'''

CONDITION = '''from kfp import dsl


@dsl.component
def flip() -> str:
    import random
    return random.choice(["heads", "tails"])


@dsl.pipeline(name="flip-coin")
def flip_coin():
    with dsl.If(flip().output == "heads"):
        flip()


@dsl.pipeline(name="nested")
def nested():
    flip_coin()
'''

LOOP = '''from kfp import dsl
from helpers import print_text


@dsl.pipeline(name="{name}")
def {name}(items: list = [1, 2]):
    with dsl.ParallelFor(items) as item:
        print_text(text=str(item))
'''

HELPERS = '''from kfp import dsl


@dsl.component
def print_text(text: str):
    print(text)
'''

FILES = {
    ".kfp-bot.yaml": CONFIG,
    "samples/caching/caching_sample.py": CACHING,
    "samples/caching/caching_sample_test.py": "from caching_sample import caching_pipeline\n\n\n"
                                              "def test_it():\n    assert caching_pipeline\n",
    "samples/caching/caching.ipynb": '{"cells": [], "nbformat": 4, "nbformat_minor": 5, "metadata": {}}\n',
    "samples/condition/condition.py": CONDITION,
    "samples/loops/loop_static.py": LOOP.format(name="loop_static"),
    "samples/loops/loop_parameter.py": LOOP.format(name="loop_parameter"),
    "samples/loops/helpers.py": HELPERS,
    "samples/README.md": "# Samples\n",
    "requirements.txt": "kfp==2.7.0\n",
}

SHAPE = Shape(
    name="samples",
    config=CONFIG,
    files=FILES,
    pipelines=("caching_sample", "condition-flip_coin", "condition-nested", "loop_parameter", "loop_static"),
    history=(
        step("static loop over three items",
             {"samples/loops/loop_static.py": LOOP.format(name="loop_static").replace("[1, 2]", "[1, 2, 3]")},
             {"loop_static"}),
        step("shared helper of the loops", {"samples/loops/helpers.py": HELPERS.replace("print(text)", "print(text, flush=True)")},
             {"loop_parameter", "loop_static"}),
        step("a file with two pipelines", {"samples/condition/condition.py": CONDITION + "\n# both\n"},
             {"condition-flip_coin", "condition-nested"}),
        step("tests and notebooks", {"samples/caching/caching_sample_test.py": "def test_nothing():\n    pass\n",
                                     "samples/caching/caching.ipynb": '{"cells": [], "nbformat": 4}\n'}),
        step("compile pins", {"requirements.txt": "kfp==2.8.0\n"},
             {"caching_sample", "condition-flip_coin", "condition-nested", "loop_parameter", "loop_static"}),
        step("docs only", {"samples/README.md": "# Samples\n\nRun them.\n"}),
    ),
)
