"""Shape 2: an installable package of pipelines, components shipped as pip packages (no Dockerfiles)."""

from __future__ import annotations

from tests.pipeline_registry.layouts import Shape, step

CONFIG = """\
pipeline_files:
  - {glob: "pipelines/src/pipelines/*/*/pipeline.py", name: folder}
compile:
  python_path: [pipelines/src]
"""

TRAIN = '''from kfp import dsl
from pipelines import generate_query
from tabular_ops.ops import train_model


@dsl.pipeline(name="xgboost-train")
def xgboost_train(table: str = "sales"):
    train_model(query=generate_query(table))
'''

PREDICT = '''from kfp import dsl
from pipelines import generate_query
from text_ops.ops import embed


@dsl.pipeline(name="xgboost-predict")
def xgboost_predict(table: str = "sales"):
    embed(query=generate_query(table))
'''

OPS = '''from kfp import dsl


@dsl.component(base_image="python:3.11", packages_to_install=["xgboost"])
def {name}(query: str) -> str:
    return query
'''

PYPROJECT = """\
[tool.poetry]
name = "pipelines"
version = "0.1.0"

[tool.poetry.dependencies]
python = ">=3.10,<3.12"
kfp = "2.7.0"
tabular-ops = {path = "../components/tabular_ops", develop = true}
"""

FILES = {
    ".kfp-bot.yaml": CONFIG,
    "pipelines/pyproject.toml": PYPROJECT,
    "pipelines/requirements-dev.txt": "-e ../components/text_ops\npytest\n",
    "pipelines/src/pipelines/__init__.py": "from pipelines.queries import generate_query\n",
    "pipelines/src/pipelines/queries.py": "def generate_query(table):\n    return f'SELECT * FROM {table}'\n",
    "pipelines/src/pipelines/training/__init__.py": "",
    "pipelines/src/pipelines/training/xgboost_train/__init__.py": "",
    "pipelines/src/pipelines/training/xgboost_train/pipeline.py": TRAIN,
    "pipelines/src/pipelines/prediction/__init__.py": "",
    "pipelines/src/pipelines/prediction/xgboost_predict/__init__.py": "",
    "pipelines/src/pipelines/prediction/xgboost_predict/pipeline.py": PREDICT,
    "components/tabular_ops/pyproject.toml": '[project]\nname = "tabular-ops"\ndependencies = ["kfp>=2,<3"]\n',
    "components/tabular_ops/src/tabular_ops/__init__.py": "",
    "components/tabular_ops/src/tabular_ops/ops.py": OPS.format(name="train_model"),
    "components/text_ops/Pipfile": '[packages]\nkfp = "==2.7.0"\n',
    "components/text_ops/src/text_ops/__init__.py": "",
    "components/text_ops/src/text_ops/ops.py": OPS.format(name="embed"),
    "docs/index.md": "# Pipelines\n",
}

BOTH = {"xgboost_predict", "xgboost_train"}
SHAPE = Shape(
    name="package",
    config=CONFIG,
    files=FILES,
    pipelines=("xgboost_predict", "xgboost_train"),
    history=(
        step("train on another table",
             {"pipelines/src/pipelines/training/xgboost_train/pipeline.py": TRAIN.replace('"sales"', '"orders"')},
             {"xgboost_train"}),
        step("shared query module",
             {"pipelines/src/pipelines/queries.py": "def generate_query(table):\n    return f'SELECT 1 FROM {table}'\n"},
             BOTH),
        step("component package (poetry path dependency)",
             {"components/tabular_ops/src/tabular_ops/ops.py": OPS.format(name="train_model") + "\n# tuned\n"},
             {"xgboost_train"}),
        step("component package (pip install -e)",
             {"components/text_ops/src/text_ops/ops.py": OPS.format(name="embed") + "\n# tuned\n"},
             {"xgboost_predict"}),
        step("compile pins", {"pipelines/pyproject.toml": PYPROJECT.replace('kfp = "2.7.0"', 'kfp = "2.8.0"')}, BOTH),
        step("docs only", {"docs/index.md": "# Pipelines\n\nMore.\n", "pipelines/README.md": "# how\n"}),
    ),
)
