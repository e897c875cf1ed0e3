"""A local port that is certain to refuse connections, for tests of an unreachable service."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator


@contextlib.contextmanager
def refusing_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections while the block runs.

    The port is held bound but never listened on: a connection gets RST (ECONNREFUSED), and no
    other process can start listening on it meanwhile, unlike a port closed right after choosing it.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
