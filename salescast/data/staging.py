"""A per-load staging table and the set-based SQL that moves it into the sales store.

Validated rows are staged first (salescast.data.bulk: COPY on PostgreSQL, executemany on SQLite);
categories, stores, products and sales facts are then upserted by a few statements, all inside the
caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, text

from salescast.data.bulk import insert_arrow
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
    else:
        # Room for the hash aggregates of a large load, for this transaction only; JIT does not pay off here.
        conn.exec_driver_sql("SET LOCAL work_mem = '256MB'")
        conn.exec_driver_sql("SET LOCAL jit = off")
    conn.exec_driver_sql(_STAGING_DDL[dialect])


def drop_staging(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":  # PostgreSQL drops it on commit or rollback
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{STAGING}")


def _arrow_rows(rows: pd.DataFrame) -> pa.Table:
    table = pa.Table.from_pandas(rows.loc[:, list(STAGED_COLUMNS)], preserve_index=False)
    return table.set_column(
        STAGED_COLUMNS.index("date"), "date", pc.cast(table.column("date"), pa.timestamp("s")).cast(pa.date32())
    )


def stage_rows(conn: Connection, rows: pd.DataFrame) -> None:
    if rows.empty:
        return
    insert_arrow(conn, STAGING, _arrow_rows(rows))


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
        ORDER BY s.line""")  # nosec B608: the only names formatted in are this module's constants; values are bound
    ).all()
    if found:
        conn.execute(
            text(f"""
            DELETE FROM {STAGING} WHERE EXISTS (
                SELECT 1 FROM {STAGING} o
                WHERE o.product = {STAGING}.product AND o.store = {STAGING}.store
                  AND o.date = {STAGING}.date AND o.line <> {STAGING}.line)""")  # nosec B608: the only names formatted in are this module's constants; values are bound
        )
    return [Duplicate(int(r[0]), int(r[1]), r[2], r[3], str(r[4])) for r in found]


@dataclass
class UpsertCounts:
    inserted: int
    updated: int
    unchanged: int


@dataclass
class Dimensions:
    """Categories, stores and products named by a load, gathered chunk by chunk (they are few next to
    the sales rows), so that upserting them needs no pass over the staging table."""

    categories: set[str] = field(default_factory=set)
    subcategories: dict[str, str | None] = field(default_factory=dict)  # name -> parent
    stores: dict[str, str | None] = field(default_factory=dict)  # code -> name
    _product_parts: list[pd.DataFrame] = field(default_factory=list)

    def add(self, rows: pd.DataFrame) -> None:
        if rows.empty:
            return
        self.categories.update(rows["category"].dropna().unique())
        subcategories = rows.dropna(subset=["subcategory"]).drop_duplicates("subcategory")
        for name, parent in zip(subcategories["subcategory"], subcategories["category"], strict=True):
            self.subcategories.setdefault(name, None if pd.isna(parent) else parent)
        names = rows[["store", "store_name"]].astype(object).groupby("store", sort=False)["store_name"].last()
        for code, name in names.items():
            if self.stores.get(str(code)) is None:
                self.stores[str(code)] = None if pd.isna(name) else name
        self._product_parts.append(_product_rows(rows.set_index("product")))
        if len(self._product_parts) > 32:  # keep memory bounded by the number of products, not of chunks
            self._product_parts = [self.products]

    @property
    def products(self) -> pd.DataFrame:
        """One row per product: name, category, subcategory and first sale date."""
        if not self._product_parts:
            return pd.DataFrame(columns=["product_name", "category", "subcategory", "date"])
        return _product_rows(pd.concat(self._product_parts))


def _product_rows(rows: pd.DataFrame) -> pd.DataFrame:
    # The last non-null name and category seen in the file win; object dtype keeps groupby in Cython.
    grouped = rows[["product_name", "category", "subcategory"]].astype(object).groupby(level=0, sort=False)
    out = grouped.last()
    out["date"] = rows["date"].groupby(level=0, sort=False).min()
    return out


