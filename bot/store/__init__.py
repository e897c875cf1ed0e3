"""The store adapter: runs, deliveries, pull requests, approvals and external ids in SQL.

`SqlStore` implements `handlers.ports.store.Store` on SQLite (embedded default, a file) and
PostgreSQL (production, Cloud SQL) with the same code.
"""

from __future__ import annotations

from bot.store.errors import StoreError
from bot.store.sql_store import SqlStore
from bot.store.tables import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "SqlStore", "StoreError"]
