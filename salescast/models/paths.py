"""Which way each series is forecast, by how much history it has: no series with an observation is refused.

- `full`: at least `min_history` periods and more than a season; every family forecasts it as designed.
- `short`: at least `min_history` periods but no more than a season. The families still forecast it,
  each along its own fallback: SeasonalNaive (which has no value a season back) forecasts the mean of
  what exists, the statistical families drop the season or fall back to Naive, the global models read
  the lags that exist.
- `cold`: fewer than `min_history` periods. No family is trained on it: its category's forecast profile
  (how the established series of the category move relative to their recent level) is scaled to the
  series' own mean (`cold_start.py`), with the `cold_start` method and intervals calibrated on the
  cold-start path's own backtest residuals.

The same split is applied in every backtest window (by the history before its cutoff), in training
and in the served model, so the backtest scores what serving answers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from salescast.features.frame import SeriesFrame
from salescast.models.base import Forecaster, empty_forecast, seasonal_period
from salescast.models.cold_start import cold_start_forecast, recent_levels

FULL, SHORT, COLD = "full", "short", "cold"
PATHS = (FULL, SHORT, COLD)
MODEL_METHOD, COLD_METHOD = "model", "cold_start"


def default_min_history(freq: str) -> int:
    """Periods a series needs before any family is trained on it: 28 days, 13 weeks or 12 months."""
    return 28 if freq == "D" else 13 if freq.startswith("W") else 12


def series_paths(lengths: pd.Series, freq: str, min_history: int) -> pd.Series:
    """unique_id -> path (FULL, SHORT or COLD) from each series' number of periods."""
    season = seasonal_period(freq)
    values = np.where(lengths < min_history, COLD, np.where(lengths <= season, SHORT, FULL))
    return pd.Series(values, index=lengths.index, name="path")


def path_counts(paths: pd.Series) -> dict[str, int]:
    """Series per path, in PATHS order (every path named, 0 when empty)."""
    counts = paths.value_counts()
    return {path: int(counts.get(path, 0)) for path in PATHS}


def describe_paths(counts: dict[str, int]) -> str:
    """`full 2,660, short 600, cold 71`."""
    return ", ".join(f"{path} {counts.get(path, 0):,}" for path in PATHS)


def split_by_history(frame: SeriesFrame, min_history: int) -> tuple[SeriesFrame, SeriesFrame]:
    """(series with at least `min_history` periods, the younger ones)."""
    lengths = frame.lengths()
    return frame.subset(lengths.index[lengths >= min_history].to_numpy()), frame.subset(
        lengths.index[lengths < min_history].to_numpy()
    )


def forecast_by_path(
    model: Forecaster, history: SeriesFrame, h: int, future_exog: pd.DataFrame | None, min_history: int
) -> pd.DataFrame:
    """Fit the unfitted `model` on the established series of `history` and forecast them; the younger
    series get the cold start from that forecast's profiles. Rows carry `method` (model or cold_start)."""
    established, new = split_by_history(history, min_history)
    if established.data.empty:
        forecast = empty_forecast()
        level = pd.Series(dtype=float)
    else:
        forecast = model.fit(established).predict(h, future_exog=future_exog)
        level = recent_levels(established)
    forecast = forecast.assign(method=MODEL_METHOD)
    if new.data.empty:
        return forecast
    cold = cold_start_forecast(new, level, forecast, history.static, h)
    return pd.concat([forecast, cold], ignore_index=True)
