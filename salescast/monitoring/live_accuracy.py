"""Live accuracy: the stored forecasts of the versions that served, joined with the actuals as they arrive.

Which versions, for which days (the alias history says): every version the `production` or `challenger`
alias of a model ever pointed at. A version's forecasts start the day after its training data ends (its
origin); it is scored from there until the day before the origin of the first version that took the
same alias after it with a later origin (its successor's forecasts served those days), or, while
nothing replaced it, on every day its stored forecasts cover. Days are told by the sales' dates, not by
the clock: a backfill or a replay of old files scores the same as the daily drop.

Which actuals: a day counts for a store once the store has sales on or after it (its data arrived); a
product without a row that day sold nothing, as training reads a gap.

The metrics, on the stored p50 (what serving answers with) per version, category and horizon day (days
after the training data's end), pooled over the series of the cell:
- MAE = mean |p50 - y|;  WAPE = sum |p50 - y| / sum |y|, in %;  bias = sum (p50 - y) / sum |y|, in %
  (positive = over-forecast);
- MASE = mean over the points of |p50 - y| / scale, the scale being the series' in-sample seasonal naive
  MAE over the version's training window, saved with the version (salescast.monitoring.profiles).
  Points of a series without a saved scale are left out of MASE only.
Rollups over several cells pool the same sums, so they are exact, not averages of averages.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, delete, func, select, text

from salescast.data.bulk import insert_frame
from salescast.data.schema import AliasEvent, LiveAccuracy, ModelVersion, SalesFact
from salescast.monitoring.profiles import NO_CATEGORY

SCORED_ALIASES = ("production", "challenger")
LEVELS = ("version", "category", "horizon")

_FORECASTS_WITH_ACTUALS = """
    SELECT f.product_id, f.store_id, f.date, f.p50, s.units,
           COALESCE(parent.name, c.name) AS category, sc.scale
    FROM forecasts f
    JOIN products p ON p.id = f.product_id
    LEFT JOIN categories c ON c.id = p.category_id
    LEFT JOIN categories parent ON parent.id = c.parent_id
    LEFT JOIN sales s ON s.product_id = f.product_id AND s.store_id = f.store_id AND s.date = f.date
    LEFT JOIN version_series_scales sc
      ON sc.version_id = f.version_id AND sc.product_id = f.product_id AND sc.store_id = f.store_id
    WHERE f.version_id = :version_id AND f.date >= :first AND f.date <= :last
