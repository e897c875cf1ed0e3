"""`kfp-bot serve` states its memory budget at start-up, as an operator reads it in the log."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bot.budget import memory_budget
from bot.config import load_settings


def test_serve_logs_its_memory_budget_at_start_up(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KFP_BOT_")}
    env.update(KFP_BOT_DATA_DIR=str(tmp_path), KFP_BOT_WEBHOOK_SECRET="budget-test", KFP_BOT_INSTANCE_MEMORY_MB="3072",
               KFP_BOT_COMPILE_MAX_MEMORY_MB="1024", KFP_BOT_ALLOW_UNSANDBOXED="1")
    server = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", "0"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and "listening on" in server.stdout.readline()
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=30)
    budget = next(line for line in errors.splitlines() if "memory budget" in line)
    assert "instance 3072 MB (KFP_BOT_INSTANCE_MEMORY_MB)" in budget
    assert "compiles run here in the sandbox, each capped at 1024 MB" in budget and str(tmp_path) in budget


def test_with_cloud_build_the_budget_says_compiles_run_there(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, builder="cloudbuild", gcp_project="p", cloudbuild_bucket="b")

    assert "compiles run in Cloud Build, not in this service" in memory_budget(settings)
    assert "instance memory not set" in memory_budget(settings)
