"""The one interface every model family and the ensemble implement.

`fit(frame)` learns from a `SeriesFrame`; `predict(h, future_exog, ids)` returns one row per series (of
`ids` when given) and future period with `p50` and the quantile columns of `QUANTILES`;
`save(folder)` / `load(folder)` round-trip the fitted model, so that the registry, the backtest and the
server never special-case a family.
"""

from __future__ import annotations

import json
import pickle  # nosec B403: only artifacts whose sha256 the registry recorded are unpickled  # nosec B403: unpickles checksummed artifacts only
from abc import ABC, abstractmethod
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from salescast.errors import DataValidationError, SalescastError
from salescast.features.frame import DS, ID, SeriesFrame

QUANTILES: tuple[float, ...] = (0.1, 0.5, 0.9)
LEVEL = 80  # the central interval p10..p90
FORECAST_COLUMNS = [ID, DS, "p10", "p50", "p90"]


class ModelNotFittedError(SalescastError):
    """predict or save was called before fit."""


def quantile_column(q: float) -> str:
    return f"p{round(q * 100)}"


def seasonal_period(freq: str) -> int:
    """The main seasonal cycle: a week of days, a year of weeks or months."""
    if freq == "D":
        return 7
    if freq.startswith("W"):
        return 52
    if freq.startswith("M") or freq.endswith("MS"):
        return 12
    if freq.startswith("Q"):
        return 4
    return 1


def yearly_period(freq: str) -> int:
    """A year in periods, aligned on the weekday for daily data (52 weeks)."""
    if freq == "D":
        return 364
    return seasonal_period(freq)


def future_dates(frame: SeriesFrame, h: int) -> pd.DataFrame:
    """The next `h` periods of every series (unique_id, ds)."""
    last = frame.data.groupby(ID, sort=False)[DS].max()
    offset = pd.tseries.frequencies.to_offset(frame.freq)
    steps = [last + offset * (i + 1) for i in range(h)]
    return (
        pd.DataFrame({ID: np.repeat(last.index.to_numpy(), h), DS: np.column_stack(steps).ravel()})
        .astype({DS: "datetime64[ns]"})
        .reset_index(drop=True)
    )


def empty_forecast() -> pd.DataFrame:
    """A forecast of no series (every requested series unknown to the model)."""
    return pd.DataFrame(
        {ID: pd.Series(dtype=object), DS: pd.Series(dtype="datetime64[ns]")}
        | {column: pd.Series(dtype="float64") for column in FORECAST_COLUMNS[2:]}
    )


def tidy_forecast(frame: pd.DataFrame) -> pd.DataFrame:
    """Sorted forecast with non-negative, non-crossing quantiles (sales cannot be negative); a `mean`
    column (see ConformalIntervals) and a `method` column (model or cold_start) are kept when present."""
    extra = [column for column in ("mean", "method") if column in frame]
    out = frame.loc[:, [*FORECAST_COLUMNS, *extra]].copy()
    values = np.clip(out[["p10", "p50", "p90"]].to_numpy(dtype="float64"), 0.0, None)
    values.sort(axis=1)
    out[["p10", "p50", "p90"]] = values
    if "mean" in out:
        out["mean"] = np.clip(out["mean"].to_numpy(dtype="float64"), 0.0, None)
    return out.sort_values([ID, DS], kind="stable").reset_index(drop=True)


