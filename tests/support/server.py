"""Serve a WSGI app (the bot's Flask app, or a fake service) on 127.0.0.1 for the length of a test.

Tests talk to it over a real socket, exactly as GitHub or a browser would. The server is
threaded, so concurrent requests really run concurrently, and it listens on an ephemeral port.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server


class ServedApp:
    """A running server: `url` is its base address (no trailing slash)."""

    def __init__(self, app: Any, host: str = "127.0.0.1") -> None:
        self._server: BaseWSGIServer = make_server(host, 0, app, threaded=True)
        self.host = host
        self.port = self._server.server_port
        self.url = f"http://{host}:{self.port}"
        # A short poll interval makes shutdown() return promptly at the end of each test.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name=f"test-server-{self.port}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> ServedApp:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@contextmanager
def serve(app: Any, host: str = "127.0.0.1") -> Iterator[ServedApp]:
    """`with serve(app) as server: requests.get(server.url + "/healthz")`."""
    served = ServedApp(app, host)
    try:
        yield served
    finally:
        served.close()
