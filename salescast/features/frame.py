"""The series frame every model, backtest and feature step takes: long format plus a static table.

A series is one product in one store, `unique_id = "store/product"`. Frequency travels with the frame.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sqlalchemy import Engine, text

from salescast.errors import DataValidationError

log = logging.getLogger(__name__)

ID, DS, Y = "unique_id", "ds", "y"
EXOG_COLUMNS = ("price", "on_promotion")
STATIC_COLUMNS = ("product", "store", "category", "subcategory")


@dataclass
class SeriesFrame:
    """`data`: unique_id, ds, y plus exogenous columns, sorted, one row per series and period, no gaps.
    `static`: one row per series with product, store, category, subcategory."""

    data: pd.DataFrame
    freq: str
    static: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=[ID, *STATIC_COLUMNS]))

    @property
    def exog(self) -> list[str]:
        return [c for c in self.data.columns if c not in (ID, DS, Y)]

    @property
    def ids(self) -> np.ndarray:
        return self.data[ID].unique()

    def lengths(self) -> pd.Series:
        return self.data.groupby(ID, sort=False).size()

    def subset(self, ids: np.ndarray | list[str]) -> SeriesFrame:
        """The frame of the series named; the frame itself (no copy) when that is every series."""
        keep = set(ids)
        present = self.data[ID].unique()
        if len(keep) >= len(present) and keep.issuperset(present):
            return self
        return SeriesFrame(
            self.data[self.data[ID].isin(keep)].reset_index(drop=True),
            self.freq,
            self.static[self.static[ID].isin(keep)].reset_index(drop=True),
        )

    def until(self, cutoff: pd.Timestamp | pd.Series) -> SeriesFrame:
        """The history up to and including `cutoff`: what a backtest window may see. A Series gives each
        series its own cutoff (by unique_id); series it does not name are left out."""
        if isinstance(cutoff, pd.Series):
            limit = self.data[ID].map(cutoff)
            keep = limit.notna() & (self.data[DS] <= limit)
        else:
            keep = self.data[DS] <= cutoff
        return SeriesFrame(self.data[keep].reset_index(drop=True), self.freq, self.static)


def infer_freq(dates: pd.Series) -> str:
    """`D`, `W-<DAY>` or `MS`/`M`, from the spacing of the distinct dates."""
    distinct = pd.DatetimeIndex(dates.drop_duplicates().sort_values())
    if len(distinct) < 3:
        raise DataValidationError("cannot infer the frequency from fewer than 3 distinct dates; state it (--freq)")
    step = pd.Series(distinct[1:] - distinct[:-1]).mode().iloc[0]
    if step == pd.Timedelta(days=1):
        return "D"
    if step == pd.Timedelta(days=7):
        return f"W-{distinct[0].day_name()[:3].upper()}"
    if pd.Timedelta(days=28) <= step <= pd.Timedelta(days=31):
        if (distinct.day == 1).all():
            return "MS"
        if distinct.is_month_end.all():
            return "ME"
    raise DataValidationError(f"cannot infer a daily, weekly or monthly frequency (typical step {step}); state it")


def prepare(
    data: pd.DataFrame, freq: str | None = None, static: pd.DataFrame | None = None, fill: str = "zero"
) -> SeriesFrame:
    """Check and regularise a long frame.

    Duplicated (unique_id, ds) and missing or non-finite targets raise; missing periods between a
    series' first and last date are inserted (`fill="zero"`: no sales recorded means none were made,
    exogenous columns carry forward) or refused (`fill="error"`).
    """
    missing = {ID, DS, Y} - set(data.columns)
    if missing:
        raise DataValidationError(f"the series frame needs columns {sorted(missing)}")
    frame = data.copy()
    frame[ID] = frame[ID].astype(str)
    frame[DS] = pd.to_datetime(frame[DS])
    frame[Y] = pd.to_numeric(frame[Y], errors="coerce").astype("float64")
    bad_y = ~np.isfinite(frame[Y].to_numpy())
    if bad_y.any():
        first = frame.loc[bad_y].iloc[0]
        raise DataValidationError(
            f"{int(bad_y.sum())} missing or non-finite target values (first: series {first[ID]}, {first[DS]:%Y-%m-%d})"
        )
    duplicated = frame.duplicated([ID, DS])
    if duplicated.any():
        first = frame.loc[duplicated].iloc[0]
        raise DataValidationError(
            f"{int(duplicated.sum())} duplicated (unique_id, ds) rows (first: series {first[ID]}, {first[DS]:%Y-%m-%d})"
        )
    freq = freq or infer_freq(frame[DS])
    frame = frame.sort_values([ID, DS], kind="stable").reset_index(drop=True)
    frame = _fill_gaps(frame, freq, fill)
    if static is None:
        static = pd.DataFrame({ID: frame[ID].unique()})
    return SeriesFrame(frame, freq, static.reset_index(drop=True))


def _fill_gaps(frame: pd.DataFrame, freq: str, fill: str) -> pd.DataFrame:
    bounds = frame.groupby(ID, sort=False)[DS].agg(["min", "max", "size"])
    expected = np.array(
        [len(pd.date_range(lo, hi, freq=freq)) for lo, hi in zip(bounds["min"], bounds["max"], strict=True)]
    )
    if (expected == bounds["size"].to_numpy()).all():
        return frame
    if fill == "error":
        gappy = bounds.index[expected != bounds["size"].to_numpy()]
        raise DataValidationError(f"{len(gappy)} series have missing periods (first: {gappy[0]}); use fill='zero'")
    full = pd.concat(
        [
            pd.DataFrame({ID: uid, DS: pd.date_range(lo, hi, freq=freq)})
            for uid, lo, hi in zip(bounds.index, bounds["min"], bounds["max"], strict=True)
        ],
        ignore_index=True,
    )
    merged = full.merge(frame, on=[ID, DS], how="left")
    off_grid = len(frame) - merged[Y].notna().sum()
    if off_grid:
        raise DataValidationError(f"{off_grid} rows fall between the {freq} periods; aggregate them first")
    merged[Y] = merged[Y].fillna(0.0)
    exog = [c for c in merged.columns if c not in (ID, DS, Y)]
    if exog:
        merged[exog] = merged.groupby(ID, sort=False)[exog].ffill()
    return merged


def load_series(engine: Engine, freq: str | None = None, min_date: str | None = None) -> SeriesFrame:
    """All sales in the store as a series frame (price and promotion as exogenous columns)."""
    query = """
        SELECT st.code AS store, p.sku AS product, s.date AS ds, s.units AS y,
               s.unit_price AS price, s.on_promotion AS on_promotion,
               COALESCE(parent.name, c.name) AS category, CASE WHEN parent.id IS NULL THEN NULL ELSE c.name END
                 AS subcategory
        FROM sales s
        JOIN products p ON p.id = s.product_id
        JOIN stores st ON st.id = s.store_id
        LEFT JOIN categories c ON c.id = p.category_id
        LEFT JOIN categories parent ON parent.id = c.parent_id
        {where}
        ORDER BY st.code, p.sku, s.date"""
    with engine.connect() as conn:
        where = "WHERE s.date >= :min_date" if min_date else ""
        params = {"min_date": pd.Timestamp(min_date).date()} if min_date else {}
        rows = pd.DataFrame(conn.execute(text(query.format(where=where)), params).mappings().all())
    if rows.empty:
        raise DataValidationError("the sales store holds no sales yet; ingest a file first")
    rows[ID] = rows["store"].astype(str) + "/" + rows["product"].astype(str)
    rows["on_promotion"] = rows["on_promotion"].astype(float)
    rows["price"] = rows["price"].astype(float)
    static = rows.drop_duplicates(ID)[[ID, *STATIC_COLUMNS]].reset_index(drop=True)
    return prepare(_usable(rows)[[ID, DS, Y, *EXOG_COLUMNS]], freq=freq, static=static)


def _usable(rows: pd.DataFrame) -> pd.DataFrame:
    """The stored rows training can use: one bad row (an infinite value written before ingestion refused
    them, or by hand) is logged and skipped, rather than refusing every training that reads the store.

    A row whose units are not finite is dropped, and its day becomes a gap (filled as no sales, as any day
    without a row); a price that is not finite is unknown, and carries the series' last price forward.
    """
    units = pd.to_numeric(rows[Y], errors="coerce").astype("float64")
    bad_units = ~np.isfinite(units.to_numpy())
    _warn_skipped(rows, bad_units, "units", "non-finite")
    rows = rows.loc[~bad_units].reset_index(drop=True)
    bad_price = np.isinf(rows["price"].to_numpy())
    if bad_price.any():
        _warn_skipped(rows, bad_price, "price", "non-finite, read as unknown")
        rows.loc[bad_price, "price"] = np.nan
        carried = rows.groupby(ID, sort=False)["price"].ffill()
        rows.loc[bad_price, "price"] = carried[bad_price]
    return rows


def _warn_skipped(rows: pd.DataFrame, bad: np.ndarray, column: str, reason: str) -> None:
    if not bad.any():
        return
    series = rows.loc[bad, ID].drop_duplicates()
    shown = ",".join(series.iloc[:3]) + (f" and {len(series) - 3} more" if len(series) > 3 else "")
    log.warning("features.frame.skipped rows=%d column=%s reason=%s series=%s", int(bad.sum()), column, reason, shown)