@dataclass
class ConformalIntervals:
    """Split-conformal p10/p90 from backtest residuals (actual - p50), added to the point forecast.

    A series' offsets blend its own residual quantiles with quantiles pooled over all series (each
    residual scaled by its series' mean absolute actual, then rescaled): a few dozen residuals per
    series make noisy tail quantiles, and pooling steadies them. Series without residuals of their
    own (new ones) get the pooled offsets alone, scaled by their own forecast's mean level. Quantile
    levels carry the finite-sample correction of split conformal prediction, ceil((n + 1) q) / n.

    Pooled offsets are kept per path as well (`full`, `short`, `cold`, see models/paths.py): a young
    series misses by more than an established one, and a cold start (a category profile scaled to a few
    periods of sales) by more still, and their bands must say so. A forecast row's path is its `path`
    column, else its `method` (cold_start: cold, model: full). Every row gets a band. The young paths'
    residuals include the backtest's probes (training/probes.py): established series cut short.

    The same residuals give a `mean` column: p50 plus the residuals' mean, blended the same way. A p50
    is a median, and for skewed daily demand (many zeros, a few large days) a sum of daily medians
    falls well short of the period's total, while a sum of means does not; so period totals (the
    rankings) add means. Intervals saved before the mean existed give mean = p50.
    """

    per_series: pd.DataFrame  # index unique_id; columns lo, hi
    pooled_scaled: tuple[float, float]
    scale: pd.Series  # unique_id -> mean |y| over the calibration periods
    mean_per_series: pd.Series | None = None  # unique_id -> mean residual
    pooled_mean_scaled: float = 0.0
    # path -> (lo, hi, mean) scaled offsets pooled over that path's residuals
    pooled_by_path: dict[str, tuple[float, float, float]] | None = None

    def apply(self, forecast: pd.DataFrame) -> pd.DataFrame:
        out = forecast.copy()
        point = out["p50"].to_numpy(dtype="float64")
        scale = self._scales(out)
        pooled = np.tile(np.array([*self.pooled_scaled, getattr(self, "pooled_mean_scaled", 0.0)]), (len(out), 1))
        # Read with getattr: intervals pickled before an attribute existed lack it.
        by_path = getattr(self, "pooled_by_path", None) or {}
        if by_path and ("path" in out or "method" in out):
            paths = row_paths(out)
            for path, offsets in by_path.items():
                pooled[paths == path] = offsets
        pooled *= scale[:, None]
        own = self.per_series.reindex(out[ID])
        lo = np.where(own["lo"].isna(), pooled[:, 0], (own["lo"].to_numpy() + pooled[:, 0]) / 2)
        hi = np.where(own["hi"].isna(), pooled[:, 1], (own["hi"].to_numpy() + pooled[:, 1]) / 2)
        out["p10"] = point + lo
        out["p90"] = point + hi
        own_mean = getattr(self, "mean_per_series", None)
        if own_mean is not None:
            series_mean = own_mean.reindex(out[ID]).to_numpy()
            out["mean"] = point + np.where(np.isnan(series_mean), pooled[:, 2], (series_mean + pooled[:, 2]) / 2)
        return out

    def _scales(self, out: pd.DataFrame) -> np.ndarray:
        """Each row's series scale: its calibration mean |y|; for a series the calibration never saw,
        the mean of its own forecast (its level), else the median scale."""
        default_scale = float(self.scale.median()) if len(self.scale) else 1.0
        known = self.scale.reindex(out[ID]).to_numpy(dtype="float64")
        level = out["p50"].abs().groupby(out[ID], sort=False).transform("mean").to_numpy(dtype="float64")
        fallback = np.where(np.isfinite(level) & (level > 0), level, default_scale)
        return np.where(np.isnan(known), fallback, known)


def _conformal_levels(n: int, low: float, high: float) -> tuple[float, float]:
    if n < 1:
        return low, high
    return max(0.0, np.floor((n + 1) * low) / n), min(1.0, np.ceil((n + 1) * high) / n)


def fit_conformal(
    residuals: pd.DataFrame, low: float = 0.1, high: float = 0.9, min_residuals: int = 14
) -> ConformalIntervals:
    """From a frame of unique_id, y (actual), residual (actual - p50) and optionally path (full, short or
    cold: how each row was forecast), whose residuals are then also pooled per path."""
    grouped = residuals.groupby(ID, sort=False)
    counts = grouped.size()
    typical = int(counts.median()) if len(counts) else 0
    q_low, q_high = _conformal_levels(typical, low, high)
    quantiles = pd.DataFrame({"lo": grouped["residual"].quantile(q_low), "hi": grouped["residual"].quantile(q_high)})
    enough = counts.reindex(quantiles.index) >= min_residuals
    per_series = quantiles[enough]
    mean_per_series = grouped["residual"].mean()[enough]
    scale = residuals["y"].abs().groupby(residuals[ID], sort=False).mean().replace(0.0, np.nan)
    scaled = residuals["residual"] / residuals[ID].map(scale)
    finite = np.isfinite(scaled)

    def pooled(rows: pd.Series) -> tuple[float, float, float]:
        values = scaled[rows & finite]
        if values.empty:
            return 0.0, 0.0, 0.0
        return float(values.quantile(low)), float(values.quantile(high)), float(values.mean())

    everything = pooled(pd.Series(True, index=residuals.index))
    by_path = (
        {str(path): pooled(residuals["path"] == path) for path in residuals["path"].unique()}
        if "path" in residuals
        else None
    )
    return ConformalIntervals(per_series, everything[:2], scale.fillna(0.0), mean_per_series, everything[2], by_path)


