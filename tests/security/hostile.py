"""The attacker's side of the hostile suite: code a pull request would carry, and what it must not reach.

`attack_statements` is Python that, wherever it runs (a pipeline file at import, a lightweight
component at run time), collects everything it can reach into `found`: every /proc/*/environ and
/proc/*/cmdline, the bot's data folder, database and private key file by path, the files behind
symlinks committed in the repository, answers from the bot's port and other 127.0.0.1 services,
and writes outside its scratch folder. The victim side holds distinctive secrets: a process whose
environment carries them (standing in for the bot's own), files that contain them, and a local
service that answers with them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ENV_SECRET = "hostile-suite-env-secret-5c1e0b7a"
FILE_SECRET = "hostile-suite-file-secret-93d4f2c8"
SERVICE_SECRET = "hostile-suite-service-secret-0a6b1d"
SECRETS = (ENV_SECRET, FILE_SECRET, SERVICE_SECRET)

_ATTACK = '''\
import os, socket
found = []
def grab(path):
    try:
        with open(path, "rb") as handle:
            found.append(path + " = " + handle.read(1 << 16).decode("utf-8", "replace"))
    except OSError as exc:
        found.append(path + " ! " + type(exc).__name__)
    try:
        found.append(path + " lists " + repr(sorted(os.listdir(path))))
    except OSError:
        pass
for pid in os.listdir("/proc"):
    if pid.isdigit():
        grab("/proc/" + pid + "/environ")
        grab("/proc/" + pid + "/cmdline")
found.append("environ " + repr(dict(os.environ)))
for path in TARGETS["read"]:
    grab(path)
for port in TARGETS["ports"]:
    try:
        conn = socket.create_connection(("127.0.0.1", port), timeout=1)
        conn.sendall(b"GET /api/runs HTTP/1.0\\r\\n\\r\\n")
        found.append("port " + str(port) + " answered " + repr(conn.recv(65536)))
    except OSError as exc:
        found.append("port " + str(port) + " ! " + type(exc).__name__)
for path in TARGETS["write"]:
    try:
        with open(path, "w") as handle:
            handle.write("pwned")
        found.append("wrote " + path)
    except OSError as exc:
        found.append("write " + path + " ! " + type(exc).__name__)
'''


def attack_statements(read: Iterable[str], ports: Iterable[int], write: Iterable[str], indent: int = 0) -> str:
    """The attack as statements (indented by `indent` spaces), leaving what it found in `found`."""
    targets = {"read": list(read), "ports": list(ports), "write": list(write)}
    return textwrap.indent(f"TARGETS = {targets!r}\n" + _ATTACK, " " * indent)


@dataclass
class Victim:
    """What the attack must not reach: a secret-carrying process, files and a local service."""

    root: Path
    data_dir: Path
    key_file: Path
    database: Path
    outside: Path
    service_port: int = 0
    clean: bool = True  # checked after the test: no connection to the service, nothing written

    @property
    def read_targets(self) -> list[str]:
        return [str(p) for p in (self.data_dir, self.database, self.data_dir / "kfp-bot.db", self.key_file,
                                 self.data_dir / "cache", self.data_dir / "cache" / "other-repo" / "token",
                                 Path.home(), Path.home() / ".ssh", Path("/etc/shadow"))]

    @property
    def write_targets(self) -> list[str]:
        return [str(p) for p in (self.data_dir / "pwned", self.outside / "pwned", Path("/tmp/pwned-by-hostile-suite"),
                                 Path.home() / "pwned-by-hostile-suite")]

    def written(self) -> list[str]:
        """Files the attack managed to create outside its scratch folder."""
        return [p for p in self.write_targets if os.path.exists(p)]


def make_victim(root: Path) -> Victim:
    """Secret files in a data folder, and a folder outside the sandbox's scratch space."""
    data_dir = root / "data"
    (data_dir / "cache" / "other-repo").mkdir(parents=True)
    (data_dir / "cache" / "other-repo" / "token").write_text(FILE_SECRET)
    key_file = data_dir / "app-private-key.pem"
    key_file.write_text(f"-----BEGIN RSA PRIVATE KEY-----\n{FILE_SECRET}\n-----END RSA PRIVATE KEY-----\n")
    database = data_dir / "settings.sqlite"  # next to the bot's own kfp-bot.db, which is read too
    database.write_text(f"webhook_secret={FILE_SECRET}\n")
    outside = root / "outside"
    outside.mkdir()
    return Victim(root=root, data_dir=data_dir, key_file=key_file, database=database, outside=outside)


def secret_process() -> subprocess.Popen[bytes]:
    """A process of the bot's user whose initial environment holds the secret (like the bot's)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "KFP_BOT_WEBHOOK_SECRET": ENV_SECRET,
           "KFP_BOT_GITHUB_TOKEN": ENV_SECRET}
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)", ENV_SECRET], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class SecretService:
    """A TCP service on 127.0.0.1 that answers every connection with the secret and records it."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.sendall(f"HTTP/1.0 200 OK\r\n\r\n{SERVICE_SECRET}".encode())

    def close(self) -> None:
        # close() alone does not wake a thread blocked in accept(): it would keep the descriptor's
        # number and answer, with the secret, connections of whatever socket reuses it next
        # (another test's fake server). shutdown() ends the accept first.
        try:
            self.server.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.server.close()
        self.thread.join(timeout=5)


def leaked(*texts: object) -> list[str]:
    """The secrets that appear in any of `texts` (str() of each)."""
    joined = "\n".join(str(t) for t in texts)
    return [s for s in SECRETS if s in joined]


def survivors(marker: str) -> list[int]:
    """Processes whose command line contains `marker` (they should all be gone)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append(int(pid))
    return found


def spawner(marker: str, processes: int = 200, indent: int = 0) -> str:
    """Statements that fork many processes, detach a daemon with setsid, and sleep forever."""
    code = f'''\
import os, subprocess, time
subprocess.Popen(["setsid", "sh", "-c", "exec -a {marker}-daemon sleep 3600"], start_new_session=True)
try:
    for _ in range({processes}):
        if os.fork() == 0:
            os.setsid()
            os.execvp("sh", ["sh", "-c", "exec -a {marker}-child sleep 3600"])
except OSError:
    pass
time.sleep(3600)
'''
    return textwrap.indent(code, " " * indent)
