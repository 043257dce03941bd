"""Ingestion runs as records that outlive their process: a run is recorded as `running` before it loads
anything, and one whose process died (`kill -9`, a lost machine) is later shown as `interrupted`.

While it loads, a run holds a lock of its own (an advisory lock on PostgreSQL, a file lock beside a SQLite
database); the server or the operating system releases it when the process dies. The `running` row is
committed only once that lock is held, so a `running` row whose lock can be taken belongs to a process that
is gone. Whoever sees one (the next run, `salescast data summary` or `data runs`) marks it `interrupted`.
The load itself is a separate transaction, so an interrupted run loaded nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select, update

from salescast.data.database import sqlite_file
from salescast.data.locks import FileJobLock, JobLock, LockBusyError, PostgresJobLock
from salescast.data.schema import IngestionRun

log = logging.getLogger(__name__)

INTERRUPTED_MESSAGE = (
    "the loading process ended without recording an outcome (killed, or it lost the database); nothing was loaded"
)


def run_locks(engine: Engine) -> JobLock:
    """The locks that tell a live run from a dead one, for the database `engine` writes to."""
    if engine.dialect.name == "postgresql":
        return PostgresJobLock(engine.url.render_as_string(hide_password=False))
    database = sqlite_file(engine.url)
    # Beside the database, so that every process that writes to it finds the same locks.
    folder = Path(database).resolve().parent if database else Path(tempfile.gettempdir())
    return FileJobLock(folder / "locks" / "ingestion-runs")


def _lock_name(engine: Engine, run_id: int) -> str:
    # Run ids restart in every database: the database's identity keeps two databases' runs apart. (PostgreSQL's
    # advisory locks are per database anyway; SQLite databases in one folder share their lock folder.)
    database = sqlite_file(engine.url)
    identity = str(Path(database).resolve()) if database else engine.url.render_as_string(hide_password=True)
    return f"run-{hashlib.sha256(identity.encode()).hexdigest()[:12]}-{run_id}"


@contextlib.contextmanager
def running_run(engine: Engine, locks: JobLock, **values: Any) -> Iterator[int]:
    """Record a `running` ingestion run with `values` (source, preset, file_sha256) in a transaction of its
    own and hold its lock until the block ends; yields the run's id. The block records the outcome."""
    with contextlib.ExitStack() as held:
        with engine.begin() as conn:
            run_id: int = conn.execute(
                insert(IngestionRun).values(status="running", **values).returning(IngestionRun.id)
            ).scalar_one()
            held.callback(_discard, locks, _lock_name(engine, run_id))  # on exit, once the lock is released
            # Taken before the row commits: no one can see the row without its lock held.
            held.enter_context(locks.acquire(_lock_name(engine, run_id)))
        yield run_id


def mark_interrupted(engine: Engine, locks: JobLock | None = None) -> list[int]:
    """Mark every `running` run whose process is gone as `interrupted`; returns their ids."""

    with engine.connect() as conn:
        candidates = conn.scalars(select(IngestionRun.id).where(IngestionRun.status == "running")).all()
    if not candidates:
        return []
    locks = locks or run_locks(engine)
    marked = []
    for run_id in candidates:
        try:
            with locks.acquire(_lock_name(engine, run_id)), engine.begin() as conn:
                # Only if still running: the run may have finished between the query above and the lock.
                changed = conn.execute(
                    update(IngestionRun)
                    .where(IngestionRun.id == run_id, IngestionRun.status == "running")
                    .values(status="interrupted", message=INTERRUPTED_MESSAGE)
                ).rowcount
        except LockBusyError:
            continue  # its process is alive and loading
        _discard(locks, _lock_name(engine, run_id))
        if changed:
            log.warning("ingest.run.interrupted run=%d", run_id)
            marked.append(run_id)
    return marked


def _discard(locks: JobLock, name: str) -> None:
    discard = getattr(locks, "discard", None)  # lock files are left behind otherwise, one per run
    if discard is not None:
        discard(name)
