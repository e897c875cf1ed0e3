"""A small monorepo in the seed's layout, built file by file in a real git repository.

The layout is chosen so that every dependency rule has a file that reaches exactly one known set
of pipelines (see `SEED_FILES`):

- `alpha` (ComponentStore, own `train` copying `utils/` and `evaluate` importing `lib.scoring`,
  shared `notify`),
- `beta` (`beta-pipeline.py` importing `common.naming`, shared `validate` by file path, own `prep`),
- `gamma` (`pipeline.py` loading `notify` by a path relative to its folder, no own components).
"""

from __future__ import annotations

import pytest

from pipeline_registry.models import Plan
from tests.support.gitrepo import GitRepo

ALPHA = '''"""Alpha: trains and evaluates a model."""
import kfp
from kfp import dsl

component_store = kfp.components.ComponentStore(
    local_search_paths=["pipelines/alpha", "components"],
)
train_op = component_store.load_component("train")
evaluate_op = component_store.load_component("evaluate")
notify_op = component_store.load_component("notify")


@dsl.pipeline(name="alpha")
def pipeline(epochs: int = 1):
    train = train_op(epochs=epochs)
    evaluate_op(model=train.output)
    notify_op(message="done")
'''

BETA = '''"""Beta: validates data."""
import kfp
from common.naming import pipeline_name

validate_op = kfp.components.load_component_from_file("components/validate/component.yaml")
prep_op = kfp.components.load_component_from_file("pipelines/beta/prep/component.yaml")


@kfp.dsl.pipeline(name=pipeline_name("beta"))
def pipeline(rows: int = 10):
    validate_op(data=prep_op(rows=rows).output)
'''

GAMMA = '''"""Gamma: only notifies."""
import os

from kfp import components, dsl

HERE = os.path.dirname(__file__)
notify_op = components.load_component_from_file("../../components/notify/component.yaml")


@dsl.pipeline(name="gamma")
def pipeline(message: str = "hi"):
    notify_op(message=message)
'''

SEED_FILES = {
    "README.md": "# monorepo\n",
    ".gitignore": "build/\n*.pyc\n",
    "docs/guide.md": "# guide\n",
    "utils/__init__.py": "",
    "utils/io_helpers.py": "def read(path):\n    return open(path).read()\n",
    "utils/metrics.py": "from utils.io_helpers import read\n\n\ndef report(x):\n    return read(x)\n",
    "utils/settings.json": "{}\n",
    "utils/notify_template.txt": "Run {name} finished\n",
    "common/__init__.py": "",
    "common/naming.py": "from .text import slug\n\n\ndef pipeline_name(x):\n    return slug(x)\n",
    "common/text.py": "def slug(x):\n    return x.lower()\n",
    "lib/scoring.py": "def score(x):\n    return x\n",
    "lib/messages.py": "GREETING = 'hello'\n",
    "components/notify/component.yaml": "name: notify\n",
    "components/notify/Dockerfile": "FROM python:3.11-slim\nCOPY components/notify/notify.py /app/\n"
                                    "COPY utils/notify_template.txt /app/\n",
    "components/notify/notify.py": "from lib.messages import GREETING\n\nprint(GREETING)\n",
    "components/validate/component.yaml": "name: validate\n",
    "components/unused/component.yaml": "name: unused\n",
    "components/unused/Dockerfile": "FROM python:3.11-slim\nCOPY utils ./utils\n",
    "pipelines/alpha/alpha.py": ALPHA,
    "pipelines/alpha/settings.yaml": "arguments:\n  epochs: 1\n",
    "pipelines/alpha/README.md": "# alpha\n",
    "pipelines/alpha/train/component.yaml": "name: train\n",
    "pipelines/alpha/train/Dockerfile": "FROM python:3.11-slim\nWORKDIR /app\nCOPY utils ./utils\n"
                                        "COPY pipelines/alpha/train/* ./\n",
    "pipelines/alpha/train/main.py": "from utils.metrics import report\n\nreport('x')\n",
    "pipelines/alpha/evaluate/component.yaml": "name: evaluate\n",
    "pipelines/alpha/evaluate/Dockerfile": "FROM python:3.11-slim\nCOPY pipelines/alpha/evaluate/evaluate.py /app/\n",
    "pipelines/alpha/evaluate/evaluate.py": "from lib.scoring import score\n\nprint(score(1))\n",
    "pipelines/beta/beta-pipeline.py": BETA,
    "pipelines/beta/settings.yaml": "arguments:\n  rows: 10\n",
    "pipelines/beta/prep/component.yaml": "name: prep\n",
    "pipelines/beta/prep/Dockerfile": 'FROM python:3.11-slim\nCOPY ["pipelines/beta/prep", "/app"]\n',
    "pipelines/beta/prep/main.py": "import json\n",
    "pipelines/gamma/pipeline.py": GAMMA,
    "pipelines/gamma/settings.yaml": "arguments:\n  message: hi\n",
}


def write_files(repo: GitRepo, files: dict[str, str]) -> None:
    """Write several files into the repository's working tree."""
    for path, text in files.items():
        repo.write(path, text)


def names(plan: Plan) -> list[str]:
    """The affected pipelines of a plan, in plan order."""
    return [p.name for p in plan.pipelines]


@pytest.fixture
def seed(git_repo: GitRepo) -> GitRepo:
    """A git repository whose first commit on `main` is the seed-layout monorepo above."""
    write_files(git_repo, SEED_FILES)
    git_repo.commit("seed")
    return git_repo