"""


@dataclass(frozen=True)
class ScoredSpan:
    """A version and the forecast dates it is scored on (`last` None: open-ended)."""

    version_id: int
    version: int
    first: dt.date
    last: dt.date | None


@dataclass(frozen=True)
class AccuracyRow:
    """Live accuracy of a version, pooled over what `category` and `horizon_day` leave open (None)."""

    model: str
    version: int
    category: str | None
    horizon_day: int | None
    points: int
    mae: float | None
    wape: float | None
    mase: float | None
    bias: float | None
    first_date: dt.date
    last_date: dt.date

    def as_dict(self) -> dict[str, object]:
        """The fields in their declared order, dates as ISO text (JSON, CSV)."""
        return {
            field.name: value.isoformat() if isinstance(value, dt.date) else value
            for field in fields(self)
            for value in [getattr(self, field.name)]
        }


def scored_spans(conn: Connection, name: str) -> list[ScoredSpan]:
    """The versions of `name` the alias history says served (see the module docstring), oldest first."""
    events = [
        (str(alias), int(version_id))
        for alias, version_id in conn.execute(
            select(AliasEvent.alias, AliasEvent.to_version_id)
            .where(AliasEvent.name == name, AliasEvent.alias.in_(SCORED_ALIASES), AliasEvent.to_version_id.is_not(None))
            .order_by(AliasEvent.id)
        ).all()
        if version_id is not None
    ]
    ids = {version_id for _, version_id in events}
    if not ids:
        return []
    rows = conn.execute(
        select(ModelVersion.id, ModelVersion.version, ModelVersion.data_end).where(ModelVersion.id.in_(ids))
    ).all()
    origin = {int(i): end + dt.timedelta(days=1) for i, _, end in rows if end is not None}
    number = {int(i): int(v) for i, v, _ in rows}
    ends: dict[int, dt.date | None] = {}
    for alias in SCORED_ALIASES:
        sequence = [v for a, v in events if a == alias and v in origin]
        for position, version_id in enumerate(sequence):
            successor = next((origin[v] for v in sequence[position + 1 :] if origin[v] > origin[version_id]), None)
            end = None if successor is None else successor - dt.timedelta(days=1)
            if version_id not in ends:
                ends[version_id] = end
            else:  # held the alias more than once: scored as far as its longest hold reaches
                before = ends[version_id]
                ends[version_id] = None if before is None or end is None else max(before, end)
    return [ScoredSpan(v, number[v], origin[v], ends[v]) for v in sorted(ends, key=lambda v: (number[v], v))]


def newest_sales(conn: Connection) -> dict[int, dt.date]:
    """The newest sales date of each store (by id): up to where its actuals have arrived."""
    rows = conn.execute(select(SalesFact.store_id, func.max(SalesFact.date)).group_by(SalesFact.store_id)).all()
    return {int(store): _as_date(day) for store, day in rows}


def joined_actuals(conn: Connection, span: ScoredSpan, arrived: dict[int, dt.date]) -> pd.DataFrame:
    """The span's stored forecasts that have actuals (`arrived`: each store's newest sales date):
    product_id, store_id, date, p50, y, category, scale."""
    columns = ["product_id", "store_id", "date", "p50", "y", "category", "scale"]
    newest = max(arrived.values(), default=None)
    if newest is None or newest < span.first:
        return pd.DataFrame(columns=columns)
    last = newest if span.last is None else min(newest, span.last)
    params = {"version_id": span.version_id, "first": span.first, "last": last}
    frame = pd.DataFrame(conn.execute(text(_FORECASTS_WITH_ACTUALS), params).mappings().all())
    if frame.empty:
        return pd.DataFrame(columns=columns)
    frame["date"] = pd.to_datetime(frame["date"]).dt.date
    frame = frame[frame["date"] <= frame["store_id"].map(arrived).fillna(dt.date.min)]
    frame = frame.rename(columns={"units": "y"})
    frame["y"] = pd.to_numeric(frame["y"], errors="coerce").astype("float64").fillna(0.0)
    frame["p50"] = frame["p50"].astype("float64")
    frame["scale"] = pd.to_numeric(frame["scale"], errors="coerce").astype("float64")
    frame["category"] = frame["category"].fillna(NO_CATEGORY).astype(str)
    return frame[columns].reset_index(drop=True)


def cell_sums(joined: pd.DataFrame, first_day: dt.date) -> pd.DataFrame:
    """The sums behind the metrics per category and horizon day; `first_day` (the day after the training
    data's end) is horizon day 1."""
    frame = joined.assign(
        horizon_day=[(day - first_day).days + 1 for day in joined["date"]],
        abs_error=(joined["p50"] - joined["y"]).abs(),
        error=joined["p50"] - joined["y"],
        actual_abs=joined["y"].abs(),
    )
    usable = np.isfinite(frame["scale"]) & (frame["scale"] > 0)
    frame["scaled_abs_error"] = np.where(usable, frame["abs_error"] / frame["scale"].where(usable, 1.0), 0.0)
    frame["scaled_points"] = usable.astype("int64")
    grouped = frame.groupby(["category", "horizon_day"], sort=True)
    sums = grouped.agg(
        points=("y", "size"),
        abs_error=("abs_error", "sum"),
        error=("error", "sum"),
        actual_abs=("actual_abs", "sum"),
        scaled_abs_error=("scaled_abs_error", "sum"),
        scaled_points=("scaled_points", "sum"),
        first_date=("date", "min"),
        last_date=("date", "max"),
    )
    return sums.reset_index()


def with_metrics(sums: pd.DataFrame) -> pd.DataFrame:
    """`sums` (as cell_sums makes them, or added up) with mae, wape, mase and bias."""
    out = sums.copy()
    actual = out["actual_abs"].astype("float64")
    out["mae"] = out["abs_error"] / out["points"]
    out["wape"] = (out["abs_error"] / actual * 100).where(actual > 0)
    out["bias"] = (out["error"] / actual * 100).where(actual > 0)
    out["mase"] = (out["scaled_abs_error"] / out["scaled_points"]).where(out["scaled_points"] > 0)
    return out


def update_live_accuracy(engine: Engine, name: str) -> int:
    """Recompute the live accuracy of every scored version of `name` from the stored forecasts and the
    sales store (a version's rows are replaced in one transaction, so a rerun or a corrected file gives
    the same table); the cells written."""
    written = 0
    now = dt.datetime.now(dt.UTC)
    with engine.connect() as conn:
        spans = scored_spans(conn, name)
        arrived = newest_sales(conn) if spans else {}
    for span in spans:
        with engine.begin() as conn:
            joined = joined_actuals(conn, span, arrived)
            conn.execute(delete(LiveAccuracy).where(LiveAccuracy.version_id == span.version_id))
            if joined.empty:
                continue
            cells = with_metrics(cell_sums(joined, span.first))
            cells = cells.assign(version_id=span.version_id, model_name=name, version=span.version, updated_at=now)
            written += insert_frame(conn, LiveAccuracy, cells.astype({"points": "int64", "scaled_points": "int64"}))
    return written


def accuracy(
    engine: Engine, name: str, *, level: str = "category", versions: Sequence[int] | None = None
) -> list[AccuracyRow]:
    """Stored live accuracy of `name`, per version (`level="version"`), per version and category
    (`"category"`) or per version, category and horizon day (`"horizon"`); newest version first."""
    with engine.connect() as conn:
        return pooled_accuracy(conn, name, level=level, versions=versions)


def pooled_accuracy(
    conn: Connection, name: str | None, *, level: str = "category", versions: Sequence[int] | None = None
) -> list[AccuracyRow]:
    """`accuracy` on an open connection; `name=None` gives every model's rows (what /metrics exports).
    The metrics come from the stored sums pooled over the cells of a row, so they are exact."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, not {level!r}")
    la = LiveAccuracy
    keys = (
        [la.model_name, la.version]
        + ([la.category] if level != "version" else [])
        + ([la.horizon_day] if level == "horizon" else [])
    )
    query = (
        select(
            *keys,
            func.sum(la.points),
            func.sum(la.abs_error),
            func.sum(la.error),
            func.sum(la.actual_abs),
            func.sum(la.scaled_abs_error),
            func.sum(la.scaled_points),
            func.min(la.first_date),
            func.max(la.last_date),
        )
        .group_by(*keys)
        .order_by(la.model_name, la.version.desc(), *keys[2:])
    )
    if name is not None:
        query = query.where(la.model_name == name)
    if versions is not None:
        query = query.where(la.version.in_(list(versions)))
    out = []
    for row in conn.execute(query).all():
        values: list[Any] = list(row)
        category = str(values[2]) if level != "version" else None
        horizon = int(values[3]) if level == "horizon" else None
        points, abs_error, error, actual_abs, scaled, scaled_points, first, last = values[len(keys) :]
        out.append(
            AccuracyRow(
                model=str(values[0]),
                version=int(values[1]),
                category=category,
                horizon_day=horizon,
                points=int(points),
                mae=float(abs_error) / int(points) if points else None,
                wape=float(abs_error) / float(actual_abs) * 100 if actual_abs else None,
                mase=float(scaled) / int(scaled_points) if scaled_points else None,
                bias=float(error) / float(actual_abs) * 100 if actual_abs else None,
                first_date=_as_date(first),
                last_date=_as_date(last),
            )
        )
    return out


def version_accuracy(engine: Engine, name: str, versions: Sequence[int]) -> dict[int, AccuracyRow]:
    """Pooled live accuracy per version asked for that has any (what a rollout judge reads)."""
    return {row.version: row for row in accuracy(engine, name, level="version", versions=versions)}


def _as_date(value: object) -> dt.date:
    # SQLite hands aggregates of dates back as text.
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))
