"""Owner ids name a process of a machine exactly; `alive_here` asks the operating system about it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from bot.owners import alive_here, new_owner_id

CHILD = "import sys; from bot.owners import new_owner_id; print(new_owner_id(), flush=True); sys.stdin.read()"


def test_another_running_process_of_this_machine_is_alive_until_it_ends() -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, cwd=os.getcwd())
    try:
        owner = child.stdout.readline().strip()  # type: ignore[union-attr]
        host, pid, start, _ = owner.split(":")
        assert (host, int(pid)) == (socket.gethostname(), child.pid)
        assert alive_here(owner)
        assert not alive_here(f"{host}:{pid}:{int(start) + 1}:later")  # the same pid, another process
        assert not alive_here(f"another-{host}:{pid}:{start}:x")        # judged by its lease alone
    finally:
        child.kill()
        child.wait(30)
    assert not alive_here(owner)


def test_this_process_and_ids_of_other_shapes_are_left_to_the_lease() -> None:
    assert not alive_here(new_owner_id())  # a stopped bus of this process leaves rows behind
    assert not alive_here("alive-instance")
    assert not alive_here(f"{socket.gethostname()}:1:-:x")