def row_paths(forecast: pd.DataFrame) -> np.ndarray:
    """Each forecast row's path: its `path` column, else cold for a cold start and full otherwise."""
    if "path" in forecast:
        return forecast["path"].to_numpy(dtype=object)
    if "method" in forecast:
        return np.where(forecast["method"].to_numpy() == "cold_start", "cold", "full").astype(object)
    return np.full(len(forecast), "full", dtype=object)


class Forecaster(ABC):
    """A model family. Subclasses set `family` and implement `_fit`, `_predict` and the state methods."""

    family: ClassVar[str]
    uses_exog: ClassVar[bool] = False

    def __init__(self, **params: Any) -> None:
        self.params = params
        self.freq: str | None = None
        self._train: SeriesFrame | None = None  # kept for the models that forecast from the history
        self.intervals: ConformalIntervals | None = None  # set by training from backtest residuals

    @property
    def is_fitted(self) -> bool:
        return self.freq is not None

    def fit(self, frame: SeriesFrame) -> Self:
        if frame.data.empty:
            raise DataValidationError(f"{self.family}: nothing to fit, the series frame is empty")
        self._fit(frame)
        self.freq = frame.freq
        return self

    def predict(
        self, h: int, future_exog: pd.DataFrame | None = None, ids: Collection[str] | None = None
    ) -> pd.DataFrame:
        """The next `h` periods of every series, or of the series in `ids` (those the model does not
        know are left out). Forecasting a few series of a large model costs about what those series
        cost, not the whole model: a what-if asks for one product."""
        wanted = self._check_predict(h, ids)
        return self._finish(self._predict(h, future_exog, wanted), wanted)

    def _check_predict(self, h: int, ids: Collection[str] | None) -> frozenset[str] | None:
        if not self.is_fitted:
            raise ModelNotFittedError(f"{self.family}: call fit before predict")
        if h < 1:
            raise DataValidationError(f"horizon must be at least 1, got {h}")
        return None if ids is None else frozenset(str(uid) for uid in ids)

    def _finish(self, forecast: pd.DataFrame, ids: frozenset[str] | None) -> pd.DataFrame:
        if ids is not None:
            # The contract holds even for a family that forecast more than it was asked for.
            forecast = forecast[forecast[ID].isin(ids)]
        if self.intervals is not None:
            forecast = self.intervals.apply(forecast)
        return tidy_forecast(forecast)

    @abstractmethod
    def _fit(self, frame: SeriesFrame) -> None: ...

    @abstractmethod
    def _predict(self, h: int, future_exog: pd.DataFrame | None, ids: frozenset[str] | None) -> pd.DataFrame:
        """Every series' forecast, or at least those of `ids` when given (see predict)."""

    # Persistence: a JSON manifest plus the family's own state. Subclasses with native formats
    # (LightGBM text models, say) override `_save_state` / `_load_state`.
    def save(self, folder: Path) -> None:
        if not self.is_fitted:
            raise ModelNotFittedError(f"{self.family}: call fit before save")
        folder.mkdir(parents=True, exist_ok=True)
        manifest = {"family": self.family, "freq": self.freq, "params": self.params}
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
        self._save_state(folder)

    @classmethod
    def load(cls, folder: Path) -> Self:
        manifest = json.loads((folder / "manifest.json").read_text())
        if manifest["family"] != cls.family:
            raise DataValidationError(f"{folder} holds a {manifest['family']} model, not {cls.family}")
        model = cls(**manifest["params"])
        model.freq = manifest["freq"]
        model._load_state(folder)
        return model

    def _save_state(self, folder: Path) -> None:
        with (folder / "state.pkl").open("wb") as handle:
            pickle.dump({"model": self._state(), "intervals": self.intervals}, handle, protocol=pickle.HIGHEST_PROTOCOL)

    def _load_state(self, folder: Path) -> None:
        # Only artifacts whose sha256 the registry recorded are ever loaded (registry issue).
        with (folder / "state.pkl").open("rb") as handle:
            state = pickle.load(handle)  # nosec B301: the registry checked this artifact's sha256 before loading it  # nosec B301: the registry checked its sha256
        self._set_state(state["model"])
        self.intervals = state["intervals"]

    def _state(self) -> Any:
        return self._train

    def _set_state(self, state: Any) -> None:
        self._train = state
