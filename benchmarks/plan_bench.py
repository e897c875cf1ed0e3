"""How long `plan_change` takes on a large monorepo: `python -m benchmarks.plan_bench`.

Generates a git repository in the seed layout (by default 300 pipelines x 3 components whose
Dockerfiles copy `utils/`, pipeline files loading components through `ComponentStore`, shared
components, a `utils` package imported by component code), makes one change per scenario on its
own commit, and times `plan_change` cold (every parse cache emptied) and warm (as in the
long-running service), reporting the median of several repetitions.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline_registry.cache import clear_all_caches
from pipeline_registry.planner import plan_change

COMPONENTS = ("preprocess", "train", "evaluate")
SHARED = ("notify", "validate", "export", "report", "slack")
UTILS = ("io_helpers", "metrics", "logging_setup", "gcs", "schema", "features", "plots", "timing")
_ENV = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com", "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.com", "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent",
        "PATH": "/usr/local/bin:/usr/bin:/bin"}

MAIN = '''"""Component {name} of {pipeline}."""
import argparse
import json
from pathlib import Path

from utils.io_helpers import read_frame, write_frame
from utils import metrics


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--epochs", type=int, default=3)
    return parser.parse_args()


def run(source, target, epochs):
    frame = read_frame(source)
    for epoch in range(epochs):
        frame = [value * 0.5 + epoch for value in frame]
        metrics.report({{"epoch": epoch, "size": len(frame)}})
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    write_frame(frame, target)
    print(json.dumps({{"rows": len(frame)}}))


if __name__ == "__main__":
    args = parse_args()
    run(args.input, args.output, args.epochs)
'''

PIPELINE = '''"""Pipeline {pipeline}."""
import kfp
from kfp import dsl

component_store = kfp.components.ComponentStore(
    local_search_paths=["pipelines/{pipeline}", "components"],
)
{loads}


@dsl.pipeline(name="{pipeline}", description="benchmark pipeline {pipeline}")
def pipeline(input_path: str = "gs://bucket/data.csv", epochs: int = 3):
    data = preprocess_op(input_path=input_path)
    model = train_op(data=data.output, epochs=epochs)
    evaluate_op(model=model.output)


if __name__ == "__main__":
    kfp.compiler.Compiler().compile(pipeline, "{pipeline}.yaml")
'''


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, env=_ENV, check=True, capture_output=True,
                          text=True).stdout.strip()


def _write(root: Path, path: str, text: str) -> None:
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def generate(root: Path, pipelines: int) -> None:
    """Write the synthetic monorepo and commit it on `main`."""
    root.mkdir(parents=True)
    _git(root, "init", "-q", "-b", "main")
    _git(root, "config", "gc.auto", "0")  # no background gc racing the explicit repack below
    _write(root, "README.md", "# benchmark monorepo\n")
    _write(root, "utils/__init__.py", "")
    for module in UTILS:
        _write(root, f"utils/{module}.py", f'"""utils.{module}."""\nimport json\n\n\ndef helper(x):\n'
                                           f'    return json.dumps(x)\n\n\nread_frame = write_frame = report = helper\n')
    for name in SHARED:
        _write(root, f"components/{name}/component.yaml", f"name: {name}\nimplementation:\n  container:\n"
                                                          f"    image: gcr.io/x/{name}\n")
        _write(root, f"components/{name}/Dockerfile", f"FROM python:3.11-slim\nCOPY utils ./utils\n"
                                                      f"COPY components/{name}/*.py ./\n")
        _write(root, f"components/{name}/{name}.py", "from utils import metrics\n\nmetrics.report({})\n")
    for index in range(pipelines):
        pipeline = f"pipeline-{index:03d}"
        loads = [f'{c}_op = component_store.load_component("{c}")' for c in COMPONENTS]
        shared = SHARED[index % len(SHARED)]
        loads.append(f'{shared}_op = component_store.load_component("{shared}")')
        _write(root, f"pipelines/{pipeline}/{pipeline}.py", PIPELINE.format(pipeline=pipeline, loads="\n".join(loads)))
        _write(root, f"pipelines/{pipeline}/settings.yaml", "arguments:\n  epochs: 3\n  input_path: gs://b/d.csv\n")
        _write(root, f"pipelines/{pipeline}/README.md", f"# {pipeline}\n")
        for component in COMPONENTS:
            folder = f"pipelines/{pipeline}/{component}"
            _write(root, f"{folder}/component.yaml", f"name: {component}\n")
            _write(root, f"{folder}/Dockerfile", f"FROM python:3.11-slim\nWORKDIR /app\nCOPY utils ./utils\n"
                                                 f"COPY {folder}/* ./\nENTRYPOINT [\"python\", \"main.py\"]\n")
            _write(root, f"{folder}/main.py", MAIN.format(name=component, pipeline=pipeline))
            _write(root, f"{folder}/requirements.txt", "numpy\n")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "base")
    _git(root, "repack", "-a", "-d", "-q")  # a clone's objects are packed; loose ones read far slower


@dataclass
class Scenario:
    name: str
    edits: dict[str, str]
    commit: bool = True


def scenarios(pipelines: int) -> list[Scenario]:
    middle = f"pipeline-{pipelines // 2:03d}"
    return [
        Scenario("one component's code", {f"pipelines/{middle}/train/main.py": "# tuned\n"}),
        Scenario("one pipeline's settings", {f"pipelines/{middle}/settings.yaml": "# more\n"}),
        Scenario("one shared component", {"components/notify/notify.py": "# changed\n"}),
        Scenario("docs only", {"README.md": "more docs\n", f"pipelines/{middle}/README.md": "x\n"}),
        Scenario("utils module (all pipelines)", {"utils/metrics.py": "# changed\n"}),
        Scenario("working tree, uncommitted", {f"pipelines/{middle}/evaluate/main.py": "# wip\n",
                                                f"pipelines/{middle}/evaluate/new_helper.py": "x = 1\n"}, commit=False),
    ]


def _apply(root: Path, scenario: Scenario) -> str | None:
    _git(root, "checkout", "-q", "-B", "bench", "main")
    for path, text in scenario.edits.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "a") as handle:
            handle.write(text)
    if not scenario.commit:
        return None
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", scenario.name)
    return _git(root, "rev-parse", "HEAD")


def _time(root: Path, head: str | None, cold: bool) -> tuple[float, int]:
    if cold:
        clear_all_caches()
    start = time.perf_counter()
    plan = plan_change(root, "main", head)
    return time.perf_counter() - start, len(plan.pipelines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipelines", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    git_version = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip()
    print(f"machine: {os.cpu_count()} cpus (nproc), python {platform.python_version()}, {git_version}, "
          f"{platform.system()} {platform.machine()}")
    with tempfile.TemporaryDirectory(prefix="kfp-bot-bench-") as tmp:
        root = Path(tmp) / "monorepo"
        start = time.perf_counter()
        generate(root, args.pipelines)
        files = len(_git(root, "ls-files").splitlines())
        print(f"repository: {args.pipelines} pipelines x {len(COMPONENTS)} components + {len(SHARED)} shared, "
              f"{files} files (generated in {time.perf_counter() - start:.1f} s)")
        print(f"plan_change(base=main, head=...), median of {args.repeat} runs; cold = every parse cache "
              f"emptied first (a fresh CLI run, minus interpreter start), warm = caches kept (the service)\n")
        print(f"{'scenario':<32} {'affected':>8} {'cold ms':>9} {'warm ms':>9}")
        for scenario in scenarios(args.pipelines):
            head = _apply(root, scenario)
            cold = [_time(root, head, cold=True) for _ in range(args.repeat)]
            warm = [_time(root, head, cold=False) for _ in range(args.repeat)]
            print(f"{scenario.name:<32} {cold[0][1]:>8} {statistics.median(t for t, _ in cold) * 1000:>9.1f} "
                  f"{statistics.median(t for t, _ in warm) * 1000:>9.1f}")
            _git(root, "checkout", "-q", "-f", "main")
            _git(root, "clean", "-q", "-fd")
    return 0


if __name__ == "__main__":
    sys.exit(main())
