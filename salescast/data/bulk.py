"""Bulk inserts of a data frame (or Arrow table) into one table, inside the caller's transaction.

PostgreSQL gets the rows by COPY (Arrow writes the CSV); SQLite by one prepared INSERT run for every
row, from plain tuples. Both go around the ORM's per-row dictionaries, which cost more than the
database's own work at a few hundred thousand rows (bench/queries.py measures both ways).
"""

from __future__ import annotations

import io

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from sqlalchemy import Connection, Table

from salescast.data.schema import Base


def insert_frame(conn: Connection, model: type[Base], frame: pd.DataFrame) -> int:
    """Insert every row of `frame`, whose columns are named as the mapped class `model`'s table's;
    returns the rows inserted. Missing values (None, NaN, NaT) are stored as NULL; dates as the ORM
    stores them."""
    table: Table = Base.metadata.tables[model.__tablename__]
    if frame.empty:
        return 0
    unknown = [column for column in frame.columns if column not in table.c]
    if unknown:
        raise ValueError(f"{table.name} has no column {', '.join(map(str, unknown))}")
    insert_arrow(conn, table.name, pa.Table.from_pandas(frame, preserve_index=False))
    return len(frame)


def insert_arrow(conn: Connection, table_name: str, rows: pa.Table) -> None:
    """Insert `rows` (an Arrow table whose column names are `table_name`'s) as insert_frame does; for
    tables outside the ORM's models too (a load's staging table)."""
    names = ", ".join(rows.column_names)
    if conn.dialect.name == "postgresql":
        buffer = io.BytesIO()
        pa_csv.write_csv(rows, buffer, write_options=pa_csv.WriteOptions(include_header=False))
        raw = conn.connection.driver_connection
        assert raw is not None, "a live connection inside the caller's transaction"
        # In CSV COPY an unquoted empty field is NULL and a quoted one an empty string, as Arrow writes them.
        with raw.cursor() as cursor, cursor.copy(f"COPY {table_name} ({names}) FROM STDIN WITH (FORMAT csv)") as copy:
            copy.write(buffer.getbuffer())
        return
    # SQLite keeps dates as ISO text (as SQLAlchemy's Date type writes them) and booleans as 0/1.
    columns = [pc.cast(column, pa.string()) if pa.types.is_date(column.type) else column for column in rows.columns]
    placeholders = ", ".join("?" * len(columns))
    values = list(zip(*(column.to_pylist() for column in columns), strict=True))
    conn.exec_driver_sql(f"INSERT INTO {table_name} ({names}) VALUES ({placeholders})", values)  # nosec B608: table and column names are constants of this module, values are bound parameters  # nosec B608: constant names only
