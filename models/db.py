"""Engine and session factory; Alembic upgrades the schema."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _create_private_file(path: Path) -> None:
    """Create the SQLite file readable by us alone (its folder too, when new); SQLite gives its
    -wal and -shm files the database file's permissions."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))  # an empty file is an empty database


class Database:
    """One engine and its session factories for a database URL."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        if url.startswith("sqlite"):
            _create_private_file(Path(url.removeprefix("sqlite:///")))
            # isolation_level=None stops pysqlite's own transaction handling, which would commit
            # a SAVEPOINT on release; transactions are begun explicitly in _sqlite_begin.
            self.engine: Engine = create_engine(
                url, connect_args={"timeout": 30, "isolation_level": None}
            )
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", _sqlite_begin)
            writers: Engine = self.engine.execution_options(sqlite_lock_for_write=True)
        else:
            self.engine = create_engine(url, pool_size=pool_size, pool_pre_ping=True)
            writers = self.engine
        # Core writes that read nothing first (the callback's inserts) use this engine directly.
        self.writer_engine = writers
        self._lock_fd: int | None = None
        self._lock_pid: int | None = None
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.writer_sessions = sessionmaker(writers, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def session(self, *, lock_for_write: bool = False) -> Session:
        """A new session. `lock_for_write` (a unit of work that reads, then writes, while others
        write too) makes SQLite take its write lock at BEGIN; PostgreSQL needs no such thing."""
        return self.writer_sessions() if lock_for_write else self.sessions()

    @contextmanager
    def write_transaction(self, connection: Connection) -> Iterator[Connection]:
        """A write transaction on `connection` (from `writer_engine`), committed at the end of the
        block. On SQLite the writers of all processes queue on a lock file first: a waiter wakes
        the moment the lock is free, where SQLite's own busy handler sleeps for milliseconds
        between tries."""
        with self._lock_file() if self.is_sqlite else nullcontext(), connection.begin():
            yield connection

    @contextmanager
    def _lock_file(self) -> Iterator[None]:
        # One descriptor per process: after fork a shared one would share the lock, too.
        if self._lock_fd is None or self._lock_pid != os.getpid():
            path = self.url.removeprefix("sqlite:///") + ".write-lock"
            self._lock_fd, self._lock_pid = (
                os.open(path, os.O_RDWR | os.O_CREAT, 0o600),
                os.getpid(),
            )
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def upgrade(self) -> None:
        """Create or upgrade the schema to the newest migration."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def dispose(self) -> None:
        self.engine.dispose()
        if self._lock_fd is not None and self._lock_pid == os.getpid():
            os.close(self._lock_fd)
        self._lock_fd = None


def _sqlite_begin(connection: Connection) -> None:
    # A deferred transaction that read first cannot upgrade to writing once another writer has
    # committed (SQLITE_BUSY at once, no busy wait), so writers take the lock up front.
    if connection.get_execution_options().get("sqlite_lock_for_write"):
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        connection.exec_driver_sql("BEGIN")


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    # WAL lets the web process read while a worker writes; foreign keys are off by default.
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
