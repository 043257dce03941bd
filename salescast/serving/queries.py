"""The read queries behind the forecast API: ranked products, one product's forecast, the catalogue.

Every function aggregates in the database (one row per product or per date comes back, never one per
stored forecast), or reads what was summed when the forecasts were stored (top_products reads a
version's rankings, salescast.serving.rankings), and returns plain JSON-ready values: str, int, float,
None, lists, dicts and ISO dates.

Periods are counted from the version's forecast start, the day after the last day of its training data
(`model_versions.data_end`): a period of `days` holds the stored forecasts dated in
[start, start + days), whatever the model's frequency, so a month of a weekly model is the 4 weekly
forecasts dated within 30 days and a quarter of a monthly model the 3 dated within 91 days. Its history is
the actual units dated in the same number of days just before the start, [start - days, start).

Intervals of a sum treat its terms (days, stores) as independent: the sum's p50 is the sum of the p50s,
and its p10 and p90 lie sqrt(sum of squared distances p50 - p10, resp. p90 - p50) below and above it;
p10 is clipped at 0 when no term's p10 is negative. Adding quantiles instead would give an interval far
too wide for a month of days, since daily errors partly cancel. A period's total (the rankings) adds
the days' mean forecasts instead of their p50s: a sum of many days is close to symmetric, so its
median is close to its mean, while a sum of daily medians of intermittent demand falls short.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy import Connection, Engine, Row, case, func, literal, select
from sqlalchemy.sql.elements import ColumnElement

from salescast.data.schema import ALL_STORES, Category, ForecastRanking, Product, SalesFact, Store, StoredForecast
from salescast.errors import DataValidationError, NotFoundError
from salescast.serving.rankings import PERIOD_DAYS as PERIOD_DAYS  # the periods, defined where they are summed
from salescast.serving.rankings import ensure_rankings, first_product, forecast_start_in, has_rankings, mean_units

TimePeriod = Literal["week", "month", "quarter"]
RankBy = Literal["units", "revenue"]

MAX_LIMIT = 1000
MAX_PAGE_SIZE = 500
MAX_HORIZON_DAYS = 3660
KNOWN_NAMES_SHOWN = 20  # names listed in a "not found" message

Json = dict[str, Any]


# -- version anchors ------------------------------------------------------------------------------------


def forecast_start(engine: Engine, version_id: int) -> dt.date | None:
    """The first forecast day of a version: the day after its training data ends; None when the version
    has no stored forecasts."""
    with engine.connect() as conn:
        return forecast_start_in(conn, version_id)


def stored_days(engine: Engine, version_id: int) -> int:
    """Periods stored per series (every series of a version is stored for the same horizon); 0 if none."""
    with engine.connect() as conn:
        return _stored_periods(conn, version_id)


def _stored_periods(conn: Connection, version_id: int) -> int:
    product = first_product(conn, version_id)
    if product is None:
        return 0
    # One series of that product: its dates are the version's stored periods.
    store = conn.scalar(
        select(func.min(StoredForecast.store_id)).where(
            StoredForecast.version_id == version_id, StoredForecast.product_id == product
        )
    )
    count = conn.scalar(
        select(func.count()).where(
            StoredForecast.version_id == version_id,
            StoredForecast.product_id == product,
            StoredForecast.store_id == store,
        )
    )
    return int(count or 0)


def _require_start(conn: Connection, version_id: int) -> dt.date:
    start = forecast_start_in(conn, version_id)
    if start is None:
        raise NotFoundError(f"model version id {version_id} has no stored forecasts")
    return start


# -- name resolution ------------------------------------------------------------------------------------


def _unknown(kind: str, plural: str, name: str, known: Sequence[str]) -> NotFoundError:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    if not known:
        return NotFoundError(f"unknown {kind} {name!r}{hint}; there are no {plural} yet")
    shown = ", ".join(sorted(known)[:KNOWN_NAMES_SHOWN])
    more = f", … ({len(known)} in all)" if len(known) > KNOWN_NAMES_SHOWN else ""
    return NotFoundError(f"unknown {kind} {name!r}{hint}; known {plural}: {shown}{more}")


def _category_scope(conn: Connection, category: str) -> list[int]:
    """The category's id and those of all categories below it (sub-categories, their children, …)."""
    root = conn.scalar(select(Category.id).where(Category.name == category))
    if root is None:
        raise _unknown("category", "categories", category, list(conn.scalars(select(Category.name))))
    scope = select(Category.id).where(Category.id == root).cte("scope", recursive=True)
    scope = scope.union_all(select(Category.id).join(scope, Category.parent_id == scope.c.id))
    return list(conn.scalars(select(scope.c.id)))


