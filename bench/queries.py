"""Uncached top-products latency: the per-request aggregation (before) against the stored rankings (after).

    PYTHONPATH=. .venv/bin/python bench/queries.py                 # SQLite and PostgreSQL, 50 calls each
    PYTHONPATH=. .venv/bin/python bench/queries.py --databases sqlite --calls 20

The store: 2,000 products (1,000 in Grocery, 200 of those in its sub-category Snacks, 1,000 in
Household), 5 stores, a year of daily sales (10,000 series, about 3.6 M rows, 5 % unpriced) and one
version with 91 daily forecasts per series (910,000 rows, 2 % of products cold starts). Its forecasts
are written the way `store_forecasts` writes them (`insert_frame`), then its rankings, each timed; the
way it wrote them before (ORM executemany) is timed in the same run and rolled back. Every call asks the
month, week or quarter of Grocery (1,000 products) summed over all stores, limit 10, with no cache in
front; both answers are checked to agree before timing. PostgreSQL is the server on 127.0.0.1:5432.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sqlalchemy import Engine, Subquery, func, insert, select, true
from sqlalchemy.orm import Session

from bench.common import POSTGRES_ADMIN_URL, fresh_database_url
from salescast.data.bulk import insert_frame
from salescast.data.database import make_engine, migrate
from salescast.data.schema import Category, ModelVersion, Product, SalesFact, Store, StoredForecast
from salescast.serving import queries
from salescast.serving.rankings import PERIOD_DAYS, store_rankings

BENCH_DB = "salescast_bench_queries"
DATA_END = dt.date(2024, 3, 31)
PRODUCTS, STORES, SALES_DAYS, FORECAST_DAYS = 2000, 5, 365, 91


# -- the store ------------------------------------------------------------------------------------------


def build_store(engine: Engine) -> tuple[int, dict[str, float]]:
    """Catalogue, sales and one version's forecasts and rankings; the version id and the store timings."""
    rng = np.random.default_rng(11)
    with engine.begin() as conn:
        grocery = conn.execute(insert(Category).values(name="Grocery").returning(Category.id)).scalar_one()
        snacks = conn.execute(
            insert(Category).values(name="Snacks", parent_id=grocery).returning(Category.id)
        ).scalar_one()
        household = conn.execute(insert(Category).values(name="Household").returning(Category.id)).scalar_one()
        category_of = [snacks if i < 200 else grocery if i < 1000 else household for i in range(PRODUCTS)]
        conn.execute(
            insert(Product),
            [{"sku": f"P{i:05d}", "name": f"Product {i}", "category_id": category_of[i]} for i in range(PRODUCTS)],
        )
        conn.execute(insert(Store), [{"code": f"S{i + 1}", "name": f"Store {i + 1}"} for i in range(STORES)])
        product_ids = list(conn.scalars(select(Product.id).order_by(Product.sku)))
        store_ids = list(conn.scalars(select(Store.id).order_by(Store.code)))
    with Session(engine, expire_on_commit=False) as session, session.begin():
        version = ModelVersion(
            name="demand",
            version=1,
            status="registered",
            families=["snaive"],
            weights={"snaive": 1.0},
            params={},
            features=[],
            freq="D",
            horizon=FORECAST_DAYS,
            data_fingerprint="0" * 64,
            data_start=DATA_END - dt.timedelta(days=SALES_DAYS - 1),
            data_end=DATA_END,
            series=PRODUCTS * STORES,
            package_version="bench",
            git_commit=None,
            metrics={},
        )
        session.add(version)
    version_id = version.id

    series = pd.MultiIndex.from_product([product_ids, store_ids], names=["product_id", "store_id"]).to_frame(
        index=False
    )
    rate = rng.gamma(1.5, 3.0, len(series))
    base_price = rng.uniform(1.0, 50.0, PRODUCTS)[np.repeat(np.arange(PRODUCTS), STORES)]
    sales = series.loc[series.index.repeat(SALES_DAYS)].reset_index(drop=True)
    sales["date"] = np.tile(pd.date_range(end=pd.Timestamp(DATA_END), periods=SALES_DAYS).date, len(series))
    sales["units"] = rng.poisson(np.repeat(rate, SALES_DAYS)).astype(float)
    price = np.repeat(base_price, SALES_DAYS) * rng.uniform(0.9, 1.1, len(sales)).round(2)
    sales["unit_price"] = np.where(rng.random(len(sales)) < 0.05, np.nan, price)
    sales["revenue"] = sales["units"] * sales["unit_price"]
    sales["on_promotion"] = False
    started = time.perf_counter()
    _bulk_load(engine, sales)
    print(f"  {len(sales):,} sales rows loaded in {time.perf_counter() - started:.1f} s", file=sys.stderr)

    cold = set(rng.choice(product_ids, PRODUCTS // 50, replace=False).tolist())
    forecasts = series.loc[series.index.repeat(FORECAST_DAYS)].reset_index(drop=True)
    start = DATA_END + dt.timedelta(days=1)
    forecasts["date"] = np.tile(pd.date_range(start, periods=FORECAST_DAYS).date, len(series))
    p50 = np.repeat(rate, FORECAST_DAYS) * (1 + 0.2 * np.sin(np.arange(len(forecasts)) / 7))
    rows = pd.DataFrame(
        {
            "version_id": version_id,
            "product_id": forecasts["product_id"],
            "store_id": forecasts["store_id"],
            "date": forecasts["date"],
            "p10": np.maximum(p50 * 0.6 - 0.5, 0.0),
            "p50": p50,
            "p90": p50 * 1.5 + 1.0,
            "method": np.where(forecasts["product_id"].isin(cold), "cold_start", "model"),
        }
    )
    timings: dict[str, float] = {}
    # The baseline, in the same run: the rows as store_forecasts wrote them before insert_frame (ORM
    # dictionaries, executemany), in a transaction that is rolled back.
    with engine.connect() as conn, conn.begin() as transaction:
        started = time.perf_counter()
        conn.execute(insert(StoredForecast), [{str(k): v for k, v in r.items()} for r in rows.to_dict("records")])
        timings["forecasts_orm"] = time.perf_counter() - started
        transaction.rollback()
    # As store_forecasts writes them: the rows, then the rankings, in one transaction.
    with engine.begin() as conn:
        started = time.perf_counter()
        insert_frame(conn, StoredForecast, rows)
        timings["forecasts"] = time.perf_counter() - started
        started = time.perf_counter()
        timings["ranking_rows"] = store_rankings(conn, version_id)
        timings["rankings"] = time.perf_counter() - started
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    return version_id, timings


def _bulk_load(engine: Engine, sales: pd.DataFrame) -> None:
    columns = ["product_id", "store_id", "date", "units", "revenue", "unit_price", "on_promotion"]
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if engine.dialect.name == "postgresql":
            text = io.StringIO()
            sales[columns].to_csv(text, index=False, header=False, na_rep="")
            with cursor.copy(f"COPY sales ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)") as copy:
                copy.write(text.getvalue())
        else:
            frame = sales[columns].astype(object).replace({np.nan: None})
            frame["date"] = frame["date"].map(str)
            cursor.executemany(
                f"INSERT INTO sales ({', '.join(columns)}) VALUES (?, ?, ?, ?, ?, ?, ?)", frame.values.tolist()
            )
        raw.commit()
    finally:
        raw.close()


# -- before: the per-request aggregation top_products did until the rankings ----------------------------


def top_products_on_the_fly(
    engine: Engine, version_id: int, time_period: str, category: str | None, store: str | None, limit: int
) -> dict[str, Any]:
    days = PERIOD_DAYS[time_period]
    with engine.connect() as conn:
        start = queries._require_start(conn, version_id)
        end = start + dt.timedelta(days=days)
        categories = queries._category_scope(conn, category) if category is not None else None
        store_id = queries._store_id(conn, store) if store is not None else None
        series = _series(categories, store_id)
        f = StoredForecast
        sums = (
            select(series.c.product_id, *queries.interval_columns())
            .join(f, (f.product_id == series.c.product_id) & (f.store_id == series.c.store_id))
            .where(f.version_id == version_id, f.date >= start, f.date < end)
            .group_by(series.c.product_id)
            .subquery()
        )
        forecasts = conn.execute(
            select(sums, Product.sku, Product.name, Category.name.label("category"))
            .join(Product, Product.id == sums.c.product_id)
            .outerjoin(Category, Category.id == Product.category_id)
        ).all()
        history = _history_units(conn, series, start - dt.timedelta(days=days), start)
        prices = _latest_prices(conn, series, start)
    ranked = []
    for row in forecasts:
        p50 = float(row.p50)
        price = prices.get(row.product_id)
        past = history.get(row.product_id, 0.0)
        ranked.append(
            (
                (-p50, row.sku),
                {
                    "product_id": row.sku,
                    "units": queries.interval_of_sum(p50, row.low_squares, row.high_squares, row.min_p10),
                    "revenue": round(p50 * price, 2) if price is not None else None,
                    "trend_pct": round((p50 - past) / past * 100, 1) if past > 0 else None,
                    "history_units": queries._units(past),
                    "method": "cold_start" if row.cold_start else "model",
                },
            )
        )
    ranked.sort(key=lambda pair: pair[0])
    return {"products": [p for _, p in ranked[:limit]], "total": len(ranked)}


def _series(categories: list[int] | None, store_id: int | None) -> Subquery:
    query = select(Product.id.label("product_id"), Store.id.label("store_id")).join(Store, true())
    if categories is not None:
        query = query.where(Product.category_id.in_(categories))
    if store_id is not None:
        query = query.where(Store.id == store_id)
    return query.subquery("series")


def _history_units(conn: Any, series: Subquery, start: dt.date, end: dt.date) -> dict[int, float]:
    s = SalesFact
    units = (
        select(func.sum(s.units))
        .where(s.product_id == series.c.product_id, s.store_id == series.c.store_id, s.date >= start, s.date < end)
        .scalar_subquery()
    )
    query = select(series.c.product_id, func.sum(units)).group_by(series.c.product_id)
    return {row[0]: float(row[1]) for row in conn.execute(query) if row[1] is not None}


def _latest_prices(conn: Any, series: Subquery, before: dt.date) -> dict[int, float]:
    s = SalesFact
    last_priced = (
        select(func.max(s.date))
        .where(
            s.product_id == series.c.product_id,
            s.store_id == series.c.store_id,
            s.date < before,
            s.unit_price.is_not(None),
        )
        .scalar_subquery()
    )
    pairs = select(series.c.product_id, series.c.store_id, last_priced.label("last")).cte("pairs")
    latest = select(pairs.c.product_id, func.max(pairs.c.last).label("last")).group_by(pairs.c.product_id).cte("latest")
    query = (
        select(pairs.c.product_id, func.avg(s.unit_price))
        .join(latest, (latest.c.product_id == pairs.c.product_id) & (latest.c.last == pairs.c.last))
        .join(s, (s.product_id == pairs.c.product_id) & (s.store_id == pairs.c.store_id) & (s.date == pairs.c.last))
        .group_by(pairs.c.product_id)
    )
    return {row[0]: float(row[1]) for row in conn.execute(query)}


# -- timing ---------------------------------------------------------------------------------------------


def after(engine: Engine, version_id: int, period: str, category: str | None, store: str | None) -> dict[str, Any]:
    return queries.top_products(engine, version_id, period, category, store, 10, "units")  # type: ignore[arg-type]


def check_same(engine: Engine, version_id: int) -> None:
    """Both ways give the same answer, for every period, over all stores and in one store."""
    for period in PERIOD_DAYS:
        for store in (None, "S3"):
            old = top_products_on_the_fly(engine, version_id, period, "Grocery", store, 1000)
            new = after(engine, version_id, period, "Grocery", store)
            new_all = queries.top_products(engine, version_id, period, "Grocery", store, 1000, "units")  # type: ignore[arg-type]
            assert old["total"] == new["total"] == 1000, (old["total"], new["total"])
            keep = ("product_id", "units", "revenue", "trend_pct", "history_units", "method")
            mismatched = [
                (o, n)
                for o, n in zip(old["products"], new_all["products"], strict=True)
                if o != {k: n[k] for k in keep}
            ]
            assert not mismatched, f"{period} {store}: {mismatched[:2]}"


def timed(call: Callable[[], object], calls: int) -> tuple[float, float]:
    for _ in range(3):
        call()
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), float(np.percentile(samples, 99))


def measure(engine: Engine, version_id: int, calls: int) -> list[tuple[str, tuple[float, float], tuple[float, float]]]:
    """(period, before (median, p99), after (median, p99)) in ms for each period."""
    measured = []
    for period in PERIOD_DAYS:
        before_ms = timed(partial(top_products_on_the_fly, engine, version_id, period, "Grocery", None, 10), calls)
        after_ms = timed(partial(after, engine, version_id, period, "Grocery", None), calls)
        measured.append((period, before_ms, after_ms))
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--databases", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    lines = []
    stores = []
    with tempfile.TemporaryDirectory(prefix="salescast-bench-queries-") as tmp:
        for kind in args.databases:
            print(f"building the {kind} store …", file=sys.stderr)
            engine = make_engine(fresh_database_url(kind, Path(tmp), BENCH_DB))
            migrate(engine)
            version_id, timings = build_store(engine)
            stores.append((kind, timings))
            check_same(engine, version_id)
            lines += [(period, kind, b, a) for period, b, a in measure(engine, version_id, args.calls)]
            engine.dispose()
            if kind == "postgresql":
                with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
                    admin.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
    print(f"\ntop-products of Grocery (1,000 of 2,000 products, 5 stores), {args.calls} uncached calls each, ms\n")
    print("| period  | database   | before median | before p99 | after median | after p99 |")
    print("|---------|------------|--------------:|-----------:|-------------:|----------:|")
    for period, kind, (b50, b99), (a50, a99) in lines:
        print(f"| {period:<7} | {kind:<10} | {b50:13.1f} | {b99:10.1f} | {a50:12.1f} | {a99:9.1f} |")
    print("\nstoring one version (10,000 series x 91 days) as store_forecasts does, in one transaction, s\n")
    print(
        "| database   | forecast rows, ORM (before) | forecast rows, insert_frame | ratio | rankings | ranking rows |"
    )
    print(
        "|------------|----------------------------:|----------------------------:|------:|---------:|-------------:|"
    )
    for kind, t in stores:
        print(
            f"| {kind:<10} | {t['forecasts_orm']:27.1f} | {t['forecasts']:27.1f} "
            f"| {t['forecasts_orm'] / t['forecasts']:4.1f}x | {t['rankings']:8.1f} | {int(t['ranking_rows']):12,} |"
        )


if __name__ == "__main__":
    main()
