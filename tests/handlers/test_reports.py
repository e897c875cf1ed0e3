"""Render in the core, deliver in the adapters: the port and the reporters never render."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DELIVERERS = ("handlers/ports/code_host.py", "bot/github/github_reporter.py", "bot/log_reporter.py", "bot/redaction.py")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_the_reporter_port_and_its_adapters_do_not_import_the_messages() -> None:
    for name in DELIVERERS:
        modules = imported_modules(ROOT / name)
        assert not {m for m in modules if m == "handlers.messages" or m.startswith("handlers.messages.")}, name
        assert "handlers.reports" in modules, name  # they take the typed reports instead
