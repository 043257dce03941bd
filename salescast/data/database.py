"""Engine creation and migrations for the sales store; the URL's scheme picks SQLite or PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import URL, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from salescast.errors import ConfigurationError, StorageError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SUPPORTED_BACKENDS = ("sqlite", "postgresql")


def backend_name(url: str) -> str:
    try:
        return make_url(url).get_backend_name()
    except ArgumentError as exc:
        raise ConfigurationError(f"database_url {url!r} is not a valid SQLAlchemy URL") from exc


def sqlite_file(url: URL) -> str | None:
    """The file a SQLite URL names; None for an in-memory SQLite or another backend."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return url.database


def as_utc(moment: dt.datetime) -> dt.datetime:
    """A stored time as an aware UTC time: SQLite hands times back without their zone (they were written
    in UTC), PostgreSQL in the session's zone. Here rather than beside the tables, so that a process that
    only writes (the prediction log's) need not import the ORM's models."""
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def make_engine(url: str, *, create_folder: bool = True, **kwargs: Any) -> Engine:
    """An engine for `url`: `sqlite:///file.db` (its folder created unless `create_folder` is False) or
    `postgresql+psycopg://…`."""
    backend = backend_name(url)
    if backend not in SUPPORTED_BACKENDS:
        raise ConfigurationError(
            f"database_url scheme {backend!r} is not supported; use sqlite:/// or postgresql+psycopg://"
        )
    if backend == "sqlite":
        database = sqlite_file(make_url(url))
        if create_folder and database is not None:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the API read while a load writes; foreign keys are off by default in SQLite.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


# Alembic is imported by the functions that migrate: a process that only writes (the prediction log's
# writer process, a Lambda cold start) is spared its import, a good share of a second.


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision`; safe to run on every start."""
    from alembic import command

    try:
        command.upgrade(alembic_config(engine), revision)
    except OperationalError as exc:
        raise StorageError(f"cannot migrate the database at {_safe_url(engine)}: {exc.orig}") from exc


def schema_is_current(engine: Engine) -> bool:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision() == head


def _safe_url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def read_engine(read_url: str, primary: Engine) -> Engine:
    """The engine read-only queries use: `primary` itself when `read_url` is empty or names the same
    database, else an engine on the replica at `read_url`. A replica is never migrated here (it is
    read-only and follows the primary's schema by replication); this is the one place a read is sent
    away from the primary."""
    if not read_url or make_url(read_url) == primary.url:
        return primary
    return make_engine(read_url, create_folder=False)


def open_database(url: str) -> Engine:
    """An engine on a migrated schema: the embedded default needs no separate set-up step."""
    engine = make_engine(url)
    try:
        if not schema_is_current(engine):
            migrate(engine)
    except OperationalError as exc:
        raise StorageError(f"cannot reach the database at {_safe_url(engine)}: {exc.orig}") from exc
    return engine