def upsert_dimensions(conn: Connection, dims: Dimensions) -> None:
    """Categories (with their sub-categories), stores and products named by the load."""
    if dims.categories:
        conn.execute(
            text("INSERT INTO categories (name) VALUES (:name) ON CONFLICT (name) DO NOTHING"),
            [{"name": name} for name in sorted(dims.categories)],
        )
    if dims.subcategories:
        conn.execute(
            text("""
            INSERT INTO categories (name, parent_id)
            SELECT :name, (SELECT id FROM categories WHERE name = :parent) WHERE true
            ON CONFLICT (name) DO NOTHING"""),
            [{"name": name, "parent": parent} for name, parent in sorted(dims.subcategories.items())],
        )
    if dims.stores:
        conn.execute(
            text("""
            INSERT INTO stores (code, name) VALUES (:code, :name)
            ON CONFLICT (code) DO UPDATE SET name = COALESCE(excluded.name, stores.name)"""),
            [{"code": code, "name": name} for code, name in sorted(dims.stores.items())],
        )
    products = dims.products
    if not products.empty:
        conn.execute(
            text("""
            INSERT INTO products (sku, name, category_id, launch_date)
            SELECT :sku, :name, (SELECT id FROM categories WHERE name = COALESCE(:subcategory, :category)), :launch
            WHERE true
            ON CONFLICT (sku) DO UPDATE SET
                name = COALESCE(excluded.name, products.name),
                category_id = COALESCE(excluded.category_id, products.category_id),
                launch_date = CASE WHEN products.launch_date IS NULL OR excluded.launch_date < products.launch_date
                                   THEN excluded.launch_date ELSE products.launch_date END"""),
            [
                {
                    "sku": sku,
                    "name": _none(row.product_name),
                    "category": _none(row.category),
                    "subcategory": _none(row.subcategory),
                    "launch": pd.Timestamp(row.date).date(),
                }
                for sku, row in products.iterrows()
            ],
        )


def _none(value: Any) -> Any:
    return None if pd.isna(value) else value


def upsert_facts(conn: Connection, run_id: int, aggregate: bool) -> UpsertCounts:
    """Upsert the staged rows (summed per product, store and date when `aggregate`); rows whose values
    did not change are left alone, so that loading the same file again writes nothing."""
    distinct = "IS DISTINCT FROM" if conn.dialect.name == "postgresql" else "IS NOT"
    changed = " OR ".join(_float_differs(f"sales.{c}", f"excluded.{c}") for c in ("units", "revenue", "unit_price"))
    if aggregate:
        values = """SUM(s.units), SUM(s.revenue),
               CASE WHEN SUM(s.units) > 0 AND SUM(s.revenue) IS NOT NULL THEN SUM(s.revenue) / SUM(s.units)
                    ELSE AVG(s.unit_price) END,
               MAX(CASE WHEN s.on_promotion THEN 1 ELSE 0 END) = 1"""
        grouping = "GROUP BY p.id, st.id, s.date"
        groups = f"SELECT COUNT(*) FROM (SELECT 1 FROM {STAGING} GROUP BY product, store, date) g"  # nosec B608: constant names only
    else:  # keys are unique once duplicates are popped: no aggregation pass needed
        values = """s.units, s.revenue,
               COALESCE(s.unit_price, CASE WHEN s.units > 0 THEN s.revenue / s.units END), s.on_promotion"""
        grouping = ""
        groups = f"SELECT COUNT(*) FROM {STAGING}"  # nosec B608: constant names only
    expected = conn.execute(text(groups)).scalar_one()
    before = conn.execute(text("SELECT COUNT(*) FROM sales")).scalar_one()
    result = conn.execute(
        text(f"""
        INSERT INTO sales (product_id, store_id, date, units, revenue, unit_price, on_promotion, ingestion_run_id)
        SELECT p.id, st.id, s.date, {values}, :run_id
        FROM {STAGING} s
        JOIN products p ON p.sku = s.product
        JOIN stores st ON st.code = s.store
        WHERE true
        {grouping}
        ON CONFLICT (product_id, store_id, date) DO UPDATE SET
            units = excluded.units, revenue = excluded.revenue, unit_price = excluded.unit_price,
            on_promotion = excluded.on_promotion, ingestion_run_id = excluded.ingestion_run_id
        WHERE {changed} OR sales.on_promotion {distinct} excluded.on_promotion"""),  # nosec B608: the only names formatted in are this module's constants; values are bound
        {"run_id": run_id},
    )
    after = conn.execute(text("SELECT COUNT(*) FROM sales")).scalar_one()
    inserted = after - before
    written = max(result.rowcount, inserted)
    return UpsertCounts(inserted=inserted, updated=written - inserted, unchanged=expected - written)


def _float_differs(old: str, new: str) -> str:
    # Float sums may differ in the last bits between runs (parallel aggregation): compare with a tolerance.
    return f"(({old} IS NULL) <> ({new} IS NULL) OR ABS({old} - {new}) > 1e-9 * (1 + ABS({old})))"