def _store_id(conn: Connection, store: str) -> int:
    found = conn.scalar(select(Store.id).where(Store.code == store))
    if found is None:
        raise _unknown("store", "stores", store, list(conn.scalars(select(Store.code))))
    return int(found)


def _product_id(conn: Connection, product: str) -> int:
    found = conn.scalar(select(Product.id).where(Product.sku == product))
    if found is None:
        close = difflib.get_close_matches(product, list(conn.scalars(select(Product.sku))), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise NotFoundError(f"unknown product {product!r}{hint}")
    return int(found)


# -- intervals ------------------------------------------------------------------------------------------


def interval_of_sum(p50: float, low_squares: float, high_squares: float, min_p10: float) -> Json:
    """p10/p50/p90 of a sum of independent terms (see the module docstring)."""
    p10 = p50 - math.sqrt(max(low_squares, 0.0))
    if min_p10 >= 0:
        p10 = max(p10, 0.0)
    return {"p10": _units(p10), "p50": _units(p50), "p90": _units(p50 + math.sqrt(max(high_squares, 0.0)))}


def _units(value: float) -> float:
    return round(float(value), 3)


def interval_columns() -> list[ColumnElement[Any]]:
    """Sums of stored forecasts from which `interval_of_sum` makes the interval of the sum."""
    f = StoredForecast
    return [
        func.sum(f.p50).label("p50"),
        func.sum(mean_units()).label("mean"),
        func.sum((f.p50 - f.p10) * (f.p50 - f.p10)).label("low_squares"),
        func.sum((f.p90 - f.p50) * (f.p90 - f.p50)).label("high_squares"),
        func.min(f.p10).label("min_p10"),
        func.max(case((f.method == "cold_start", 1), else_=0)).label("cold_start"),
    ]


# -- top products ---------------------------------------------------------------------------------------


def top_products(
    engine: Engine,
    version_id: int,
    time_period: TimePeriod,
    category: str | None,
    store: str | None,
    limit: int,
    rank_by: RankBy,
) -> Json:
    """Products ranked by their forecast over the next week (7 days), month (30) or quarter (91).

    Summed over all stores unless `store` names one; `category` takes the products of that category and
    of every category below it. Each product: its rank, sku, name, category, the interval of its units
    over the period (rule in the module docstring), revenue = p50 units x its latest known unit price
    (that of its latest priced sale before the forecast start, averaged over stores selling it that day,
    in `store` only when given; null without one), `history_units` (actual units in the same number of
    days before the start), `trend_pct` = (p50 - history) / history x 100 (null when history is 0) and
    `method` (cold_start when any of its series is a cold start). Ranked by p50 units or by revenue
    (unpriced products last), ties by sku; `total` counts the products that matched before `limit`.

    Reads the version's rankings (salescast.serving.rankings), one row per product, written when its
    forecasts were stored. A version stored before rankings existed has none: the first ranked query
    computes and stores them once (seconds for tens of thousands of series), later ones read them.
    """
    if time_period not in PERIOD_DAYS:
        raise DataValidationError(f"time_period must be one of {', '.join(PERIOD_DAYS)}, got {time_period!r}")
    if rank_by not in ("units", "revenue"):
        raise DataValidationError(f"rank_by must be units or revenue, got {rank_by!r}")
    if not 1 <= limit <= MAX_LIMIT:
        raise DataValidationError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    days = PERIOD_DAYS[time_period]
    with engine.connect() as conn:
        start = _require_start(conn, version_id)
        categories = _category_scope(conn, category) if category is not None else None
        store_id = _store_id(conn, store) if store is not None else ALL_STORES
        rows = _rankings(conn, version_id, time_period, categories, store_id)
        unranked = not rows and not has_rankings(conn, version_id)
    if unranked:
        ensure_rankings(engine, version_id)
        with engine.connect() as conn:
            rows = _rankings(conn, version_id, time_period, categories, store_id)

    ranked: list[tuple[tuple[Any, ...], Json]] = []
    for row in rows:
        p50 = float(row.p50)
        price = row.latest_price
        revenue = p50 * price if price is not None else None
        past = float(row.history_units)
        key = (revenue is None, -(revenue or 0.0), row.sku) if rank_by == "revenue" else (-p50, row.sku)
        product = {
            "product_id": row.sku,
            "name": row.name,
            "category": row.category,
            "units": interval_of_sum(p50, row.low_squares, row.high_squares, row.min_p10),
            "revenue": round(revenue, 2) if revenue is not None else None,
            "trend_pct": round((p50 - past) / past * 100, 1) if past > 0 else None,
            "history_units": _units(past),
            "method": "cold_start" if row.cold_start else "model",
        }
        ranked.append((key, product))
    ranked.sort(key=lambda pair: pair[0])
    products = [{"rank": rank, **product} for rank, (_, product) in enumerate(ranked[:limit], 1)]
    end = start + dt.timedelta(days=days)
    return {
        "products": products,
        "total": len(ranked),
        "time_period": time_period,
        "period_start": start.isoformat(),
        "period_end": (end - dt.timedelta(days=1)).isoformat(),
        "category": category,
        "store": store,
        "rank_by": rank_by,
    }


def _rankings(
    conn: Connection, version_id: int, time_period: str, categories: list[int] | None, store_id: int
) -> Sequence[Row[*tuple[Any, ...]]]:
    """The version's ranking rows of the period in one store (or ALL_STORES), with each product's names."""
    r = ForecastRanking
    query = (
        select(
            r.p50,
            r.low_squares,
            r.high_squares,
            r.min_p10,
            r.history_units,
            r.latest_price,
            r.cold_start,
            Product.sku,
            Product.name,
            Category.name.label("category"),
        )
        .join(Product, Product.id == r.product_id)
        .outerjoin(Category, Category.id == Product.category_id)
        .where(r.version_id == version_id, r.period == time_period, r.store_id == store_id)
    )
    if categories is not None:
        query = query.where(Product.category_id.in_(categories))
    return conn.execute(query).all()


# -- one product ----------------------------------------------------------------------------------------


def product_forecast(
    engine: Engine, version_id: int, product: str, store: str | None, horizon: int, history_days: int = 56
) -> Json:
    """One product's stored forecast for its first `horizon` periods from the forecast start, summed over
    its stores (interval rule in the module docstring) unless `store` names one, with `history`: its
    actual units per date over the `history_days` days before the start (dates without a sale row are
    left out)."""
    if not 1 <= horizon <= MAX_HORIZON_DAYS:
        raise DataValidationError(f"horizon must be between 1 and {MAX_HORIZON_DAYS}, got {horizon}")
    if not 0 <= history_days <= MAX_HORIZON_DAYS:
        raise DataValidationError(f"history_days must be between 0 and {MAX_HORIZON_DAYS}, got {history_days}")
    with engine.connect() as conn:
        product_id = _product_id(conn, product)
        store_id = _store_id(conn, store) if store is not None else None
        start = _require_start(conn, version_id)
        f = StoredForecast
        where = [f.version_id == version_id, f.product_id == product_id, f.date >= start]
        if store_id is not None:
            where.append(f.store_id == store_id)
        daily = conn.execute(
            select(f.date, *interval_columns()).where(*where).group_by(f.date).order_by(f.date).limit(horizon)
        ).all()
        if not daily:
            where_label = f" in store {store!r}" if store is not None else ""
            raise NotFoundError(f"model version id {version_id} has no forecast for product {product!r}{where_label}")
        if len(daily) < horizon:
            raise DataValidationError(
                f"horizon {horizon} is beyond the stored forecast: {len(daily)} days are stored for {product!r}"
            )
        s = SalesFact
        history_where = [
            s.product_id == product_id,
            s.date >= start - dt.timedelta(days=history_days),
            s.date < start,
        ]
        if store_id is not None:
            history_where.append(s.store_id == store_id)
        history = conn.execute(
            select(s.date, func.sum(s.units)).where(*history_where).group_by(s.date).order_by(s.date)
        ).all()
    return {
        "product_id": product,
        "store": store,
        "horizon": horizon,
        "forecast_start": start.isoformat(),
        "forecast": [
            {
                "date": row.date.isoformat(),
                **interval_of_sum(row.p50, row.low_squares, row.high_squares, row.min_p10),
                "mean": _units(row.mean),
                "method": "cold_start" if row.cold_start else "model",
            }
            for row in daily
        ],
        "history": [{"date": day.isoformat(), "units": _units(units)} for day, units in history],
    }


# -- catalogue ------------------------------------------------------------------------------------------


def categories(engine: Engine) -> list[Json]:
    """Every category by name: its parent (null at the top), its products (those in it or in any
    category below it) and the names of its direct sub-categories."""
    with engine.connect() as conn:
        rows = conn.execute(select(Category.id, Category.name, Category.parent_id)).all()
        direct = dict(
            conn.execute(
                select(Product.category_id, func.count())
                .where(Product.category_id.is_not(None))
                .group_by(Product.category_id)
            ).all()
        )
    name_of = {row.id: row.name for row in rows}
    children: dict[int, list[int]] = {}
    for row in rows:
        if row.parent_id is not None:
            children.setdefault(row.parent_id, []).append(row.id)

    def total(category_id: int, seen: frozenset[int]) -> int:
        if category_id in seen:  # a cycle in bad data must not recurse forever
            return 0
        below = children.get(category_id, [])
        return int(direct.get(category_id, 0)) + sum(total(c, seen | {category_id}) for c in below)

    return [
        {
            "name": row.name,
            "parent": name_of.get(row.parent_id) if row.parent_id is not None else None,
            "products": total(row.id, frozenset()),
            "subcategories": sorted(name_of[c] for c in children.get(row.id, [])),
        }
        for row in sorted(rows, key=lambda r: r.name)
    ]


def stores(engine: Engine) -> list[Json]:
    """Every store's code and name, ordered by code."""
    with engine.connect() as conn:
        rows = conn.execute(select(Store.code, Store.name).order_by(Store.code)).all()
    return [{"code": code, "name": name} for code, name in rows]


def products(engine: Engine, search: str | None, category: str | None, page: int, page_size: int) -> Json:
    """A page of the catalogue ordered by sku: each product's sku, name, category and the codes of the
    stores that sold it. `search` is a case-insensitive substring of the sku or the name, taken
    literally (`%` and `_` match themselves); `category` includes its sub-categories. A page beyond the
    end is empty."""
    if page < 1:
        raise DataValidationError(f"page must be 1 or more, got {page}")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise DataValidationError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}")
    with engine.connect() as conn:
        where: list[ColumnElement[bool]] = []
        if category is not None:
            where.append(Product.category_id.in_(_category_scope(conn, category)))
        if search:
            term = search.lower()
            where.append(
                func.lower(Product.sku).contains(term, autoescape=True)
                | func.lower(func.coalesce(Product.name, literal(""))).contains(term, autoescape=True)
            )
        total = conn.scalar(select(func.count()).select_from(Product).where(*where)) or 0
        page_rows = conn.execute(
            select(Product.id, Product.sku, Product.name, Category.name.label("category"))
            .outerjoin(Category, Category.id == Product.category_id)
            .where(*where)
            .order_by(Product.sku)
            .limit(page_size)
            .offset((page - 1) * page_size)
        ).all()
        stores: dict[int, list[str]] = {}
        if page_rows:
            sold = (
                select(SalesFact.product_id, SalesFact.store_id)
                .where(SalesFact.product_id.in_([row.id for row in page_rows]))
                .distinct()
                .subquery()
            )
            for product_id, code in conn.execute(
                select(sold.c.product_id, Store.code).join(Store, Store.id == sold.c.store_id).order_by(Store.code)
            ):
                stores.setdefault(product_id, []).append(code)
    return {
        "items": [
            {"product_id": row.sku, "name": row.name, "category": row.category, "stores": stores.get(row.id, [])}
            for row in page_rows
        ],
        "page": page,
        "page_size": page_size,
        "total": int(total),
    }
