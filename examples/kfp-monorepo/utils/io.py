"""Small file helpers used inside component images (copied in by their Dockerfiles)."""

import json
from pathlib import Path


def write_json(path: str, value: object) -> None:
    """Write `value` as JSON to `path`, creating the parent folder (KFP output paths may not exist)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(value, sort_keys=True))


def write_text(path: str, text: str) -> None:
    """Write `text` to `path`, creating the parent folder."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def read_json(path: str) -> object:
    """Read a JSON file written by `write_json`."""
    return json.loads(Path(path).read_text())
