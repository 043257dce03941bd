"""Cold start: forecasts for products with too little history for any model.

A new series gets its category's profile (how the established series of the category are forecast to
move, relative to their recent level) scaled to its own first sales. Its rows are marked
`method = "cold_start"`; every other row is `"model"`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from salescast.features.frame import DS, ID, SeriesFrame, Y
from salescast.models.base import future_dates

RECENT_PERIODS = 28  # periods that define an established series' current level


def category_of(static: pd.DataFrame, ids: pd.Series) -> pd.Series:
    if "category" not in static:
        return pd.Series("all", index=ids.index)
    categories = static.set_index(ID)["category"]
    return ids.map(categories).fillna("all").astype(str)


def recent_levels(frame: SeriesFrame) -> pd.Series:
    """Each series' mean over its last RECENT_PERIODS periods."""
    return frame.data.groupby(ID, sort=False).tail(RECENT_PERIODS).groupby(ID, sort=False)[Y].mean()


def cold_start_forecast(
    new: SeriesFrame, level: pd.Series, forecast: pd.DataFrame, static: pd.DataFrame, h: int
) -> pd.DataFrame:
    """Forecasts for the series of `new` from the profiles of `forecast`, the established series' forecast,
    relative to their recent `level`."""
    steps = forecast.assign(step=forecast.groupby(ID, sort=False).cumcount())
    steps["category"] = category_of(static, steps[ID])
    steps["level"] = steps[ID].map(level)
    # Per category and step: forecast relative to the recent level; an unknown category falls back to all.
    by_category = steps.groupby(["category", "step"])[["p10", "p50", "p90", "level"]].sum()
    overall = steps.groupby("step")[["p10", "p50", "p90", "level"]].sum()
    profiles = {
        q: (by_category[q] / by_category["level"].replace(0, np.nan)).unstack("step") for q in ("p10", "p50", "p90")
    }
    fallback = {q: (overall[q] / overall["level"].replace(0, np.nan)).fillna(1.0) for q in ("p10", "p50", "p90")}

    future = future_dates(new, h)
    future["step"] = future.groupby(ID, sort=False).cumcount()
    future["category"] = category_of(static, future[ID])
    first_sales = new.data.groupby(ID, sort=False)[Y].mean()
    future["level"] = future[ID].map(first_sales).fillna(0.0)
    for q in ("p10", "p50", "p90"):
        table = profiles[q]
        found = np.array(
            [
                table.at[c, s] if c in table.index and s in table.columns else np.nan
                for c, s in zip(future["category"], future["step"], strict=True)
            ],
            dtype=float,
        )
        # With no established series at all there is no profile: the series' own mean, flat.
        ratio = np.where(np.isfinite(found), found, future["step"].map(fallback[q]).fillna(1.0).to_numpy())
        future[q] = future["level"].to_numpy() * ratio
    return future[[ID, DS, "p10", "p50", "p90"]].assign(method="cold_start")
