"""A per-load staging table and the set-based SQL that moves it into the sales store.

Validated rows are staged first (COPY on PostgreSQL, executemany on SQLite); categories, stores,
products and sales facts are then upserted by a few statements, all inside the caller's transaction.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import Connection, text

from salescast.data.fields import STAGED_COLUMNS

STAGING = "salescast_staging"

_STAGING_DDL = {
    "postgresql": f"""
        CREATE TEMP TABLE {STAGING} (
            line BIGINT, date DATE, product TEXT, product_name TEXT, category TEXT, subcategory TEXT,
            store TEXT, store_name TEXT, units DOUBLE PRECISION, revenue DOUBLE PRECISION,
            unit_price DOUBLE PRECISION, on_promotion BOOLEAN
        ) ON COMMIT DROP""",
    "sqlite": f"""
        CREATE TEMP TABLE {STAGING} (
            line INTEGER, date TEXT, product TEXT, product_name TEXT, category TEXT, subcategory TEXT,
            store TEXT, store_name TEXT, units REAL, revenue REAL, unit_price REAL, on_promotion INTEGER
        )""",
}


def create_staging(conn: Connection) -> None:
    dialect = conn.dialect.name
    if dialect == "sqlite":
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{STAGING}")
    conn.exec_driver_sql(_STAGING_DDL[dialect])


def drop_staging(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":  # PostgreSQL drops it on commit or rollback
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{STAGING}")


def stage_rows(conn: Connection, rows: pd.DataFrame) -> None:
    if rows.empty:
        return
    frame = rows.loc[:, list(STAGED_COLUMNS)]
    if conn.dialect.name == "postgresql":
        _copy_rows(conn, frame)
    else:
        frame = frame.assign(date=frame["date"].astype(str), on_promotion=frame["on_promotion"].astype(int))
        records = frame.astype(object).where(frame.notna(), None).itertuples(index=False, name=None)
        placeholders = ", ".join("?" * len(STAGED_COLUMNS))
        conn.exec_driver_sql(f"INSERT INTO {STAGING} VALUES ({placeholders})", list(records))


def _copy_rows(conn: Connection, frame: pd.DataFrame) -> None:
    buffer = io.StringIO()
    frame.to_csv(buffer, header=False, index=False, na_rep="\\N")
    raw = conn.connection.driver_connection
    assert raw is not None, "a live connection inside the load's transaction"
    columns = ", ".join(STAGED_COLUMNS)
    with (
        raw.cursor() as cursor,
        cursor.copy(f"COPY {STAGING} ({columns}) FROM STDIN WITH (FORMAT csv, NULL '\\N')") as copy,
    ):
        copy.write(buffer.getvalue())


@dataclass
class Duplicate:
    line: int
    first_line: int
    product: str
    store: str
    date: str


def pop_duplicates(conn: Connection) -> list[Duplicate]:
    """Rows whose (product, store, date) occurs more than once in the file; they are removed from staging,
    since the file does not say which of them is right."""
    found = conn.execute(
        text(f"""
        SELECT s.line, d.first_line, s.product, s.store, s.date
        FROM {STAGING} s
        JOIN (SELECT product, store, date, MIN(line) AS first_line FROM {STAGING}
              GROUP BY product, store, date HAVING COUNT(*) > 1) d
          ON d.product = s.product AND d.store = s.store AND d.date = s.date
        ORDER BY s.line""")
    ).all()
    if found:
        conn.execute(
            text(f"""
            DELETE FROM {STAGING} WHERE EXISTS (
                SELECT 1 FROM {STAGING} o
                WHERE o.product = {STAGING}.product AND o.store = {STAGING}.store
                  AND o.date = {STAGING}.date AND o.line <> {STAGING}.line)""")
        )
    return [Duplicate(int(r[0]), int(r[1]), r[2], r[3], str(r[4])) for r in found]


@dataclass
class UpsertCounts:
    inserted: int
    updated: int
    unchanged: int


def upsert_dimensions(conn: Connection) -> None:
    """Categories (with their sub-categories), stores and products named in staging."""
    conn.execute(
        text(f"""
        INSERT INTO categories (name)
        SELECT DISTINCT category FROM {STAGING} WHERE category IS NOT NULL
        ON CONFLICT (name) DO NOTHING""")
    )
    conn.execute(
        text(f"""
        INSERT INTO categories (name, parent_id)
        SELECT s.subcategory, MAX(c.id) FROM {STAGING} s LEFT JOIN categories c ON c.name = s.category
        WHERE s.subcategory IS NOT NULL GROUP BY s.subcategory
        ON CONFLICT (name) DO NOTHING""")
    )
    conn.execute(
        text(f"""
        INSERT INTO stores (code, name)
        SELECT store, MAX(store_name) FROM {STAGING} WHERE true GROUP BY store
        ON CONFLICT (code) DO UPDATE SET name = COALESCE(excluded.name, stores.name)""")
    )
    conn.execute(
        text(f"""
        INSERT INTO products (sku, name, category_id, launch_date)
        SELECT s.product, MAX(s.product_name), MAX(COALESCE(sub.id, cat.id)), MIN(s.date)
        FROM {STAGING} s
        LEFT JOIN categories cat ON cat.name = s.category
        LEFT JOIN categories sub ON sub.name = s.subcategory
        WHERE true GROUP BY s.product
        ON CONFLICT (sku) DO UPDATE SET
            name = COALESCE(excluded.name, products.name),
            category_id = COALESCE(excluded.category_id, products.category_id),
            launch_date = CASE WHEN products.launch_date IS NULL OR excluded.launch_date < products.launch_date
                               THEN excluded.launch_date ELSE products.launch_date END""")
    )


def upsert_facts(conn: Connection, run_id: int) -> UpsertCounts:
    """Sum staged rows per (product, store, date) and upsert them; rows whose values did not change
    are left alone, so that loading the same file again writes nothing."""
    distinct = "IS DISTINCT FROM" if conn.dialect.name == "postgresql" else "IS NOT"
    changed = " OR ".join(_float_differs(f"sales.{c}", f"excluded.{c}") for c in ("units", "revenue", "unit_price"))
    groups = conn.execute(
        text(f"SELECT COUNT(*) FROM (SELECT 1 FROM {STAGING} GROUP BY product, store, date) g")
    ).scalar_one()
    before = conn.execute(text("SELECT COUNT(*) FROM sales")).scalar_one()
    result = conn.execute(
        text(f"""
        INSERT INTO sales (product_id, store_id, date, units, revenue, unit_price, on_promotion, ingestion_run_id)
        SELECT p.id, st.id, s.date, SUM(s.units), SUM(s.revenue),
               CASE WHEN SUM(s.units) > 0 AND SUM(s.revenue) IS NOT NULL THEN SUM(s.revenue) / SUM(s.units)
                    ELSE AVG(s.unit_price) END,
               MAX(CASE WHEN s.on_promotion THEN 1 ELSE 0 END) = 1,
               :run_id
        FROM {STAGING} s
        JOIN products p ON p.sku = s.product
        JOIN stores st ON st.code = s.store
        WHERE true
        GROUP BY p.id, st.id, s.date
        ON CONFLICT (product_id, store_id, date) DO UPDATE SET
            units = excluded.units, revenue = excluded.revenue, unit_price = excluded.unit_price,
            on_promotion = excluded.on_promotion, ingestion_run_id = excluded.ingestion_run_id
        WHERE {changed} OR sales.on_promotion {distinct} excluded.on_promotion"""),
        {"run_id": run_id},
    )
    after = conn.execute(text("SELECT COUNT(*) FROM sales")).scalar_one()
    inserted = after - before
    written = max(result.rowcount, inserted)
    return UpsertCounts(inserted=inserted, updated=written - inserted, unchanged=groups - written)


def _float_differs(old: str, new: str) -> str:
    # Float sums may differ in the last bits between runs (parallel aggregation): compare with a tolerance.
    return f"(({old} IS NULL) <> ({new} IS NULL) OR ABS({old} - {new}) > 1e-9 * (1 + ABS({old})))"
