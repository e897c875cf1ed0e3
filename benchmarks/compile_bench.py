"""How long compiling takes: `python -m benchmarks.compile_bench` (`make bench`).

A repository in the seed template's layout with five kfp 1.8 pipelines (`kfp==1.8.22` pinned in
`.kfp-bot.yaml`; each pipeline file is the seed's, as the compiler tests use it: its own component
loaded through `ComponentStore`, a shared one from `components/`, and a `__main__` block that
compiles it with the `kfp.v2` compiler), compiled with the
environment already cached (built once before timing). Timed as whole processes, median of
several repetitions, wall-clock and CPU seconds (user + system of the process and every descendant,
the sandboxed compilers included, counted by a cgroup v1 `cpuacct` group where one can be made):

- `kfp-bot check` of the five pipelines (one sandboxed interpreter compiles all five; it starts
  before the settings load, as the untimed first check left the hint of which one to start, as any
  earlier check of the repository does);
- the same five compiled one sandboxed interpreter each, as `check` did before batching;
- the floor: one pipeline's bare compile, `python pipelines/<name>/<name>.py` with the cached
  environment's Python (an interpreter, `import kfp`, one compile; no sandbox, no bot).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from deploy.compiler.environments import ensure_environment
from pipeline_registry.compile_env import CompileEnvironment
from tests.deploy.conftest import NOTIFY_SPEC, TRAIN_SPEC
from tests.deploy.test_compiler import SEED_PIPELINE

ROOT = Path(__file__).resolve().parent.parent
KFP18 = "kfp==1.8.22"
NAMES = ("hello", "dataset", "training", "evaluation", "serving")
_GIT_ENV = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com", "GIT_COMMITTER_NAME": "bench",
            "GIT_COMMITTER_EMAIL": "bench@example.com", "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent",
            "PATH": "/usr/local/bin:/usr/bin:/bin"}

# Compiles each pipeline in a sandboxed interpreter of its own, as `check` did before batching.
ONE_BY_ONE = '''\
import sys, tempfile
from pathlib import Path
from bot.config import Settings
from bot.sandboxing import command_line_sandbox
from deploy.compiler.scratch import ScratchTree
from deploy.pipelines import RepositoryCompiler
settings = Settings()
compiler = RepositoryCompiler(settings.cache_dir, sandbox=command_line_sandbox(settings))
repo = Path(sys.argv[1])
with tempfile.TemporaryDirectory() as tmp, ScratchTree(repo) as scratch:
    for name in sys.argv[2:]:
        compiler.compile(repo, name, None, Path(tmp) / name, scratch=scratch)
'''


def make_template(root: Path) -> Path:
    """The five-pipeline kfp 1.8 repository, committed."""
    repo = root / "template"
    for name in NAMES:
        folder = repo / "pipelines" / name
        (folder / "train").mkdir(parents=True)
        (folder / f"{name}.py").write_text(SEED_PIPELINE.format(name=name))
        (folder / "train" / "component.yaml").write_text(TRAIN_SPEC)
        (folder / "train" / "Dockerfile").write_text(f"FROM python:3.11-slim\nCOPY pipelines/{name}/train/* ./\n")
        (folder / "settings.yaml").write_text("arguments:\n  epochs: 2\n")
    (repo / "components" / "notify").mkdir(parents=True)
    (repo / "components" / "notify" / "component.yaml").write_text(NOTIFY_SPEC)
    (repo / "components" / "notify" / "Dockerfile").write_text("FROM alpine:3.20\n")
    (repo / ".kfp-bot.yaml").write_text(f'compile:\n  requirements: ["{KFP18}"]\n')
    for command in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "template"]):
        subprocess.run(["git", *command], cwd=repo, env=_GIT_ENV, check=True)
    return repo


CPUACCT = Path("/sys/fs/cgroup/cpuacct")  # cgroup v1 CPU accounting, where writable (root)
# Joins the cgroup named by $0, then becomes the command: every descendant is counted, the
# sandboxed compilers too (their own PID namespaces are not reaped by this process).
_JOIN = 'echo $$ > "$0/cgroup.procs" && exec "$@"'


def timed(argv: list[str], *, cwd: Path, env: dict[str, str]) -> tuple[float, float | None]:
    """(wall, CPU) seconds of one process run to its end; it must succeed. CPU is the cgroup's
    (None where no cgroup can be made)."""
    group = CPUACCT / f"kfp-bot-bench-{uuid.uuid4().hex[:12]}"
    try:
        group.mkdir()
    except OSError:
        group = None
    start = time.perf_counter()
    command = ["/bin/sh", "-c", _JOIN, str(group), *argv] if group else argv
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    cpu = None
    if group is not None:
        cpu = int((group / "cpuacct.usage").read_text()) / 1e9
        group.rmdir()
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:3])} failed:\n{done.stdout}\n{done.stderr}")
    return wall, cpu


def median_of(repeat: int, argv: list[str], *, cwd: Path, env: dict[str, str]) -> tuple[float, float | None]:
    runs = [timed(argv, cwd=cwd, env=env) for _ in range(repeat)]
    cpus = [c for _, c in runs if c is not None]
    return statistics.median(w for w, _ in runs), statistics.median(cpus) if cpus else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "kfp-bot-compile-bench",
                        help="holds the cached kfp 1.8 environment between runs")
    args = parser.parse_args()
    cache = args.data_dir / "cache"
    python = str(ensure_environment(CompileEnvironment((KFP18,), (".kfp-bot.yaml",)), cache_dir=cache,
                                    python=sys.executable) / "bin" / "python")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(args.data_dir),
           "KFP_BOT_DATA_DIR": str(args.data_dir), "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory(prefix="kfp-bot-compile-bench-") as tmp:
        repo = make_template(Path(tmp))
        check = [str(Path(sys.executable).parent / "kfp-bot"), "check", "--repo", str(repo)]
        one_by_one = [sys.executable, "-c", ONE_BY_ONE, str(repo), *NAMES]
        bare = [python, f"pipelines/{NAMES[0]}/{NAMES[0]}.py"]
        timed(check, cwd=ROOT, env=env)  # warm the page cache and the parse cache once
        figures = {"check, 5 pipelines, one driver": median_of(args.repeat, check, cwd=ROOT, env=env),
                   "5 pipelines, one interpreter each (before)": median_of(args.repeat, one_by_one, cwd=ROOT,
                                                                            env=env),
                   "bare compile of one pipeline (floor)": median_of(args.repeat, bare, cwd=repo, env=env)}
    floor_wall, floor_cpu = figures["bare compile of one pipeline (floor)"]
    print(f"\ncompile: the template's 5 kfp 1.8 pipelines, cached environment, median of {args.repeat} "
          f"(Python {sys.version.split()[0]}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f})")
    print(f"{'what':<46} {'wall':>7} {'CPU':>7} {'wall/floor':>11} {'CPU/floor':>10}")
    for what, (wall, cpu) in figures.items():
        cpu_text = f"{cpu:>6.2f}s" if cpu is not None else "      -"
        ratio = f"{cpu / floor_cpu:>9.1f}x" if cpu is not None and floor_cpu else "         -"
        print(f"{what:<46} {wall:>6.2f}s {cpu_text} {wall / floor_wall:>10.1f}x {ratio}")
    wall, cpu = figures["check, 5 pipelines, one driver"]
    print(f"target: check under 1.5 s: {'holds' if wall < 1.5 else 'misses'} (wall {wall:.2f} s"
          + (f", CPU {cpu:.2f} s" if cpu is not None else "") + ")")

if __name__ == "__main__":
    main()
