"""Tables as gzipped JSON lines and back: what `salescast backup` writes for the metadata database.

The tables are read from the database itself (reflected), so a table a later migration adds is backed up
without a change here. Values travel as JSON: dates and times as ISO text, decoded by the target column's
type on the way back, so a dump loads into SQLite or PostgreSQL alike.
"""

from __future__ import annotations

import datetime as dt
import decimal
import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, Table, func, select, text
from sqlalchemy.types import Date, DateTime, Integer

MIGRATIONS_TABLE = "alembic_version"  # the schema's revision travels in the manifest, not as rows
INSERT_BATCH = 5_000


def reflect_tables(engine_or_connection: Engine | Connection) -> list[Table]:
    """The database's tables in dependency order (a table after the tables its foreign keys name)."""
    metadata = MetaData()
    metadata.reflect(engine_or_connection)
    return [table for table in metadata.sorted_tables if table.name != MIGRATIONS_TABLE]


def _encode(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value


def _decoder(column_type: Any) -> Any:
    if isinstance(column_type, DateTime):
        return dt.datetime.fromisoformat
    if isinstance(column_type, Date):
        return dt.date.fromisoformat
    return None


def dump_table(conn: Connection, table: Table, out: Path) -> int:
    """Write every row of `table` (read on `conn`, whose transaction is the snapshot) to `out` as gzipped JSON
    lines, one object per row keyed by column name, in primary-key order; returns the number of rows."""
    rows = 0
    order = list(table.primary_key.columns) or list(table.columns)
    result = conn.execute(select(table).order_by(*order), execution_options={"yield_per": INSERT_BATCH})
    with gzip.open(out, "wt", encoding="utf-8") as fh:
        for row in result:
            fh.write(json.dumps({key: _encode(value) for key, value in row._mapping.items()}, allow_nan=True))
            fh.write("\n")
            rows += 1
    return rows


def read_rows(path: Path, table: Table) -> Iterator[dict[str, Any]]:
    """The rows a dump holds, with dates and times decoded for `table`'s columns."""
    decoders = {column.name: _decoder(column.type) for column in table.columns}
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            for key, value in row.items():
                decode = decoders.get(key)
                if decode is not None and value is not None:
                    row[key] = decode(value)
            yield row


def load_table(conn: Connection, table: Table, rows: Iterator[dict[str, Any]]) -> int:
    """Insert `rows` into `table` in batches on `conn` (the caller's transaction); returns how many."""
    count = 0
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == INSERT_BATCH:
            conn.execute(table.insert(), batch)
            count += len(batch)
            batch = []
    if batch:
        conn.execute(table.insert(), batch)
        count += len(batch)
    return count


def count_rows(conn: Connection, table: Table) -> int:
    return int(conn.scalar(select(func.count()).select_from(table)) or 0)


def reset_sequences(conn: Connection, tables: list[Table]) -> None:
    """After rows were inserted with their ids, move PostgreSQL's id sequences past them, so the next
    insert does not collide. SQLite needs nothing: a new rowid follows the largest one."""
    if conn.dialect.name != "postgresql":
        return
    for table in tables:
        keys = list(table.primary_key.columns)
        if len(keys) != 1 or not isinstance(keys[0].type, Integer):
            continue
        column = keys[0].name
        conn.execute(
            text(
                f'SELECT setval(pg_get_serial_sequence(:table, :column), COALESCE(MAX("{column}"), 1), '
                f'MAX("{column}") IS NOT NULL) FROM "{table.name}" '
                "WHERE pg_get_serial_sequence(:table, :column) IS NOT NULL"  # nosec B608: names from the schema
            ),
            {"table": table.name, "column": column},
        )
