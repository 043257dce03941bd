"""Alembic environment: the engine comes from salescast, never from an ini file."""

from __future__ import annotations

from alembic import context

from salescast.data.schema import Base

engine = context.config.attributes["engine"]
sqlite = engine.dialect.name == "sqlite"

with engine.connect() as connection:
    if sqlite:
        # A batch migration copies a table and drops the original: with foreign keys on, dropping it would
        # delete (ON DELETE CASCADE) or refuse the rows that refer to it. The pragma only takes effect outside
        # a transaction, hence before the migration's.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
    try:
        with connection.begin():
            context.configure(
                connection=connection,
                target_metadata=Base.metadata,
                render_as_batch=sqlite,
                compare_type=True,
            )
            context.run_migrations()
    finally:
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()
