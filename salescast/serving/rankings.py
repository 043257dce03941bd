"""Per-version rankings: each product's forecast over each serving period, summed once, ready to rank.

`top_products` (salescast.serving.queries) would otherwise sum a version's stored days per request: a
month of a 1,000-product category over 5 stores is 150,000 forecast rows plus the sales history before
the start. Instead `store_rankings` writes, per version, period (week, month, quarter) and product, one
row per store and one for all stores (store_id ALL_STORES) holding the sums the interval rule needs, the
history units and the latest price; a ranked query then reads one small row per product.

The rules are those of the queries module: a period of `days` holds the forecasts dated in
[start, start + days), its history the units dated in [start - days, start); the latest price is that of
the latest priced sale before the start, averaged over the stores that sold at it that day. Only
products and stores that exist count, as in the catalogue. Sales and stores are read when the rankings
are written: a later correction of the history before a version's start shows in them only when they are
rewritten (store_rankings again).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, case, delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from salescast.data.schema import (
    ALL_STORES,
    ForecastRanking,
    ModelVersion,
    Product,
    SalesFact,
    Store,
    StoredForecast,
)

PERIOD_DAYS: dict[str, int] = {"week": 7, "month": 30, "quarter": 91}


def mean_units() -> ColumnElement[float]:
    """A stored forecast's mean, what totals add up; its p50 for rows stored before means existed."""
    return func.coalesce(StoredForecast.mean, StoredForecast.p50)


# Periods nest (a week lies within the month, the month within the quarter): the facts are summed once
# per slice between consecutive period ends, and a period is the sum of its slices.
_PERIODS = sorted(PERIOD_DAYS.items(), key=lambda item: item[1])


# -- version anchors ------------------------------------------------------------------------------------


def first_product(conn: Connection, version_id: int) -> int | None:
    """The smallest product id among a version's stored forecasts; None when it has none."""
    # The primary key (version_id, product_id, ...) answers this with one index probe.
    first: int | None = conn.scalar(
        select(func.min(StoredForecast.product_id)).where(StoredForecast.version_id == version_id)
    )
    return first


def forecast_start_in(conn: Connection, version_id: int) -> dt.date | None:
    """The first forecast day of a version: the day after its training data ends (the first stored date
    when it has no lineage); None when the version has no stored forecasts."""
    product = first_product(conn, version_id)
    if product is None:
        return None
    data_end: dt.date | None = conn.scalar(select(ModelVersion.data_end).where(ModelVersion.id == version_id))
    if data_end is not None:
        return data_end + dt.timedelta(days=1)
    # A version without lineage: MIN(date) over all its rows would scan them, one product's rows do not.
    first: dt.date | None = conn.scalar(
        select(func.min(StoredForecast.date)).where(
            StoredForecast.version_id == version_id, StoredForecast.product_id == product
        )
    )
    return first


# -- writing --------------------------------------------------------------------------------------------


@dataclass
class _Sums:
    """The forecast terms of one product (in one store, or all) over one period."""

    p50: float = 0.0
    low_squares: float = 0.0
    high_squares: float = 0.0
    min_p10: float = float("inf")
    cold_start: bool = False

    def merge(self, other: _Sums) -> None:
        self.add(other.p50, other.low_squares, other.high_squares, other.min_p10, other.cold_start)

    def add(self, p50: float, low_squares: float, high_squares: float, min_p10: float, cold_start: bool) -> None:
        self.p50 += p50
        self.low_squares += low_squares
        self.high_squares += high_squares
        self.min_p10 = min(self.min_p10, min_p10)
        self.cold_start = self.cold_start or cold_start


def has_rankings(conn: Connection, version_id: int) -> bool:
    found = conn.scalar(select(ForecastRanking.version_id).where(ForecastRanking.version_id == version_id).limit(1))
    return found is not None


def store_rankings(conn: Connection, version_id: int) -> int:
    """Replace a version's rankings by those of its stored forecasts (as `conn` sees them, so within the
    transaction that stores them) and of the sales before its start; returns the rows written."""
    conn.execute(delete(ForecastRanking).where(ForecastRanking.version_id == version_id))
    start = forecast_start_in(conn, version_id)
    if start is None:
        return 0
    sums = _forecast_sums(conn, version_id, start)
    history = _history_units(conn, start)
    prices = _latest_prices(conn, start)
    product_history: dict[int, list[float]] = defaultdict(lambda: [0.0] * len(_PERIODS))
    for (product_id, _), units in history.items():
        product_history[product_id] = [a + b for a, b in zip(product_history[product_id], units, strict=True)]
    product_prices: dict[int, list[tuple[dt.date, float]]] = defaultdict(list)
    for (product_id, _), day_and_price in prices.items():
        product_prices[product_id].append(day_and_price)

    rows: list[dict[str, object]] = []
    for index, (period, _) in enumerate(_PERIODS):
        by_product: dict[int, _Sums] = defaultdict(_Sums)
        for (product_id, store_id), terms in sums[index].items():
            by_product[product_id].merge(terms)
            past = history.get((product_id, store_id))
            priced = prices.get((product_id, store_id))
            rows.append(_row(version_id, period, product_id, store_id, terms, past[index] if past else 0.0, priced))
        for product_id, terms in by_product.items():
            past = product_history.get(product_id)
            price = _latest_of(product_prices.get(product_id, []))
            rows.append(_row(version_id, period, product_id, ALL_STORES, terms, past[index] if past else 0.0, price))
    if rows:
        conn.execute(insert(ForecastRanking), rows)
    return len(rows)


