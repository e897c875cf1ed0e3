"""`make demo`, the first command a newcomer runs, as they run it: it must end well and show the
plan, the pipeline diff and a succeeded run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_demo_plans_diffs_and_runs_the_changed_pipeline() -> None:
    result = subprocess.run([sys.executable, "-m", "examples.demo"], cwd=ROOT, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "● hello-pipeline (modified)" in out
    assert "hello-pipeline: 1 change" in out
    assert any(line.split()[:4] == ["settings.yaml", "parameters.repeat", "3", "→"] for line in out.splitlines())
    assert '"state": "succeeded"' in out
    assert "Traceback" not in result.stderr
