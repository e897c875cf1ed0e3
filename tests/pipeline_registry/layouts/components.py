"""Shape 4: flat pipelines, components in `components/<name>/` (nested too) whose Dockerfiles copy
paths relative to the component folder, images named inline in the pipeline code."""

from __future__ import annotations

from tests.pipeline_registry.layouts import Shape, step

REGISTRY = "europe-docker.pkg.dev/acme/ml"
CONFIG = """\
pipeline_files: ["pipelines/*.py"]
build_context: component
"""

IMAGES = f'''"""The images the pipelines run (built from components/)."""
DATA_QUALITY = "{REGISTRY}/data-quality:latest"
'''

DATA_QUALITY = '''from kfp import dsl
from images import DATA_QUALITY


@dsl.container_component
def check(table: str):
    return dsl.ContainerSpec(image=DATA_QUALITY, command=["python", "/app/check.py"], args=[table])


@dsl.pipeline(name="data-quality")
def data_quality(table: str = "events"):
    check(table=table)
'''

TRAINING = f'''from kfp import dsl
from data_quality import check


@dsl.container_component
def train(table: str):
    return dsl.ContainerSpec(image="{REGISTRY}/trainer:latest", command=["python", "/app/train.py"], args=[table])


@dsl.pipeline(name="training")
def training(table: str = "events"):
    train(table=table).after(check(table=table))
'''

TRAINER = "components/misc/container_components/trainer"
FILES = {
    ".kfp-bot.yaml": CONFIG,
    "pipelines/images.py": IMAGES,
    "pipelines/data_quality.py": DATA_QUALITY,
    "pipelines/training.py": TRAINING,
    "components/data-quality/Dockerfile": "FROM python:3.11-slim\nCOPY requirements.txt /app/\n"
                                          "RUN pip install -r /app/requirements.txt\nCOPY check.py /app/\n",
    "components/data-quality/requirements.txt": "great-expectations==0.18.0\n",
    "components/data-quality/check.py": "print('checked')\n",
    "components/data-quality/README.md": "# data quality\n",
    f"{TRAINER}/Dockerfile": "FROM python:3.11-slim\nCOPY train.py /app/\n",
    f"{TRAINER}/train.py": "print('trained')\n",
    "requirements.txt": "kfp==2.7.0\n",
}

BOTH = {"data_quality", "training"}
SHAPE = Shape(
    name="components",
    config=CONFIG,
    files=FILES,
    pipelines=("data_quality", "training"),
    history=(
        step("train after the check", {"pipelines/training.py": TRAINING + "\n# reviewed\n"}, {"training"}),
        step("image names module", {"pipelines/images.py": IMAGES + "\n# the registry of the team\n"}, BOTH),
        step("data quality code", {"components/data-quality/check.py": "print('checked twice')\n"}, BOTH,
             {"data_quality": {"data-quality"}, "training": {"data-quality"}}),
        step("trainer in a nested component folder", {f"{TRAINER}/train.py": "print('trained well')\n"},
             {"training"}, {"training": {"trainer"}}),
        step("trainer Dockerfile", {f"{TRAINER}/Dockerfile": "FROM python:3.12-slim\nCOPY train.py /app/\n"},
             {"training"}, {"training": {"trainer"}}),
        step("compile pins", {"requirements.txt": "kfp==2.8.0\n"}, BOTH),
        step("docs only", {"components/data-quality/README.md": "# data quality\n\nChecks.\n"}),
    ),
)
