"""Telling an emulator or test endpoint from a real one.

A loopback endpoint (`localhost`, `127.0.0.1`, `[::1]`, with or without a port or scheme) gets
an insecure channel and anonymous credentials; anything else talks TLS with real credentials.
One rule for every Google Cloud client and the KFP endpoint.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit


def is_loopback(endpoint: str) -> bool:
    """True when `endpoint` (`host`, `host:port`, `[::1]:port`, optionally with a scheme) is this machine."""
    host = urlsplit(endpoint if "//" in endpoint else f"//{endpoint}").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def make_gcs_client(endpoint: str | None = None, project: str | None = None) -> Any:
    """A Cloud Storage client; a loopback `endpoint` (fakes, emulators) gets anonymous credentials."""
    import google.cloud.storage as storage
    from google.auth.credentials import AnonymousCredentials

    if endpoint and is_loopback(endpoint):
        return storage.Client(project=project or "test", credentials=AnonymousCredentials(),
                              client_options={"api_endpoint": endpoint})
    options = {"api_endpoint": endpoint} if endpoint else None
    return storage.Client(project=project, client_options=options)
