"""What a version saves at training time for monitoring: the MASE scale of every series, and a profile of
the end of its training window that drift checks compare recent data with.

MASE scale, stated once for live accuracy: the in-sample MAE of the seasonal naive forecast over the
version's whole training frame (`series_scales`, with the one-step naive as its fallback), the same
scale the version's hold-out MASE used.

Drift profile: per category and per feature the model reads (the units sold, and its exogenous columns
such as price and promotion), the bins of the feature's values over the last `drift_reference_days` of
the training window (deciles; a feature with two values gets one cut between them) and the share of
values in each bin.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, delete, insert, select

from salescast.data.bulk import insert_frame
from salescast.data.schema import Product, Store, VersionProfile, VersionSeriesScale
from salescast.features.frame import DS, ID, SeriesFrame, Y
from salescast.models.base import seasonal_period
from salescast.training.metrics import series_scales

UNITS = "units"  # the sales level: the feature name of the target in profiles and drift measures
NO_CATEGORY = "(none)"
QUANTILES = np.linspace(0.1, 0.9, 9)


def feature_columns(frame: pd.DataFrame, exog: list[str]) -> dict[str, str]:
    """Feature name -> column of `frame`: the target as `units`, then the exogenous columns present."""
    return {UNITS: Y, **{name: name for name in exog if name in frame.columns}}


def bin_edges(values: np.ndarray) -> list[float]:
    """Inner cut points of a feature's reference values: its deciles, de-duplicated (zero-inflated units
    share many), or the midpoint of two values (a flag). Values equal to a cut fall in the bin below."""
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return []
    distinct = np.unique(finite)
    if len(distinct) <= 2:
        return [float(distinct.mean())] if len(distinct) == 2 else []
    return [float(edge) for edge in np.unique(np.quantile(finite, QUANTILES))]


def bin_shares(values: np.ndarray, edges: list[float]) -> list[float]:
    """Share of the finite `values` in each of the len(edges) + 1 bins that `edges` cut."""
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return [0.0] * (len(edges) + 1)
    counts = np.bincount(np.searchsorted(np.asarray(edges), finite, side="left"), minlength=len(edges) + 1)
    return [float(c) / len(finite) for c in counts]


def categories_of(frame: SeriesFrame) -> pd.Series:
    """Category per row of `frame.data` (NO_CATEGORY where the product has none)."""
    if "category" not in frame.static.columns or frame.static.empty:
        return pd.Series(NO_CATEGORY, index=frame.data.index)
    by_series = frame.static.set_index(ID)["category"]
    return frame.data[ID].map(by_series).fillna(NO_CATEGORY).astype(str)


def drift_profile(frame: SeriesFrame, reference_days: int) -> tuple[dict[str, Any], dt.date, dt.date]:
    """The profile of the last `reference_days` of `frame`, and that window's first and last date."""
    end = frame.data[DS].max()
    start = end - pd.Timedelta(days=reference_days - 1)
    recent = frame.data[DS] >= start
    data = frame.data.loc[recent]
    categories = categories_of(frame).loc[recent]
    columns = feature_columns(data, frame.exog)
    profile: dict[str, Any] = {}
    for category, rows in data.groupby(categories, sort=True):
        features: dict[str, Any] = {}
        for feature, column in columns.items():
            values = rows[column].to_numpy(dtype="float64")
            edges = bin_edges(values)
            features[feature] = {"edges": edges, "shares": bin_shares(values, edges), "rows": len(values)}
        profile[str(category)] = features
    return profile, start.date(), end.date()


def _series_ids(conn: Connection, ids: pd.Index) -> pd.DataFrame:
    """product_id and store_id of each `store/product` unique id (NaN when unknown)."""
    products = dict(conn.execute(select(Product.sku, Product.id)).all())
    stores = dict(conn.execute(select(Store.code, Store.id)).all())
    parts = pd.Series(ids, index=ids).str.split("/", n=1)
    return pd.DataFrame({"store_id": parts.str[0].map(stores), "product_id": parts.str[1].map(products)}, index=ids)


def save_training_profile(engine: Engine, version_id: int, frame: SeriesFrame, reference_days: int) -> int:
    """Save the MASE scale of every series and the drift profile of `frame` (the version's training frame)
    for `version_id`, replacing what was saved before; the scales written."""
    scales = series_scales(frame.data[[ID, DS, Y]], seasonal_period(frame.freq))
    profile, start, end = drift_profile(frame, reference_days)
    with engine.begin() as conn:
        ids = _series_ids(conn, scales.index)
        rows = (
            ids.assign(scale=scales.to_numpy(), version_id=version_id)
            .dropna(subset=["product_id", "store_id"])
            .astype({"product_id": "int64", "store_id": "int64"})
        )
        conn.execute(delete(VersionSeriesScale).where(VersionSeriesScale.version_id == version_id))
        insert_frame(conn, VersionSeriesScale, rows[["version_id", "product_id", "store_id", "scale"]])
        conn.execute(delete(VersionProfile).where(VersionProfile.version_id == version_id))
        conn.execute(
            insert(VersionProfile).values(
                version_id=version_id,
                window_start=start,
                window_end=end,
                profile=profile,
                created_at=dt.datetime.now(dt.UTC),
            )
        )
    return len(rows)
