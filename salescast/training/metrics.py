"""Accuracy metrics, computed from backtest results and never inside models.

Rules, stated once:
- MAPE skips periods whose actual is 0 (a percentage of nothing is undefined); NaN when all are 0.
- sMAPE is 2|e| / (|y| + |ŷ|), a period where both are 0 counting as 0; in percent.
- WAPE is sum|e| / sum|y|, in percent; bias is sum(ŷ - y) / sum|y|, in percent (positive = over-forecast).
- MASE scales the MAE by the in-sample MAE of the seasonal naive forecast on the series' training
  history (one-step naive when the history is shorter than a season or the seasonal scale is 0).
- R² is 1 - SSE / SST on the evaluated periods.
- coverage is the share of actuals inside [p10, p90], in percent.
Aggregates over series (per category, overall) pool the errors of all their periods, except MASE,
which is the mean of the per-series values (each series on its own scale).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from salescast.features.frame import DS, ID, Y

METRICS = ("mae", "rmse", "r2", "mape", "smape", "wape", "mase", "bias", "coverage")


def mae(y: np.ndarray, yhat: np.ndarray) -> float:
    return float(np.mean(np.abs(y - yhat)))


def rmse(y: np.ndarray, yhat: np.ndarray) -> float:
    return float(np.sqrt(np.mean((y - yhat) ** 2)))


def r2(y: np.ndarray, yhat: np.ndarray) -> float:
    total = float(np.sum((y - y.mean()) ** 2))
    return float("nan") if total == 0 else 1.0 - float(np.sum((y - yhat) ** 2)) / total


def mape(y: np.ndarray, yhat: np.ndarray) -> float:
    nonzero = y != 0
    return float("nan") if not nonzero.any() else float(np.mean(np.abs((y - yhat)[nonzero] / y[nonzero])) * 100)


def smape(y: np.ndarray, yhat: np.ndarray) -> float:
    denominator = np.abs(y) + np.abs(yhat)
    ratio = np.divide(
        2 * np.abs(y - yhat), denominator, out=np.zeros_like(denominator, dtype=float), where=denominator > 0
    )
    return float(np.mean(ratio) * 100)


def wape(y: np.ndarray, yhat: np.ndarray) -> float:
    total = float(np.sum(np.abs(y)))
    return float("nan") if total == 0 else float(np.sum(np.abs(y - yhat))) / total * 100


def bias(y: np.ndarray, yhat: np.ndarray) -> float:
    total = float(np.sum(np.abs(y)))
    return float("nan") if total == 0 else float(np.sum(yhat - y)) / total * 100


def coverage(y: np.ndarray, low: np.ndarray, high: np.ndarray) -> float:
    return float(np.mean((y >= low) & (y <= high)) * 100)


def naive_scale(history: np.ndarray, season: int) -> float:
    """In-sample MAE of the seasonal naive forecast (one-step naive as the fallback)."""
    for lag in (season, 1):
        if len(history) > lag:
            scale = float(np.mean(np.abs(history[lag:] - history[:-lag])))
            if scale > 0:
                return scale
    return float("nan")


def mase(y: np.ndarray, yhat: np.ndarray, scale: float) -> float:
    return float("nan") if not np.isfinite(scale) or scale == 0 else mae(y, yhat) / scale


def point_metrics(y: np.ndarray, yhat: np.ndarray) -> dict[str, float]:
    return {
        "mae": mae(y, yhat),
        "rmse": rmse(y, yhat),
        "r2": r2(y, yhat),
        "mape": mape(y, yhat),
        "smape": smape(y, yhat),
        "wape": wape(y, yhat),
        "bias": bias(y, yhat),
    }


def series_scales(history: pd.DataFrame, season: int) -> pd.Series:
    """MASE scale per series from its training history (unique_id, ds, y): `naive_scale` of every series
    at once, without a Python loop over them."""
    ordered = history[[ID, DS, Y]].sort_values([ID, DS], kind="stable")
    codes, ids = pd.factorize(ordered[ID], sort=False)
    y = ordered[Y].to_numpy(dtype="float64")
    count = len(ids)
    starts = np.r_[0, np.flatnonzero(codes[1:] != codes[:-1]) + 1] if len(y) else np.zeros(0, dtype="int64")
    position = np.arange(len(y)) - np.repeat(starts, np.diff(np.r_[starts, len(y)]))  # place in its series
    scale = np.full(count, np.nan)
    for lag in (season, 1):
        if lag >= len(y):
            continue
        valid = position[lag:] >= lag
        errors = np.abs(y[lag:] - y[:-lag])[valid]
        owners = codes[lag:][valid]
        total = np.bincount(owners, weights=errors, minlength=count)
        n = np.bincount(owners, minlength=count)
        lagged = np.divide(total, n, out=np.zeros(count), where=n > 0)
        usable = np.isnan(scale) & (n > 0) & (lagged > 0)
        scale[usable] = lagged[usable]
    return pd.Series(scale, index=pd.Index(ids, name=ID), name=Y)


def evaluate(
    results: pd.DataFrame,
    models: list[str],
    scales: pd.Series,
    groups: pd.Series | None = None,
) -> pd.DataFrame:
    """Metrics per model at three levels: `overall`, per group (e.g. category) and per series.

    `results` has unique_id, ds, y and, per model M, the columns M (the p50) and optionally M-p10, M-p90.
    Returns one row per (level, key, model) with the columns of METRICS. The sums behind every metric
    are taken per series and per group in one pass each (bincount), not in a loop over series.
    """
    series_codes, series_keys = pd.factorize(results[ID].astype(str), sort=True)
    series_scale = (
        scales.reindex(series_keys).to_numpy(dtype="float64") if len(scales) else np.full(len(series_keys), np.nan)
    )
    if groups is not None:
        group_of_series = pd.Series(series_keys).map(groups).astype(str).to_numpy()
        group_codes_of_series, group_keys = pd.factorize(group_of_series, sort=True)
        group_codes = group_codes_of_series[series_codes]
    parts: list[pd.DataFrame] = []
    y = results[Y].to_numpy(dtype="float64")
    for model in models:
        yhat = results[model].to_numpy(dtype="float64")
        low, high = f"{model}-p10", f"{model}-p90"
        band = (
            (results[low].to_numpy(dtype="float64"), results[high].to_numpy(dtype="float64"))
            if low in results and high in results
            else None
        )
        per_series = _grouped_metrics(series_codes, len(series_keys), y, yhat, band)
        per_series["mase"] = np.where(
            np.isfinite(series_scale) & (series_scale != 0), per_series["mae"] / series_scale, np.nan
        )
        mase_values = pd.Series(per_series["mase"])
        parts.append(_rows("series", [str(k) for k in series_keys], model, per_series))
        if groups is not None:
            per_group = _grouped_metrics(group_codes, len(group_keys), y, yhat, band)
            # A group's MASE is the mean of its series' MASE (each series on its own scale).
            per_group["mase"] = (
                mase_values.groupby(group_codes_of_series).mean().reindex(range(len(group_keys))).to_numpy()
            )
            parts.append(_rows("group", [str(k) for k in group_keys], model, per_group))
        overall = _grouped_metrics(np.zeros(len(y), dtype="int64"), 1, y, yhat, band)
        overall["mase"] = np.array([mase_values.mean()])
        parts.append(_rows("overall", ["all"], model, overall))
    columns = ["level", "key", "model", *METRICS]
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)[columns]


def _rows(level: str, keys: list[str], model: str, values: dict[str, np.ndarray]) -> pd.DataFrame:
    return pd.DataFrame({"level": level, "key": keys, "model": model, **{m: values[m] for m in METRICS}})


def _grouped_metrics(
    codes: np.ndarray, count: int, y: np.ndarray, yhat: np.ndarray, band: tuple[np.ndarray, np.ndarray] | None
) -> dict[str, np.ndarray]:
    """The point metrics and coverage of each group of rows (codes 0..count-1), by the rules above;
    MASE is left NaN for the caller, who knows the scales."""

    def total(weights: np.ndarray) -> np.ndarray:
        summed: np.ndarray = np.bincount(codes, weights=weights, minlength=count)
        return summed

    def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.divide(numerator, denominator, out=np.full(count, np.nan), where=denominator != 0)
        return out

    n = np.bincount(codes, minlength=count).astype("float64")
    error = yhat - y
    absolute = np.abs(error)
    sse = total(error**2)
    mean_y = ratio(total(y), n)
    sst = total((y - mean_y[codes]) ** 2)
    nonzero = y != 0
    relative = np.divide(absolute, np.abs(y), out=np.zeros_like(absolute), where=nonzero)
    denominator = np.abs(y) + np.abs(yhat)
    symmetric = np.divide(2 * absolute, denominator, out=np.zeros_like(absolute), where=denominator > 0)
    scale_y = total(np.abs(y))
    values = {
        "mae": ratio(total(absolute), n),
        "rmse": np.sqrt(ratio(sse, n)),
        "r2": 1.0 - ratio(sse, sst),
        "mape": ratio(total(relative), total(nonzero.astype("float64"))) * 100,
        "smape": ratio(total(symmetric), n) * 100,
        "wape": ratio(total(absolute), scale_y) * 100,
        "bias": ratio(total(error), scale_y) * 100,
        "mase": np.full(count, np.nan),
        "coverage": np.full(count, np.nan),
    }
    if band is not None:
        inside = ((y >= band[0]) & (y <= band[1])).astype("float64")
        values["coverage"] = ratio(total(inside), n) * 100
    return values
