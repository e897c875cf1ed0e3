"""Shape 1: flat pipeline files beside a shared helper, one image built from a root Dockerfile."""

from __future__ import annotations

from tests.pipeline_registry.layouts import Shape, step

IMAGE = "europe-docker.pkg.dev/acme/ml/pipelines"

CONFIG = f"""\
pipeline_files: ["pipelines/[0-9]*.py"]
images:
  {IMAGE}: {{dockerfile: Dockerfile}}
"""

COMMON = f'''"""What every pipeline of this repository shares."""
from kfp import dsl

IMAGE = "{IMAGE}:latest"


@dsl.component(base_image=IMAGE)
def load(table: str) -> str:
    from trainer.data import read
    return read(table)
'''

INGEST = '''from kfp import dsl
from common import load


@dsl.pipeline(name="ingest")
def ingest(table: str = "events"):
    load(table=table)
'''

TRAIN = '''from kfp import dsl
from common import IMAGE, load


@dsl.component(base_image=IMAGE)
def fit(data: str, epochs: int) -> str:
    from trainer.model import fit
    return fit(data, epochs)


@dsl.pipeline(name="train")
def train(table: str = "events", epochs: int = 3):
    fit(data=load(table=table).output, epochs=epochs)
'''

REPORT = '''from kfp import dsl


@dsl.component(base_image="python:3.11")
def report(text: str) -> str:
    return text


@dsl.pipeline(name="report")
def weekly(text: str = "weekly"):
    report(text=text)
'''

FILES = {
    ".kfp-bot.yaml": CONFIG,
    "pipelines/01_ingest.py": INGEST,
    "pipelines/02_train.py": TRAIN,
    "pipelines/03_report.py": REPORT,
    "pipelines/common.py": COMMON,
    "Dockerfile": "FROM python:3.11-slim\nCOPY requirements.txt /app/\nRUN pip install -r /app/requirements.txt\n"
                  "COPY src/ /app/src/\nENV PYTHONPATH=/app/src\n",
    "src/trainer/__init__.py": "",
    "src/trainer/data.py": "def read(table):\n    return table\n",
    "src/trainer/model.py": "def fit(data, epochs):\n    return f'{data}:{epochs}'\n",
    "requirements.txt": "kfp==2.7.0\nkfp-kubernetes==1.2.0\npandas==2.2.2\n",
    "README.md": "# ML pipelines\n",
}

BOTH = {"01_ingest", "02_train"}
SHAPE = Shape(
    name="flat",
    config=CONFIG,
    files=FILES,
    pipelines=("01_ingest", "02_train", "03_report"),
    history=(
        step("train for longer", {"pipelines/02_train.py": TRAIN.replace("epochs: int = 3", "epochs: int = 5")},
             {"02_train"}),
        step("shared helper", {"pipelines/common.py": COMMON + "\n\nDEFAULT_TABLE = 'events'\n"}, BOTH),
        step("model code", {"src/trainer/model.py": "def fit(data, epochs):\n    return data\n"}, BOTH,
             {"01_ingest": {"pipelines"}, "02_train": {"pipelines"}}),
        step("new report", {"pipelines/03_report.py": REPORT.replace("weekly\")", "monthly\")")}, {"03_report"}),
        step("compile pins", {"requirements.txt": "kfp==2.7.0\nkfp-kubernetes==1.2.1\npandas==2.2.2\n"},
             {"01_ingest", "02_train", "03_report"}, {"01_ingest": {"pipelines"}, "02_train": {"pipelines"}}),
        step("docs only", {"README.md": "# ML pipelines\n\nRun them.\n", "pipelines/NOTES.md": "notes\n"}),
    ),
)
