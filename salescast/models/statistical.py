"""Local statistical models from statsforecast: the SeasonalNaive baseline, ETS/Theta/ARIMA, and the
intermittent-demand methods chosen per series by demand pattern.

Given a `dask.distributed` client, the per-series fits run on the cluster through statsforecast's Fugue
backend, which partitions the history by series; without one they run in this process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
from statsforecast import StatsForecast
from statsforecast.models import (
    ADIDA,
    IMAPA,
    MSTL,
    AutoARIMA,
    AutoETS,
    AutoTheta,
    CrostonOptimized,
    Naive,
    SeasonalNaive,
)
from statsforecast.utils import ConformalIntervals

from salescast.features.frame import DS, ID, SeriesFrame, Y
from salescast.models.base import LEVEL, Forecaster, empty_forecast, future_dates, seasonal_period, yearly_period

if TYPE_CHECKING:
    from distributed import Client

# Syntetos-Boylan-Croston classification thresholds on the average inter-demand interval (ADI) and
# the squared coefficient of variation of the non-zero demand sizes (CV²).
ADI_CUTOFF = 1.32
CV2_CUTOFF = 0.49


def demand_pattern(y: np.ndarray) -> str:
    """`smooth`, `erratic`, `intermittent` or `lumpy` (SBC classification); `zero` if it never sold."""
    nonzero = y[y > 0]
    if len(nonzero) == 0:
        return "zero"
    adi = len(y) / len(nonzero)
    cv2 = float((nonzero.std() / nonzero.mean()) ** 2) if len(nonzero) > 1 else 0.0
    if adi < ADI_CUTOFF:
        return "smooth" if cv2 < CV2_CUTOFF else "erratic"
    return "intermittent" if cv2 < CV2_CUTOFF else "lumpy"


def demand_patterns(frame: SeriesFrame) -> pd.Series:
    return frame.data.groupby(ID, sort=False)[Y].apply(lambda s: demand_pattern(s.to_numpy()))


class _StatsForecastFamily(Forecaster):
    """Shared plumbing: fit one statsforecast model per series group and predict with an 80 % interval."""

    min_history_seasons: ClassVar[int] = 2

    def __init__(self, client: Client | None = None, **params: Any) -> None:
        # The client says where to fit, not what to learn: it is no parameter and is never saved.
        self.client = client
        super().__init__(**params)

    def _models_for(self, pattern: str, season: int, h: int) -> Any:
        raise NotImplementedError

    def _groups(self, frame: SeriesFrame) -> dict[str, list[str]]:
        return {"all": list(frame.ids)}

    def _fit(self, frame: SeriesFrame) -> None:
        # statsforecast fits at predict time (forecast()), which is its fast path: keep the history.
        self._train = SeriesFrame(frame.data[[ID, DS, Y]], frame.freq, frame.static)
        self._patterns = {uid: group for group, ids in self._groups(frame).items() for uid in ids}

    def _predict(self, h: int, future_exog: pd.DataFrame | None, ids: frozenset[str] | None) -> pd.DataFrame:
        assert self._train is not None
        history = self._history(ids).data
        season = seasonal_period(self._train.freq)
        parts = []
        for group, members in self._group_ids().items():
            if ids is not None:
                members = [uid for uid in members if uid in ids]
            if not members:
                continue
            data = history[history[ID].isin(set(members))]
            model = self._models_for(group, season, h)
            shortest = int(data.groupby(ID, sort=False).size().min())
            fallback = _fallback(season, shortest)
            sf = StatsForecast(models=[model], freq=self._train.freq, n_jobs=1, fallback_model=fallback)
            forecast = self._forecast(sf, data, h)
            parts.append(_rename(forecast, model.alias))
        return pd.concat(parts, ignore_index=True) if parts else empty_forecast()

    def _history(self, ids: frozenset[str] | None) -> SeriesFrame:
        """The kept history of the series `ids` (None: all); these families fit at predict time, so a
        few series cost only their own fits."""
        assert self._train is not None
        return self._train if ids is None else self._train.subset(sorted(ids))

    def _forecast(self, sf: StatsForecast, data: pd.DataFrame, h: int) -> pd.DataFrame:
        """statsforecast fits at forecast time, so this is where a client puts the per-series work on the cluster."""
        if self.client is None:
            return sf.forecast(h=h, df=data, level=[LEVEL])
        import dask.dataframe as dd
        import fugue.api as fa

        workers = max(1, len(self.client.nthreads()))
        partitions = max(1, min(data[ID].nunique(), workers))
        with fa.engine_context(self.client):
            forecast: pd.DataFrame = fa.as_pandas(
                sf.forecast(h=h, df=dd.from_pandas(data, npartitions=partitions), level=[LEVEL])
            )
        # Fugue's output schema is float32 and Arrow-typed: back to the local path's dtypes.
        values = [column for column in forecast.columns if column not in (ID, DS)]
        return forecast.astype({ID: object, DS: data[DS].dtype, **dict.fromkeys(values, "float64")})

    def _group_ids(self) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for uid, group in self._patterns.items():
            groups.setdefault(group, []).append(uid)
        return groups

    def _state(self) -> Any:
        return {"train": self._train, "patterns": self._patterns}

    def _set_state(self, state: Any) -> None:
        self._train, self._patterns = state["train"], state["patterns"]


def _fallback(season: int, shortest: int) -> Any:
    """What statsforecast forecasts a series with when its model fails on it: SeasonalNaive, or Naive
    when a series of the group has no value a season back (SeasonalNaive would leave it NaN)."""
    if shortest > season:
        return SeasonalNaive(season_length=season, alias="fallback")
    return Naive(alias="fallback")


def _rename(forecast: pd.DataFrame, alias: str) -> pd.DataFrame:
    forecast = forecast.reset_index() if ID not in forecast.columns else forecast
    return pd.DataFrame(
        {
            ID: forecast[ID].astype(str),
            DS: forecast[DS],
            "p50": forecast[alias].to_numpy(),
            "p10": forecast[f"{alias}-lo-{LEVEL}"].to_numpy(),
            "p90": forecast[f"{alias}-hi-{LEVEL}"].to_numpy(),
        }
    )


class SeasonalNaiveModel(_StatsForecastFamily):
    """The baseline every report shows: the value one season ago.

    Computed for all series at once in numpy, with statsforecast's normal intervals (the in-sample
    seasonal-difference sigma, widened by sqrt(seasons ahead)). A series with no value a season back
    (a season or less of history) falls back to the mean of what exists, with its standard deviation
    as sigma: the baseline never leaves a series unforecast."""

    family = "seasonal_naive"

    def _models_for(self, pattern: str, season: int, h: int) -> Any:
        return SeasonalNaive(season_length=season, alias="SeasonalNaive")

    def _predict(self, h: int, future_exog: pd.DataFrame | None, ids: frozenset[str] | None) -> pd.DataFrame:
        assert self._train is not None
        history = self._history(ids)
        if history.data.empty:
            return empty_forecast()
        return _seasonal_naive(history, seasonal_period(self._train.freq), h)


Z_90 = 1.2815515655446004  # standard normal 0.9 quantile: the 80 % interval's half-width in sigmas


def _seasonal_naive(frame: SeriesFrame, season: int, h: int) -> pd.DataFrame:
    """SeasonalNaive of every series, rows sorted by series and date; the mean of the history for a
    series of a season or less."""
    data = frame.data.sort_values([ID, DS], kind="stable")
    ids = data[ID].to_numpy()
    y = data[Y].to_numpy(dtype="float64")
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    ends = np.r_[starts[1:], len(y)]
    lengths = ends - starts
    seasonal = lengths > season
    steps = np.arange(h)
    # Index of the value a season back for each step (clipped into the series for the short ones,
    # whose rows are replaced below).
    back = np.maximum(ends[:, None] - season + (steps % season)[None, :], starts[:, None])
    mean = y[back]
    owner = np.repeat(np.arange(len(starts)), lengths)
    position = np.arange(len(y)) - np.repeat(starts, lengths)
    valid = position[season:] >= season
    squared = ((y[season:] - y[:-season]) ** 2)[valid]
    seasonal_sse = np.bincount(owner[season:][valid], weights=squared, minlength=len(starts))
    sigma = np.sqrt(np.divide(seasonal_sse, lengths - season, out=np.zeros(len(starts)), where=seasonal))
    widen = np.sqrt(np.floor(steps / season) + 1)[None, :]
    # The short series: the mean of what exists, its standard deviation as sigma, not widened.
    sums = np.bincount(owner, weights=y, minlength=len(starts))
    level = sums / lengths
    spread = np.sqrt(np.bincount(owner, weights=(y - level[owner]) ** 2, minlength=len(starts)) / lengths)
    mean = np.where(seasonal[:, None], mean, level[:, None])
    half_width = Z_90 * np.where(seasonal[:, None], sigma[:, None] * widen, spread[:, None])
    dates = future_dates(SeriesFrame(data, frame.freq, frame.static), h)
    return pd.DataFrame(
        {
            ID: dates[ID].astype(str).to_numpy(),
            DS: dates[DS].to_numpy(),
            "p50": mean.ravel(),
            "p10": (mean - half_width).ravel(),
            "p90": (mean + half_width).ravel(),
        }
    )


class StatisticalModel(_StatsForecastFamily):
    """A local model per series, chosen by demand pattern.

    Smooth and erratic series get `method` (AutoETS by default, or AutoTheta / AutoARIMA); intermittent
    series get Croston (optimised), lumpy ones IMAPA, and series too sparse for either ADIDA.
    Intervals are conformal (from `n_windows` calibration windows) for the methods with none of their own.
    """

    family = "stats"

    def __init__(self, method: str = "ets", n_windows: int = 2, **params: Any) -> None:
        super().__init__(method=method, n_windows=n_windows, **params)

    def _groups(self, frame: SeriesFrame) -> dict[str, list[str]]:
        patterns = demand_patterns(frame)
        groups: dict[str, list[str]] = {}
        for uid, pattern in patterns.items():
            group = {"smooth": "continuous", "erratic": "continuous"}.get(pattern, pattern)
            groups.setdefault(group, []).append(str(uid))
        return groups

    def _models_for(self, pattern: str, season: int, h: int) -> Any:
        conformal = ConformalIntervals(h=h, n_windows=int(self.params["n_windows"]))
        if pattern == "continuous":
            method = self.params["method"]
            if method == "theta":
                return AutoTheta(season_length=season, alias="continuous")
            if method == "arima":
                return AutoARIMA(season_length=season, alias="continuous")
            if method == "mstl":
                # A long season decomposed by STL, its trend carried by a non-seasonal ETS: suits weekly
                # data's 52-week year, which AutoETS cannot take as a season.
                return MSTL(season_length=season, trend_forecaster=AutoETS(model="ZZN"), alias="continuous")
            return AutoETS(season_length=season, alias="continuous")
        if pattern == "intermittent":
            return CrostonOptimized(alias="intermittent", prediction_intervals=conformal)
        if pattern == "lumpy":
            return IMAPA(alias="lumpy", prediction_intervals=conformal)
        return ADIDA(alias=pattern, prediction_intervals=conformal)


def level_window(freq: str) -> int:
    """Periods that define a series' current level: four weeks, a quarter of weeks, three months."""
    return 28 if freq == "D" else 13 if freq.startswith("W") else 3


