"""GitHub's example webhook payloads (tests/data/webhooks), loaded with per-test overrides.

The payloads are GitHub's own examples (see tests/data/webhooks/README.md); a test adapts only the
values it needs, e.g. ``load_payload("pull_request.opened", {"pull_request.head.sha": sha})``.
`delivery_headers` adds the headers GitHub sends with a delivery, signed like GitHub signs them.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

WEBHOOKS_DIR = Path(__file__).resolve().parent.parent / "data" / "webhooks"


def available_payloads() -> list[str]:
    """Names accepted by `load_payload`, e.g. ``pull_request.opened``."""
    return sorted(path.name.removesuffix(".json") for path in WEBHOOKS_DIR.glob("*.json"))


def load_payload(name: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A fresh copy of payload `name` with `overrides` applied.

    `overrides` maps dotted paths to values: ``{"repository.clone_url": url,
    "pull_request.head.sha": sha, "commits.0.id": sha}`` (a number selects a list item). Every
    segment but the last must already exist, so a mistyped path fails loudly instead of adding a
    field the bot never reads; the last segment may add a new key.
    """
    path = WEBHOOKS_DIR / f"{name.removesuffix('.json')}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no webhook payload {name!r} in {WEBHOOKS_DIR}; "
                                f"available: {', '.join(available_payloads())}")
    payload = json.loads(path.read_text(encoding="utf-8"))
    for dotted, value in (overrides or {}).items():
        _set_path(payload, dotted, copy.deepcopy(value), name)
    return payload


def _set_path(payload: dict[str, Any], dotted: str, value: Any, name: str) -> None:
    *parents, last = dotted.split(".")
    node: Any = payload
    for depth, segment in enumerate(parents):
        try:
            node = node[int(segment)] if isinstance(node, list) else node[segment]
        except (KeyError, IndexError, ValueError, TypeError):
            where = ".".join(parents[: depth + 1])
            raise KeyError(f"payload {name!r} has no {where!r} (while setting {dotted!r})") from None
    if isinstance(node, list):
        try:
            node[int(last)] = value
        except (IndexError, ValueError):
            raise KeyError(f"payload {name!r}: {dotted!r} is not an item of its list") from None
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise KeyError(f"payload {name!r}: {'.'.join(parents)!r} is not an object (while setting {dotted!r})")


def delivery_headers(event: str, body: bytes, secret: str | None,
                     delivery_id: str | None = None) -> dict[str, str]:
    """The headers GitHub sends with a webhook delivery of `body` for `event`.

    With a `secret`, ``X-Hub-Signature-256`` is the HMAC-SHA256 of the exact body bytes, as GitHub
    computes it; without one the header is absent, as for a webhook configured without a secret.
    """
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/044aadd",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "109948940",
    }
    if secret is not None:
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        headers["X-Hub-Signature-256"] = f"sha256={digest}"
    return headers
