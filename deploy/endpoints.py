"""Telling an emulator or test endpoint from a real one.

A loopback endpoint (`localhost`, `127.0.0.1`, `[::1]`, with or without a port or scheme) gets
an insecure channel and anonymous credentials; anything else talks TLS with real credentials.
One rule for every Google Cloud client (`deploy.google_clients`) and the KFP endpoint.
"""

from __future__ import annotations

import ipaddress
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
