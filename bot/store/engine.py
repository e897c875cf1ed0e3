"""Engines for the store: SQLite (embedded, a file) and PostgreSQL (Cloud SQL), set up alike.

The store runs on many threads at once (bus workers and Flask request threads), so both
backends get a connection pool and transactions that keep concurrent writers apart:

* SQLite: WAL journal (readers never wait for the writer), a busy timeout, connections usable
  from any thread, and transactions begun by us rather than by the `sqlite3` module, whose
  legacy mode opens none for SELECT. Write transactions are `BEGIN IMMEDIATE`: they take the
  write lock first (waiting up to the busy timeout), so a read-then-write can never fail with
  "database is locked" because another writer committed in between. Writers of one process
  also queue on a lock of their own (`Engines.write_lock`): SQLite's busy handler sleeps in
  steps of up to 100 ms while it waits, which under a burst of webhooks turns a 1 ms insert
  into a 100 ms answer; a queue wakes the next writer as soon as the lock is free.
* PostgreSQL: the `psycopg` (3) driver, pre-ping and recycling for connections Cloud SQL closes,
  READ COMMITTED writes (compare-and-set in the statements) and REPEATABLE READ reads, so a run
  and its transitions are read from one snapshot.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError

from bot.store.errors import StoreError
from bot.store.rows import dumps_json

_BEGIN_OPTION = "kfp_bot_sqlite_begin"
_URL_EXAMPLES = "sqlite:///path/to/kfp-bot.db or postgresql://user:password@host/database"


@dataclass(frozen=True)
class Engines:
    """One pool seen three ways: the base engine, and engines for read and write transactions."""

    engine: Engine
    reader: Engine
    writer: Engine
    display_url: str
    write_lock: threading.RLock | None = None


def open_engines(url: str, *, busy_timeout: float = 30.0) -> Engines:
    """Engines for `url`; raises StoreError for a URL the store cannot use."""
    parsed = _parse(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        parsed = _sqlite_url(parsed)
        engine = create_engine(parsed, connect_args={"check_same_thread": False, "timeout": busy_timeout},
                               json_serializer=dumps_json)
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return Engines(engine=engine, reader=engine,
                       writer=engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"}),
                       display_url=_display(parsed), write_lock=threading.RLock())
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            # SQLAlchemy 2.0 would pick psycopg2 for a bare postgresql:// URL.
            parsed = parsed.set(drivername="postgresql+psycopg")
        try:
            engine = create_engine(parsed, pool_pre_ping=True, pool_recycle=1800, json_serializer=dumps_json)
        except ModuleNotFoundError as exc:
            raise StoreError(f"cannot open {_display(parsed)}: the database driver is not installed ({exc})",
                             hint="install it with: pip install 'psycopg[binary]'") from exc
        return Engines(engine=engine, reader=engine.execution_options(isolation_level="REPEATABLE READ"),
                       writer=engine, display_url=_display(parsed))
    raise StoreError(f"database {_display(parsed)} is not supported: the store runs on SQLite and PostgreSQL",
                     hint=f"use {_URL_EXAMPLES}")


def _parse(url: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        # The URL is not echoed: it may hold a password.
        raise StoreError("the database URL is not a valid URL", hint=f"use {_URL_EXAMPLES}") from exc
    if parsed.drivername == "postgres":
        parsed = parsed.set(drivername="postgresql")
    return parsed


def _sqlite_url(parsed: URL) -> URL:
    database = parsed.database or ""
    if database in ("", ":memory:") or parsed.query.get("mode") == "memory":
        raise StoreError("an in-memory SQLite database is not shared between the bot's threads",
                         hint="use a file: sqlite:///path/to/kfp-bot.db")
    if database.startswith("file:"):
        return parsed
    path = Path(database).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the folder {path.parent} for the SQLite database: {exc.strerror}",
                         hint="choose a writable path for the database") from exc
    return parsed.set(database=str(path))


def _display(parsed: URL) -> str:
    return parsed.render_as_string(hide_password=True)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # We emit BEGIN ourselves (see _sqlite_begin); sqlite3 must not.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        _enable_wal(cursor)
        # NORMAL is durable in WAL mode except across a power loss, which the bot can live with.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _enable_wal(cursor: Any, *, attempts: int = 100, pause: float = 0.05) -> None:
    """Switch to WAL. Changing the journal mode needs an exclusive lock and SQLite does not wait
    for it through the busy timeout, so processes opening a new database together retry."""
    for attempt in range(attempts):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(pause)


def _sqlite_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
    conn.exec_driver_sql("BEGIN IMMEDIATE" if mode == "IMMEDIATE" else "BEGIN DEFERRED")