class SeasonalAverageModel(_StatsForecastFamily):
    """Last year's and the year before's same period, averaged and shifted to the recent level.

    forecast(T + i) = mean over k in (1, 2) of [y(T + i - k·year) - level_k] + level, where level is the
    mean of the last `level_window` periods and level_k the mean of the same window k years earlier:
    the yearly shape of the series (Christmas, summer) on its current level, steadier than one year's
    SeasonalNaive. A series with less than a year (plus the window) falls back to SeasonalNaive of the
    main season, or to its mean (see `_seasonal_naive`)."""

    family = "seasonal_average"

    def __init__(self, years: int = 2, **params: Any) -> None:
        super().__init__(years=years, **params)

    def _predict(self, h: int, future_exog: pd.DataFrame | None, ids: frozenset[str] | None) -> pd.DataFrame:
        assert self._train is not None
        history = self._history(ids)
        if history.data.empty:
            return empty_forecast()
        freq = self._train.freq
        fallback = _seasonal_naive(history, seasonal_period(freq), h)
        data = history.data.sort_values([ID, DS], kind="stable")
        ids_array = data[ID].to_numpy()
        y = data[Y].to_numpy(dtype="float64")
        starts = np.flatnonzero(np.r_[True, ids_array[1:] != ids_array[:-1]])
        ends = np.r_[starts[1:], len(y)]
        year, window = yearly_period(freq), level_window(freq)
        cumulative = np.r_[0.0, np.cumsum(y)]

        def window_mean(last: np.ndarray) -> np.ndarray:  # mean of y[last - window + 1 .. last]
            means: np.ndarray = (cumulative[last + 1] - cumulative[last + 1 - window]) / window
            return means

        level = window_mean(ends - 1)
        steps = np.arange(1, h + 1)
        total = np.zeros((len(starts), h))
        count = np.zeros((len(starts), h))
        for k in range(1, int(self.params["years"]) + 1):
            back_end = ends - 1 - k * year  # the period a year (k years) before the last
            usable = back_end - window + 1 >= starts  # its level window lies inside the series
            source = back_end[:, None] + steps[None, :]  # the same periods k years ago
            inside = usable[:, None] & (source < ends[:, None])
            shifted = y[np.clip(source, 0, len(y) - 1)] - window_mean(np.clip(back_end, window - 1, None))[:, None]
            total += np.where(inside, shifted, 0.0)
            count += inside
        yearly = count > 0
        mean = np.where(yearly, level[:, None] + total / np.maximum(count, 1), 0.0).ravel()
        use = yearly.ravel()
        p50 = np.where(use, mean, fallback["p50"].to_numpy())
        half = (fallback["p90"].to_numpy() - fallback["p10"].to_numpy()) / 2
        return fallback.assign(p50=p50, p10=p50 - half, p90=p50 + half)
