"""Store fixtures: a manual clock, and stores on a SQLite file and on a throwaway PostgreSQL server.

`store` and `store_url` run every test that uses them twice, on SQLite and on PostgreSQL. The
PostgreSQL server is started once per session in a temporary folder from the server binaries
of the machine (`initdb`, `pg_ctl`); when they, or the psycopg driver, are missing, the
PostgreSQL variant is skipped with the reason. Each test gets an empty database of its own
(a SQLite file; a schema of the PostgreSQL test database).
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.store import SqlStore
from tests.fakes.github import FakeGitHub
from tests.support.github_clients import seed

BACKENDS = ("sqlite", "postgresql")
TEST_DATABASE = "kfp_bot_test"


class ManualClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> ManualClock:
    """A manual clock starting at 2024-05-01 12:00:00 UTC."""
    return ManualClock(datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC))


class PostgresServer:
    """A PostgreSQL server in a temporary folder, listening on 127.0.0.1 only, trust auth."""

    def __init__(self, bin_dir: Path, root: Path, account: str | None) -> None:
        self.bin_dir = bin_dir
        self.root = root
        self.account = account
        self.data = root / "data"
        self.log = root / "server.log"
        self.port = 0
        self._names = itertools.count(1)

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {"PATH": f"{self.bin_dir}:/usr/bin:/bin", "LC_ALL": "C", "HOME": str(self.root)}
        return subprocess.run([str(self.bin_dir / args[0]), *args[1:]], user=self.account, env=env,
                              cwd=self.root, capture_output=True, text=True, timeout=120, check=False)

    def start(self) -> None:
        """initdb and start; fails the tests with the server's own output when it cannot."""
        done = self._run("initdb", "-D", str(self.data), "-U", "kfp", "-A", "trust", "-E", "UTF8",
                         "--no-locale", "--no-sync")
        if done.returncode != 0:
            pytest.fail(f"initdb failed:\n{done.stdout}\n{done.stderr}")
        for _attempt in range(3):
            self.port = _free_port()
            options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off "
                       "-c synchronous_commit=off -c full_page_writes=off")
            done = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options,
                             "-w", "-t", "60", "start")
            if done.returncode == 0:
                return
        log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
        pytest.fail(f"the PostgreSQL server did not start:\n{done.stdout}\n{done.stderr}\n{log}")

    def stop(self) -> None:
        """Stop the server (fast shutdown) if it was started."""
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, database: str, schema: str | None = None) -> str:
        """A URL of `database`; with `schema`, connections work in that schema (search_path)."""
        url = f"postgresql+psycopg://kfp@127.0.0.1:{self.port}/{database}"
        return f"{url}?options=-csearch_path%3D{schema}" if schema else url

    def execute(self, sql: str, database: str = "postgres") -> None:
        """Run one administrative statement (autocommit) as the superuser."""
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user="kfp", dbname=database,
                             autocommit=True) as conn:
            conn.execute(sql)

    def new_schema(self) -> str:
        """A new, empty schema in the test database (much faster than a database per test)."""
        name = f"test_{next(self._names)}"
        self.execute(f'CREATE SCHEMA "{name}"', TEST_DATABASE)
        return name


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _postgres_bin_dir() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin with initdb and pg_ctl, else the ones on PATH."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                      key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else -1, reverse=True)
    for bin_dir in versions:
        if (bin_dir / "initdb").exists() and (bin_dir / "pg_ctl").exists():
            return bin_dir
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        initdb_dir = Path(initdb).resolve().parent
        if (initdb_dir / "pg_ctl").exists():
            return initdb_dir
    return None


def _server_account() -> str | None:
    """None to run the server as ourselves; an unprivileged account when we are root (initdb refuses root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    pytest.skip("PostgreSQL variant skipped: running as root and there is no 'postgres' or 'nobody' "
                "account to run the server as (initdb refuses root)")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server for the session; skips when it cannot be had here."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("PostgreSQL variant skipped: the psycopg driver is not installed "
                    "(pip install 'psycopg[binary]')")
    bin_dir = _postgres_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL variant skipped: no initdb/pg_ctl under /usr/lib/postgresql/*/bin or on "
                    "PATH (apt-get install postgresql)")
    account = _server_account()
    # /tmp: reachable by the server account, and short enough for the socket path (107 bytes).
    root = Path(tempfile.mkdtemp(prefix="kfp-bot-pg-", dir="/tmp" if Path("/tmp").is_dir() else None))
    if account is not None:
        entry = pwd.getpwnam(account)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    server = PostgresServer(bin_dir, root, account)
    try:
        server.start()
        server.execute(f'CREATE DATABASE "{TEST_DATABASE}"')
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database: a SQLite file in a folder that does not exist yet, or PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'kfp-bot.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    schema = server.new_schema()
    yield server.url(TEST_DATABASE, schema)
    server.execute(f'DROP SCHEMA "{schema}" CASCADE', TEST_DATABASE)


@pytest.fixture
def open_store(store_url: str, clock: ManualClock) -> Iterator[Callable[[], SqlStore]]:
    """Opens stores on `store_url` (as a restarted or second process would); closes them at the end."""
    opened: list[SqlStore] = []

    def _open() -> SqlStore:
        store = SqlStore(store_url, clock=clock)
        opened.append(store)
        return store

    yield _open
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: Callable[[], SqlStore]) -> SqlStore:
    """A store on an empty database, with the manual clock."""
    return open_store()


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    """The fake GitHub seeded with octo/monorepo and its PR #7 (tests/support/github_clients.py)."""
    with FakeGitHub() as fake:
        seed(fake)
        yield fake
