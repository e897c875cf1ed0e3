"""How long planning takes on large monorepos: `python -m benchmarks.plan_bench` (`make bench`).

First the scaling table (`benchmarks.plan_scaling`): the whole `kfp-bot plan` command on generated
monorepos of 100 to 3,000 pipelines, cold and warm, next to its floors. Then, in process, one
repository (by default 300 pipelines x 3 components whose Dockerfiles copy `utils/`, pipeline files
loading components through `ComponentStore`, shared components, a `utils` package imported by
component code) with one change per scenario on its own commit, timing `plan_change` cold (every
parse cache emptied) and warm (as in the long-running service), the median of several repetitions.
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

from pipeline_registry.cache_control import clear_all_caches
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


def repository_files(pipelines: int) -> dict[str, str]:
    """Path -> text of every file of the synthetic monorepo."""
    files: dict[str, str] = {"README.md": "# benchmark monorepo\n", "utils/__init__.py": ""}
    for module in UTILS:
        files[f"utils/{module}.py"] = (f'"""utils.{module}."""\nimport json\n\n\ndef helper(x):\n'
                                       f'    return json.dumps(x)\n\n\nread_frame = write_frame = report = helper\n')
    for name in SHARED:
        files[f"components/{name}/component.yaml"] = (f"name: {name}\nimplementation:\n  container:\n"
                                                      f"    image: gcr.io/x/{name}\n")
        files[f"components/{name}/Dockerfile"] = (f"FROM python:3.11-slim\nCOPY utils ./utils\n"
                                                  f"COPY components/{name}/*.py ./\n")
        files[f"components/{name}/{name}.py"] = "from utils import metrics\n\nmetrics.report({})\n"
    for index in range(pipelines):
        pipeline = f"pipeline-{index:03d}"
        loads = [f'{c}_op = component_store.load_component("{c}")' for c in COMPONENTS]
        shared = SHARED[index % len(SHARED)]
        loads.append(f'{shared}_op = component_store.load_component("{shared}")')
        files[f"pipelines/{pipeline}/{pipeline}.py"] = PIPELINE.format(pipeline=pipeline, loads="\n".join(loads))
        files[f"pipelines/{pipeline}/settings.yaml"] = "arguments:\n  epochs: 3\n  input_path: gs://b/d.csv\n"
        files[f"pipelines/{pipeline}/README.md"] = f"# {pipeline}\n"
        for component in COMPONENTS:
            folder = f"pipelines/{pipeline}/{component}"
            files[f"{folder}/component.yaml"] = f"name: {component}\n"
            files[f"{folder}/Dockerfile"] = (f"FROM python:3.11-slim\nWORKDIR /app\nCOPY utils ./utils\n"
                                             f"COPY {folder}/* ./\nENTRYPOINT [\"python\", \"main.py\"]\n")
            files[f"{folder}/main.py"] = MAIN.format(name=component, pipeline=pipeline)
            files[f"{folder}/requirements.txt"] = "numpy\n"
    return files


def generate(root: Path, pipelines: int, checkout: bool = True) -> None:
    """Write the synthetic monorepo as one commit on `main` through `git fast-import`, then check it out.

    fast-import writes one pack without touching the index file by file, so the 3,000-pipeline
    repository (about 42,000 files) is made in seconds.
    """
    root.mkdir(parents=True)
    _git(root, "init", "-q", "-b", "main")
    _git(root, "config", "gc.auto", "0")
    stream = bytearray()
    marks: dict[str, int] = {}
    tree: list[tuple[str, int]] = []
    for path, text in sorted(repository_files(pipelines).items()):
        mark = marks.get(text)
        if mark is None:
            mark = marks[text] = len(marks) + 1
            data = text.encode()
            stream += b"blob\nmark :%d\ndata %d\n%s\n" % (mark, len(data), data)
        tree.append((path, mark))
    message = b"base"
    stream += b"commit refs/heads/main\ncommitter bench <bench@example.com> 1700000000 +0000\n"
    stream += b"data %d\n%s\n" % (len(message), message)
    for path, mark in tree:
        stream += b"M 100644 :%d %s\n" % (mark, path.encode())
    stream += b"\n"
    subprocess.run(["git", "fast-import", "--quiet"], cwd=root, env=_ENV, input=bytes(stream), check=True,
                   capture_output=True)
    if checkout:  # planning between commits needs no working tree; the uncommitted scenario does
        _git(root, "checkout", "-q", "-f", "main")


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
    parser.add_argument("--sizes", default="100,300,1000,3000",
                        help="pipeline counts of the scaling table (the whole command next to its floors); '' skips it")
    parser.add_argument("--pipelines", type=int, default=300, help="size of the in-process scenario table (0 skips it)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    git_version = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip()
    print(f"machine: {os.cpu_count()} cpus (nproc), python {platform.python_version()}, {git_version}, "
          f"{platform.system()} {platform.machine()}")
    if args.sizes:
        from benchmarks.plan_scaling import run_scaling

        run_scaling(tuple(int(n) for n in args.sizes.split(",")), repeat=3)
        print()
    if not args.pipelines:
        return 0
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
