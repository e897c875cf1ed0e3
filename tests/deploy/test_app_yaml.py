"""`app.yaml` serves the bot: its gunicorn entrypoint starts the real app on a real socket."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
import yaml

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_app_yaml_entrypoint_serves_the_bot(tmp_path: Path) -> None:
    app = yaml.safe_load((ROOT / "app.yaml").read_text())
    assert app["runtime"] == "python311"
    port = free_port()
    argv = shlex.split(app["entrypoint"].replace("0.0.0.0", "127.0.0.1").replace("$PORT", str(port)))
    assert argv[:4] == ["python", "-m", "bot", "serve"]  # the same server and limits as `kfp-bot serve`
    env = {k: v for k, v in os.environ.items() if not k.startswith("KFP_BOT_")}
    env.update({k: str(v) for k, v in app["env_variables"].items()})
    env.update({"KFP_BOT_WEBHOOK_SECRET": "app-yaml-test", "KFP_BOT_DATA_DIR": str(tmp_path)})
    server = subprocess.Popen([sys.executable, *argv[1:]], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except (requests.ConnectionError, requests.Timeout):  # gunicorn listens before the app is loaded
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        assert answer.json()["status"] == "ok"
        unsigned = requests.post(f"http://127.0.0.1:{port}/github/webhook", data=b"{}", timeout=5,
                                 headers={"X-GitHub-Event": "ping", "X-GitHub-Delivery": "1"})
        assert unsigned.status_code == 401
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_app_yaml_carries_no_secret() -> None:
    text = (ROOT / "app.yaml").read_text()
    for name in ("WEBHOOK_SECRET", "PRIVATE_KEY", "GITHUB_TOKEN", "TASKS_TOKEN"):
        assert f"KFP_BOT_{name}:" not in text


# Memory of each App Engine standard instance class (second generation runtimes),
# https://cloud.google.com/appengine/docs/standard#instance_classes
INSTANCE_CLASS_MB = {"F1": 384, "F2": 768, "F4": 1536, "F4_1G": 3072}


def test_app_yaml_states_its_instance_memory_and_caps_compiles_below_it(tmp_path: Path) -> None:
    from bot.config import load_settings

    app = yaml.safe_load((ROOT / "app.yaml").read_text())
    env = app["env_variables"]
    memory = INSTANCE_CLASS_MB[app["instance_class"]]

    assert int(env["KFP_BOT_INSTANCE_MEMORY_MB"]) == memory
    settings = load_settings(instance_memory_mb=env["KFP_BOT_INSTANCE_MEMORY_MB"],
                             compile_max_memory_mb=env["KFP_BOT_COMPILE_MAX_MEMORY_MB"], data_dir=tmp_path)
    assert settings.compile_max_memory_mb < memory
