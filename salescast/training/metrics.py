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
    """MASE scale per series from its training history (unique_id, ds, y)."""
    return history.sort_values([ID, DS]).groupby(ID, sort=False)[Y].apply(lambda s: naive_scale(s.to_numpy(), season))


def evaluate(
    results: pd.DataFrame,
    models: list[str],
    scales: pd.Series,
    groups: pd.Series | None = None,
) -> pd.DataFrame:
    """Metrics per model at three levels: `overall`, per group (e.g. category) and per series.

    `results` has unique_id, ds, y and, per model M, the columns M (the p50) and optionally M-p10, M-p90.
    Returns one row per (level, key, model) with the columns of METRICS.
    """
    rows: list[dict[str, object]] = []
    frame = results.copy()
    frame["_group"] = frame[ID].map(groups) if groups is not None else "all"
    for model in models:
        per_series = _metrics_by(frame, ID, model, scales)
        for key, values in per_series.items():
            rows.append({"level": "series", "key": key, "model": model, **values})
        series_mase = pd.Series({k: v["mase"] for k, v in per_series.items()})
        if groups is not None:
            for key, values in _metrics_by(frame, "_group", model, None).items():
                members = frame.loc[frame["_group"] == key, ID].unique()
                values["mase"] = float(series_mase.reindex(members).mean())
                rows.append({"level": "group", "key": key, "model": model, **values})
        overall = _metrics(frame, model, float("nan"))
        overall["mase"] = float(series_mase.mean())
        rows.append({"level": "overall", "key": "all", "model": model, **overall})
    return pd.DataFrame(rows, columns=["level", "key", "model", *METRICS])


def _metrics_by(frame: pd.DataFrame, by: str, model: str, scales: pd.Series | None) -> dict[str, dict[str, float]]:
    out = {}
    for key, part in frame.groupby(by, sort=True):
        scale = float(scales.get(key, float("nan"))) if scales is not None else float("nan")
        out[str(key)] = _metrics(part, model, scale)
    return out


def _metrics(part: pd.DataFrame, model: str, scale: float) -> dict[str, float]:
    y = part[Y].to_numpy(dtype=float)
    yhat = part[model].to_numpy(dtype=float)
    values = point_metrics(y, yhat)
    values["mase"] = mase(y, yhat, scale)
    low, high = f"{model}-p10", f"{model}-p90"
    values["coverage"] = (
        coverage(y, part[low].to_numpy(dtype=float), part[high].to_numpy(dtype=float))
        if low in part and high in part
        else float("nan")
    )
    return values