def ensure_rankings(engine: Engine, version_id: int) -> int:
    """Store a version's rankings unless it has some (a version stored before rankings existed); the rows
    written, 0 when there were some or another process stored them at the same time. A version none of
    whose forecasts falls within a quarter of its start has no rows to store, and is summed again on
    each call: it has nothing to rank either."""
    try:
        with engine.begin() as conn:
            if has_rankings(conn, version_id):
                return 0
            return store_rankings(conn, version_id)
    except IntegrityError:
        # Two first requests for the same version: the other committed the same rows first.
        return 0


def _row(
    version_id: int,
    period: str,
    product_id: int,
    store_id: int,
    terms: _Sums,
    history_units: float,
    priced: tuple[dt.date, float] | None,
) -> dict[str, object]:
    return {
        "version_id": version_id,
        "period": period,
        "store_id": store_id,
        "product_id": product_id,
        "p50": terms.p50,
        "low_squares": terms.low_squares,
        "high_squares": terms.high_squares,
        "min_p10": terms.min_p10,
        "history_units": history_units,
        "latest_price": priced[1] if priced is not None else None,
        "cold_start": terms.cold_start,
    }


def _latest_of(priced: list[tuple[dt.date, float]]) -> tuple[dt.date, float] | None:
    """The mean price over the stores whose latest priced day is the latest of all."""
    if not priced:
        return None
    last = max(day for day, _ in priced)
    on_last = [price for day, price in priced if day == last]
    return last, sum(on_last) / len(on_last)


def _forecast_sums(conn: Connection, version_id: int, start: dt.date) -> list[dict[tuple[int, int], _Sums]]:
    """Per period (in _PERIODS order): each (product, store) series' sums over the period's days."""
    f = StoredForecast
    ends = [start + dt.timedelta(days=days) for _, days in _PERIODS]
    facts = (
        select(
            f.product_id,
            f.store_id,
            _slice_of(f.date < end for end in ends[:-1]).label("slice"),
            f.p10,
            f.p50,
            f.p90,
            mean_units().label("mean"),
            f.method,
        )
        .where(
            f.version_id == version_id,
            f.date >= start,
            f.date < ends[-1],
            f.product_id.in_(select(Product.id)),
            f.store_id.in_(select(Store.id)),
        )
        .subquery()
    )
    query = select(
        facts.c.product_id,
        facts.c.store_id,
        facts.c.slice,
        # A period's central value adds the days' means (a sum of medians falls short); its spread
        # comes from the days' quantiles around their p50 (rule in salescast.serving.queries).
        func.sum(facts.c.mean),
        func.sum((facts.c.p50 - facts.c.p10) * (facts.c.p50 - facts.c.p10)),
        func.sum((facts.c.p90 - facts.c.p50) * (facts.c.p90 - facts.c.p50)),
        func.min(facts.c.p10),
        func.max(case((facts.c.method == "cold_start", 1), else_=0)),
    ).group_by(facts.c.product_id, facts.c.store_id, facts.c.slice)
    periods: list[dict[tuple[int, int], _Sums]] = [defaultdict(_Sums) for _ in _PERIODS]
    for product_id, store_id, slice_index, p50, low, high, min_p10, cold in conn.execute(query):
        # A slice counts towards its own period and every longer one.
        for sums in periods[slice_index:]:
            sums[(product_id, store_id)].add(float(p50), float(low), float(high), float(min_p10), bool(cold))
    return periods


def _history_units(conn: Connection, start: dt.date) -> dict[tuple[int, int], list[float]]:
    """Per (product, store): the units sold in each period's days before the start (in _PERIODS order)."""
    s = SalesFact
    begins = [start - dt.timedelta(days=days) for _, days in _PERIODS]
    facts = (
        select(s.product_id, s.store_id, _slice_of(s.date >= begin for begin in begins[:-1]).label("slice"), s.units)
        .where(s.date >= begins[-1], s.date < start, s.store_id.in_(select(Store.id)))
        .subquery()
    )
    query = select(facts.c.product_id, facts.c.store_id, facts.c.slice, func.sum(facts.c.units)).group_by(
        facts.c.product_id, facts.c.store_id, facts.c.slice
    )
    history: dict[tuple[int, int], list[float]] = defaultdict(lambda: [0.0] * len(_PERIODS))
    for product_id, store_id, slice_index, units in conn.execute(query):
        series = history[(product_id, store_id)]
        for index in range(slice_index, len(_PERIODS)):
            series[index] += float(units)
    return history


def _latest_prices(conn: Connection, before: dt.date) -> dict[tuple[int, int], tuple[dt.date, float]]:
    """Per (product, store): its latest priced day before `before` and the unit price that day."""
    s = SalesFact
    latest = (
        select(s.product_id, s.store_id, func.max(s.date).label("day"))
        .where(s.date < before, s.unit_price.is_not(None), s.store_id.in_(select(Store.id)))
        .group_by(s.product_id, s.store_id)
        .subquery()
    )
    query = select(latest.c.product_id, latest.c.store_id, latest.c.day, s.unit_price).join(
        s, (s.product_id == latest.c.product_id) & (s.store_id == latest.c.store_id) & (s.date == latest.c.day)
    )
    return {(product_id, store_id): (day, float(price)) for product_id, store_id, day, price in conn.execute(query)}


def _slice_of(bounds: Iterable[ColumnElement[bool]]) -> ColumnElement[int]:
    """0 for a row within the first bound, 1 within the second, …, len(bounds) beyond them all."""
    conditions = list(bounds)
    return case(*((condition, index) for index, condition in enumerate(conditions)), else_=len(conditions))
