"""What a sandboxed process sees: the bubblewrap command line for one step.

The process gets new PID, mount, IPC, UTS, network, user and cgroup namespaces
(`--unshare-all --unshare-user`), no capabilities, an empty environment plus the variables the
step needs, a fresh /proc and /dev, a tmpfs /tmp, and a read-only root holding only what Python
and the SDK need: the system's /usr, /lib and a few files of /etc, the interpreter's prefix and
virtual environment. Exactly the step's scratch folders are writable. The bot's data folder, its
database, other repositories' checkouts and caches, the private key file and $HOME are simply not
in the view. The network is shared only when asked (pip installing a compile environment).
"""

from __future__ import annotations

import configparser
import os
import shutil
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

BWRAP = "bwrap"
SANDBOX_UID = 65534  # "nobody" inside; outside, files it writes belong to the bot's user
# Top-level system folders (or merged-/usr symlinks) a Python process needs.
_SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# Files of /etc that hold no secret and that libc, Python, ssl and pip read.
_ETC = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives", "/etc/passwd",
        "/etc/group", "/etc/localtime", "/etc/nsswitch.conf", "/etc/hosts", "/etc/mime.types",
        "/etc/ssl", "/etc/ca-certificates", "/etc/pki", "/etc/crypto-policies")
# Only with the network: name resolution and the pip configuration (it names the package index).
_ETC_NETWORK = ("/etc/resolv.conf", "/etc/gai.conf", "/etc/host.conf", "/etc/pip.conf", "/etc/xdg/pip")
_PIP_PATH_KEYS = ("index-url", "extra-index-url", "find-links", "constraint", "cert", "client-cert")


def bwrap_path() -> str | None:
    """The bubblewrap executable, or None when it is not installed."""
    return shutil.which(BWRAP) or (("/usr/bin/" + BWRAP) if os.access("/usr/bin/" + BWRAP, os.X_OK) else None)


def python_paths(interpreters: Iterable[str]) -> list[Path]:
    """The folders that make `interpreters` (and the bot's own) work: venvs and install prefixes.

    Only real Python interpreters count: a command such as `bash` or a relative name adds nothing
    (its "prefix" could be any folder, e.g. the parent of the scratch folder)."""
    found: list[Path] = []
    candidates = [Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix), Path(sys.base_exec_prefix)]
    for interpreter in interpreters:
        located = interpreter if os.path.isabs(interpreter) else shutil.which(interpreter)
        if not located or not Path(located).name.startswith("python"):
            continue
        path = Path(located)
        if (path.parent.parent / "pyvenv.cfg").is_file():
            candidates.append(path.parent.parent)
        real = path.resolve()
        if real.name.startswith("python") and real.is_file() and (real.parent.parent / "lib").is_dir():
            candidates.append(real.parent.parent)
    for candidate in candidates:
        if _systemwide(candidate) or candidate in found or not candidate.is_dir():
            continue
        found.append(candidate)
    return found


def _systemwide(path: Path) -> bool:
    """True for folders the system view already holds (or that must never be bound whole)."""
    text = str(path)
    return text == "/" or any(text == s or text.startswith(s + "/") for s in _SYSTEM)


def pip_paths(environ: Mapping[str, str]) -> list[Path]:
    """Local paths the pip configuration points at (a file:// index, find-links, constraints)."""
    values = [environ.get("PIP_" + key.upper().replace("-", "_"), "") for key in _PIP_PATH_KEYS]
    for config in ("/etc/pip.conf", "/etc/xdg/pip/pip.conf", environ.get("PIP_CONFIG_FILE", "")):
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read(config)
        except (configparser.Error, OSError, UnicodeDecodeError):
            continue
        for section in parser.sections():
            values += [parser.get(section, key, fallback="") for key in _PIP_PATH_KEYS]
        if config and os.path.isfile(config):
            values.append(config)
    paths = []
    for value in values:
        for token in value.split():
            token = token.removeprefix("file://")
            if token.startswith("/") and os.path.exists(token) and Path(token) not in paths:
                paths.append(Path(token))
    return paths


def bwrap_command(bwrap: str, argv: Sequence[str], *, cwd: Path, writable: Sequence[Path],
                  read_only: Sequence[Path], network: bool, env: Mapping[str, str]) -> list[str]:
    """The full command line that runs `argv` in `cwd` behind bubblewrap."""
    command = [bwrap, "--unshare-all", "--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
               "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--clearenv",
               "--hostname", "kfp-bot-sandbox"]
    if network:
        command.append("--share-net")
    for name in _SYSTEM:
        if os.path.islink(name):
            command += ["--symlink", os.readlink(name), name]
        elif os.path.isdir(name):
            command += ["--ro-bind", name, name]
    for name in _ETC + (_ETC_NETWORK if network else ()):
        if os.path.lexists(name):
            command += ["--ro-bind-try", name, name]
    command += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    binds = [(p, "--ro-bind") for p in read_only] + [(p, "--bind") for p in writable]
    # Parents before children, so that a writable folder inside a read-only one stays writable.
    for path, option in sorted(binds, key=lambda item: len(Path(item[0]).parts)):
        command += [option, str(path), str(path)]
    command += ["--remount-ro", "/"]
    for key, value in env.items():
        command += ["--setenv", key, value]
    command += ["--chdir", str(cwd), "--", *argv]
    return command
