"""Planning as the repository grows: `kfp-bot plan` next to its floors, in one run.

For generated monorepos of 100, 300, 1,000 and 3,000 pipelines × 3 components (every image
copies `utils/`), it times the whole `kfp-bot plan --json` command (a fresh process, as a user
runs it) for one pipeline changed and for a `utils/` module every image copies, with an empty
data folder (cold) and with the on-disk parse cache an earlier plan left (warm). Next to each
figure: `git ls-tree -r` of the head (listing the files, which any analysis must do), `git diff`
of the change, and a path filter (`git diff --name-only` + the changed folders under
`pipelines/`, which misses every shared-code change), as ratios. Also the command's start-up
against a bare `python -c pass`. Figures are medians of CPU seconds (user + system, git
processes included), as steady as a shared machine allows.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from benchmarks.plan_bench import _ENV, generate, repository_files

SIZES = (100, 300, 1000, 3000)


def _commit_edit(root: Path, branch: str, parent: str, path: str, text: str) -> str:
    """A commit on `branch` (from `parent`) with `path` replaced by `text`, through fast-import."""
    data = text.encode()
    message = f"edit {path}".encode()
    stream = (b"commit refs/heads/%s\ncommitter bench <bench@example.com> 1700000100 +0000\n"
              b"data %d\n%s\nfrom %s\nM 100644 inline %s\ndata %d\n%s\n\n"
              % (branch.encode(), len(message), message, parent.encode(), path.encode(), len(data), data))
    subprocess.run(["git", "fast-import", "--quiet", "--force"], cwd=root, env=_ENV, input=stream, check=True,
                   capture_output=True)
    return subprocess.run(["git", "rev-parse", branch], cwd=root, env=_ENV, check=True, capture_output=True,
                          text=True).stdout.strip()


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _median(run: Callable[[], object], repeat: int) -> float:
    """Median CPU seconds (user + system, child processes and their git processes included) of `run`.

    CPU time, not wall-clock: on a shared, loaded machine wall-clock swings by several times
    from one run to the next, while the work done stays put.
    """
    times = []
    for _ in range(repeat):
        start = _cpu()
        run()
        times.append(_cpu() - start)
    return statistics.median(times)


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    return subprocess.run(args, cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def _plan(root: Path, base: str, head: str, data_dir: Path) -> str:
    # An installed kfp-bot has its bytecode compiled: without PYTHONDONTWRITEBYTECODE the first
    # run writes it, as installing would, instead of every run compiling every module again.
    env = {k: v for k, v in os.environ.items() if not k.startswith("KFP_BOT_") and k != "PYTHONDONTWRITEBYTECODE"}
    env["KFP_BOT_DATA_DIR"] = str(data_dir)
    return _run([sys.executable, "-m", "bot", "plan", "--repo", str(root), "--base", base, "--head", head,
                 "--json"], cwd=root, env=env)


def _path_filter(root: Path, base: str, head: str) -> set[str]:
    names = _run(["git", "diff", "--name-only", base, head], cwd=root).splitlines()
    return {n.split("/")[1] for n in names if n.startswith("pipelines/") and n.count("/") >= 2}


def _in_service(root: Path, base: str, earlier: str, head: str, data_dir: Path, repeat: int) -> float:
    """Median CPU seconds of `plan_change` in a long-running process (the service) that planned
    an earlier change on the same base before: its memory caches are warm, the head is new."""
    from pipeline_registry.cache_control import clear_all_caches, use_disk_cache
    from pipeline_registry.planner import plan_change

    use_disk_cache(data_dir)
    clear_all_caches()
    plan_change(root, base, earlier)
    try:
        return _median(lambda: plan_change(root, base, head), repeat)
    finally:
        use_disk_cache(None)
        clear_all_caches()


def measure(root: Path, pipelines: int, repeat: int, tmp: Path) -> list[tuple[str, float, float, float, float, float]]:
    """(change, cold s, warm s, in-service s, diff s, path filter s) rows for one generated repository.

    Warm is what a new push meets: the data folder an earlier plan of another change on the same
    base left (its parses and the base tree's facts); the head and its changed blob are new to it.
    """
    files = repository_files(pipelines)
    base = _run(["git", "rev-parse", "main"], cwd=root).strip()
    middle = f"pipelines/pipeline-{pipelines // 2:03d}/train/main.py"
    other = f"pipelines/pipeline-{pipelines // 3:03d}/evaluate/main.py"
    earlier = _commit_edit(root, "earlier", base, other, files[other] + "# earlier push\n")
    one = _commit_edit(root, "one", base, middle, files[middle] + "# tuned\n")
    utils = _commit_edit(root, "utils", base, "utils/metrics.py", files["utils/metrics.py"] + "# changed\n")
    rows = []
    for name, head in (("one pipeline changed", one), ("utils/ module (every image)", utils)):
        counter = iter(range(10_000))
        cold = _median(lambda: _plan(root, base, head, tmp / f"cold-{pipelines}-{head[:8]}-{next(counter)}"), repeat)
        warm_dir = tmp / f"warm-{pipelines}-{head[:8]}"
        _plan(root, base, earlier, warm_dir)  # an earlier push, planned from the command line or the service
        warm = _median(lambda: _plan(root, base, head, warm_dir), repeat)
        service = _in_service(root, base, earlier, head, tmp / f"service-{pipelines}-{head[:8]}", repeat)
        diff = _median(lambda: _run(["git", "diff", "--raw", base, head], cwd=root), repeat)
        path_filter = _median(lambda: _path_filter(root, base, head), repeat)
        rows.append((name, cold, warm, service, diff, path_filter))
    return rows


# What `kfp-bot plan` does before planning, in a fresh interpreter: its imports (bot.cli imports the
# command bodies and planning), its one setting, the data folder's parse cache, and reading a
# `.kfp-bot.yaml` validated by an earlier plan (by blob id; the first run below validates it).
STARTUP = """
from bot.cli import main
from bot.config import load_command_line_settings
from pipeline_registry.cache_control import PARSES_DIR, flush_disk_cache, use_disk_cache
from pipeline_registry.repo_config import load_repo_config
use_disk_cache(load_command_line_settings().cache_dir / PARSES_DIR)
load_repo_config({config!r})
flush_disk_cache()
"""
STARTUP_CONFIG = "image_registry: europe-docker.pkg.dev/proj/repo\nautorun:\n  label: run-pipelines\n"


def startup(repeat: int) -> tuple[float, float]:
    """(bare `python -c pass`, the start-up of `kfp-bot plan` before any planning) in CPU seconds."""
    bare = _median(lambda: _run([sys.executable, "-c", "pass"], cwd=Path.cwd()), repeat)
    with tempfile.TemporaryDirectory(prefix="kfp-bot-startup-") as data_dir:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KFP_BOT_")}
        env["KFP_BOT_DATA_DIR"] = data_dir
        command = [sys.executable, "-c", STARTUP.format(config=STARTUP_CONFIG)]
        _run(command, cwd=Path.cwd(), env=env)  # validates the configuration once, as a first plan would
        plan = _median(lambda: _run(command, cwd=Path.cwd(), env=env), repeat)
    return bare, plan


def run_scaling(sizes: tuple[int, ...] = SIZES, repeat: int = 3) -> None:
    """Print the scaling table (one row per size and change) and the start-up line."""
    print(f"kfp-bot plan --json as a fresh process, median CPU seconds of {repeat}; cold = empty data folder, warm = "
          f"the data folder an earlier plan of another change on the same base left; service = plan_change in a "
          f"process that planned that earlier change; floors: git ls-tree -r, git diff --raw, path filter\n")
    print(f"{'pipelines':>9} {'files':>6} {'change':<28} {'cold s':>7} {'warm s':>7} {'service ms':>10} "
          f"{'ls-tree s':>9} {'diff s':>7} {'filter s':>8} {'warm/ls-tree':>12} {'warm/diff':>9} {'warm/filter':>11}")
    with tempfile.TemporaryDirectory(prefix="kfp-bot-scaling-") as name:
        tmp = Path(name)
        for pipelines in sizes:
            root = tmp / f"repo-{pipelines}"
            generate(root, pipelines, checkout=False)
            files = len(_run(["git", "ls-tree", "-r", "--name-only", "main"], cwd=root).splitlines())
            listing = _median(lambda: _run(["git", "ls-tree", "-r", "main"], cwd=root), repeat)
            for change, cold, warm, service, diff, path_filter in measure(root, pipelines, repeat, tmp):
                print(f"{pipelines:>9} {files:>6} {change:<28} {cold:>7.2f} {warm:>7.2f} {service * 1000:>10.0f} "
                      f"{listing:>9.3f} "
                      f"{diff:>7.3f} {path_filter:>8.3f} {warm / listing:>12.0f} {warm / diff:>9.0f} "
                      f"{warm / path_filter:>11.0f}", flush=True)
    bare, plan = startup(max(repeat, 5))
    print(f"\nstart-up of `kfp-bot plan` (imports, settings, a validated .kfp-bot.yaml): {plan * 1000:.0f} ms, bare python -c pass "
          f"{bare * 1000:.0f} ms: +{(plan - bare) * 1000:.0f} ms ({plan / bare:.1f}x)")
    load = os.getloadavg()
    print(f"load average during the run: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} cpus")
