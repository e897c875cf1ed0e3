"""The store's schema: tables, the UTC timestamp type, and the schema version check.

One SQLAlchemy Core schema serves SQLite (embedded default) and PostgreSQL (Cloud SQL). States,
triggers and other enums are stored as their string values rather than database enum types, so
adding a state never needs `ALTER TYPE`. Tables are created when missing; the `schema_version`
table records which layout a database has, so that a later layout can be migrated (there is
one version so far, so there is nothing to migrate yet) and an older bot refuses a newer one.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    insert,
    select,
    text,
)
from sqlalchemy.engine import Connection

from bot.store.errors import StoreError

SCHEMA_VERSION = 1
"""Layout version of this code; bump it together with a migration step in `ensure_schema`."""

# Any constant will do: it only has to be the same in every process that opens the database.
_SCHEMA_LOCK_KEY = 0x6B66_7062_6F74  # "kfpbot"


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    SQLite keeps no time zone, so values are converted to UTC before they are written and get
    UTC attached when read back; PostgreSQL's `timestamptz` answers in the session's zone,
    which is converted to UTC as well. Naive datetimes given to the store are taken as UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = _as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return _as_utc(value)


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


metadata = MetaData()

schema_version = Table(
    "schema_version", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

deliveries = Table(
    "deliveries", metadata,
    Column("delivery_id", String, primary_key=True),
    Column("event", String, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
)

# Deliveries that failed, kept for `/api/deliveries?failed=1`; several rows per delivery when a
# redelivery fails again.
delivery_failures = Table(
    "delivery_failures", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("delivery_id", String, nullable=False),
    Column("event", String, nullable=False),
    Column("stage", String, nullable=False),
    Column("reason", Text, nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Index("ix_delivery_failures_at", "at"),
)

messages = Table(
    "messages", metadata,
    Column("key", String, primary_key=True),
    Column("at", UtcDateTime, nullable=False),
)

pulls = Table(
    "pulls", metadata,
    Column("repo", String, primary_key=True),
    Column("number", Integer, primary_key=True, autoincrement=False),
    # The RepoRef as JSON: new repository fields need no migration.
    Column("repo_ref", JSON, nullable=False),
    Column("title", Text, nullable=False),
    Column("author", String, nullable=False),
    Column("html_url", String, nullable=False),
    Column("head_sha", String, nullable=False),
    Column("head_ref", String, nullable=False),
    Column("head_repo", String, nullable=False),
    Column("head_clone_url", String, nullable=False),
    Column("base_sha", String, nullable=False),
    Column("base_ref", String, nullable=False),
    Column("draft", Boolean, nullable=False),
    Column("author_association", String, nullable=False),
    Column("installation_id", BigInteger),
    Column("updated_at", UtcDateTime, nullable=False),
)

approvals = Table(
    "approvals", metadata,
    Column("repo", String, primary_key=True),
    Column("number", Integer, primary_key=True, autoincrement=False),
    Column("sha", String, primary_key=True),
    Column("by", String, nullable=False),
    Column("at", UtcDateTime, nullable=False),
)

runs = Table(
    "runs", metadata,
    Column("id", String, primary_key=True),
    Column("repo", String, nullable=False),
    Column("pr", Integer),
    Column("sha", String, nullable=False),
    Column("base_sha", String),
    Column("pipeline", String, nullable=False),
    Column("trigger", String, nullable=False),
    Column("triggered_by", String),
    Column("state", String, nullable=False),
    Column("parameters", JSON, nullable=False),
    Column("overrides", JSON, nullable=False),
    Column("plan", JSON, nullable=False),
    Column("url", Text),
    Column("error", Text),
    Column("clone_url", Text),
    Column("installation_id", BigInteger),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_runs_repo_pr", "repo", "pr"),
    Index("ix_runs_state", "state"),
    Index("ix_runs_sha", "sha"),
    Index("ix_runs_created_at", "created_at"),
)

transitions = Table(
    "transitions", metadata,
    Column("run_id", String, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("state", String, nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("detail", Text, nullable=False),
)

outbox = Table(
    "outbox", metadata,
    # The store is the queue: every event waiting to be handled (or, with Pub/Sub, published)
    # is a row here, written in the same transaction as what caused it (see bot/store/outbox.py).
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String, nullable=False),
    Column("key", String, nullable=False),
    Column("event", JSON, nullable=False),
    Column("lane", String, nullable=False),
    # Fairness key: the repository the work is for (one busy repository must not starve others).
    Column("repo", String, nullable=False),
    Column("run_id", String),
    Column("created_at", UtcDateTime, nullable=False),
    # Ownership: the instance working on the row, until `lease_until` (renewed while it works).
    Column("owner", String),
    Column("lease_until", UtcDateTime),
    Column("attempts", Integer, nullable=False),
    Column("done_at", UtcDateTime),
    Index("ix_outbox_pending", "done_at", "lane", "id"),
    Index("ix_outbox_run", "run_id", "done_at"),
    # What a claim orders the queue by, read from the index alone: the rows hold each event's
    # JSON before these columns, and reading past it (overflow pages for a large event) for
    # every queued row made a claim cost milliseconds on a long queue.
    Index("ix_outbox_claim", "done_at", "lane", "repo", "owner", "lease_until", "id"),
)
# Indexes added after their table: `create_all` makes them only with a new table.
_LATER_INDEXES = ("ix_outbox_claim",)

externals = Table(
    "externals", metadata,
    Column("scope", String, primary_key=True),
    Column("key", String, primary_key=True),
    Column("value", Text, nullable=False),
)

# The parent message of a chat thread (one per PR or deploy commit and channel): the channel's ID
# as the chat service answered it (Slack edits messages by channel ID only) and the message's ts.
# A table of its own, created when missing, so older databases need no migration.
chat_threads = Table(
    "chat_threads", metadata,
    Column("key", String, primary_key=True),
    Column("channel_id", String, nullable=False),
    Column("ts", String, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)


def ensure_schema(conn: Connection, now: datetime, where: str) -> None:
    """Create missing tables (and indexes added to existing ones since) and check the schema
    version, inside the caller's write transaction.

    On PostgreSQL an advisory lock serialises processes starting at the same moment (several
    gunicorn workers), whose `CREATE TABLE`s would otherwise collide; on SQLite the caller's
    `BEGIN IMMEDIATE` does the same.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK_KEY})
    metadata.create_all(conn)
    for index in outbox.indexes:
        if index.name in _LATER_INDEXES:
            index.create(conn, checkfirst=True)
    found = conn.execute(select(schema_version.c.version).where(schema_version.c.id == 1)).scalar()
    if found is None:
        conn.execute(insert(schema_version).values(id=1, version=SCHEMA_VERSION, created_at=now))
    elif found > SCHEMA_VERSION:
        raise StoreError(f"the database at {where} has schema version {found}, written by a newer "
                         f"kfp-bot; this one knows version {SCHEMA_VERSION}",
                         hint="upgrade kfp-bot, or point it at another database")
