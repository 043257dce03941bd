"""Job locks: two workers, on one machine or many, never run the same job at once.

`job_lock` is the one place that picks the implementation from the database URL: workers that share a
PostgreSQL database share its advisory locks; workers on the embedded SQLite default share a machine, so
a lock file beside the database does. Both are released by the server or the operating system when the
holder dies, so a crashed worker never leaves a job locked.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from filelock import FileLock, Timeout
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from salescast.config import Settings
from salescast.errors import ConfigurationError, SalescastError

log = logging.getLogger(__name__)

TRAINING_LOCK = "training"
INGEST_LOCK = "ingest"
_LOCK_NAME = re.compile(r"[a-z][a-z0-9_-]{0,62}")


class LockBusyError(SalescastError):
    """Another worker holds the lock; nothing was done."""


class JobLock(Protocol):
    def acquire(self, name: str, timeout: float = 0.0) -> AbstractContextManager[None]:
        """Hold the lock `name` for the `with` block and release it on exit, error or not.

        Raises LockBusyError when another holder keeps it for more than `timeout` seconds (0: no wait).
        """
        ...


def _checked(name: str, timeout: float) -> str:
    # The name becomes a file name; a fixed alphabet keeps it one safe path component.
    if not _LOCK_NAME.fullmatch(name):
        raise ConfigurationError(f"invalid lock name {name!r}: use lowercase letters, digits, '-' and '_'")
    if timeout < 0:
        raise ConfigurationError(f"a lock timeout must be >= 0 seconds, got {timeout}")
    return name


def advisory_key(name: str) -> int:
    """The signed 64-bit key of `name` for pg_advisory_lock. Derived from sha256, not hash(): Python salts
    hash() per process, and every worker, of every release, must compute the same key."""
    digest = hashlib.sha256(f"salescast:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PostgresJobLock:
    """A session-level advisory lock on a connection of its own, held for the duration of the block."""

    def __init__(self, url: str, poll_seconds: float = 0.2) -> None:
        # NullPool: closing the connection ends the session, which releases the lock even when the unlock
        # statement fails; a pooled connection could go back to the pool still holding it.
        self._engine = create_engine(url, poolclass=NullPool)
        self.poll_seconds = poll_seconds

    @contextlib.contextmanager
    def acquire(self, name: str, timeout: float = 0.0) -> Iterator[None]:
        key = advisory_key(_checked(name, timeout))
        with self._engine.connect() as conn:
            # Autocommit: a session left idle in a transaction for hours of training would pin a snapshot
            # and could be killed by idle_in_transaction_session_timeout, dropping the lock with it.
            conn.execution_options(isolation_level="AUTOCOMMIT")
            if not self._try_lock(conn, key, timeout):
                raise LockBusyError(f"another worker holds the {name!r} lock")
            try:
                yield
            finally:
                try:
                    conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                except SQLAlchemyError as exc:
                    log.warning("worker.lock.unlock_failed name=%s error=%s", name, exc)

    def _try_lock(self, conn: Connection, key: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar_one():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(self.poll_seconds, remaining))


class FileJobLock:
    """An OS file lock (flock) on `folder/NAME.lock`; the kernel releases it when the holder exits."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @contextlib.contextmanager
    def acquire(self, name: str, timeout: float = 0.0) -> Iterator[None]:
        path = self.folder / f"{_checked(name, timeout)}.lock"
        self.folder.mkdir(parents=True, exist_ok=True)
        # A fresh, non-thread-local lock object per acquisition: filelock's objects are re-entrant, so a
        # shared one would let a second caller in this process through instead of finding it busy.
        lock = FileLock(path, timeout=timeout, thread_local=False)
        try:
            lock.acquire()
        except Timeout as exc:
            raise LockBusyError(f"another worker holds the {name!r} lock ({path})") from exc
        try:
            yield
        finally:
            lock.release()

    def discard(self, name: str) -> None:
        """Delete the file of a lock that will not be taken again (a finished ingestion run's), so that such
        locks do not pile up; a lock still held elsewhere stays held."""
        (self.folder / f"{_checked(name, 0.0)}.lock").unlink(missing_ok=True)


def job_lock(settings: Settings) -> JobLock:
    """The lock implementation for the configured database: advisory locks on PostgreSQL, lock files under
    `home/locks` on SQLite (workers that share a SQLite database share a machine and a home)."""
    url = settings.resolved_database_url
    try:
        backend = make_url(url).get_backend_name()
    except ArgumentError as exc:
        raise ConfigurationError(f"database_url {url!r} is not a valid SQLAlchemy URL") from exc
    if backend == "postgresql":
        return PostgresJobLock(url)
    if backend == "sqlite":
        return FileJobLock(settings.home / "locks")
    raise ConfigurationError(f"no job lock for database scheme {backend!r}; use sqlite:/// or postgresql+psycopg://")
