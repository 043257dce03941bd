"""Prophet: one additive model per series (trend, weekly and yearly seasonality, the country's public
holidays, promotion and relative-price regressors), fitted in parallel across series.

Each fitted model is kept as Prophet's own JSON serialisation, its stable format across versions, and
every forecast is made from that JSON with a seed fixed per series, so a saved and reloaded model gives
exactly the forecasts of the original. p10/p90 are Prophet's 80 % interval from `uncertainty_samples`
simulated trend paths and noise.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
from joblib import Parallel, delayed  # type: ignore[import-untyped]

from salescast.errors import ConfigurationError
from salescast.features.frame import DS, ID, SeriesFrame, Y
from salescast.models.base import LEVEL, Forecaster, empty_forecast, future_dates, seasonal_period

if TYPE_CHECKING:
    from prophet import Prophet

log = logging.getLogger(__name__)

PROMOTION, PRICE_RATIO = "on_promotion", "price_ratio"
TWO_YEARS = pd.Timedelta(days=730)  # Prophet's own threshold for fitting a yearly cycle
# A fresh worker process spends 2-3 s importing prophet (and its plotting stack) before its first fit,
# while one series fits and predicts in about 0.1 s: below this many series, stay in this process.
# (loky keeps its workers alive between calls, so a long job pays the start-up once.)
PARALLEL_MIN_SERIES = 32


def _quiet_logging() -> None:
    # Prophet logs plotly's absence at ERROR on import and cmdstanpy logs every fit at INFO: noise for a
    # batch job fitting thousands of series. The levels are set before the (lazy) import so that they
    # hold in the joblib workers too, which import this module first.
    logging.getLogger("prophet.plot").setLevel(logging.CRITICAL)
    logging.getLogger("prophet").setLevel(logging.WARNING)
    cmdstanpy_logger = logging.getLogger("cmdstanpy")
    cmdstanpy_logger.setLevel(logging.WARNING)
    # cmdstanpy resets its level to DEBUG and adds its own handler on first use unless one is attached.
    if not cmdstanpy_logger.handlers:
        cmdstanpy_logger.addHandler(logging.NullHandler())


_quiet_logging()


def _prophet_class() -> type[Prophet]:
    # Imported lazily: prophet loads Stan and its plotting stack, which only a Prophet fit should pay for.
    from prophet import Prophet

    # prophet sets its logger to INFO when imported, overriding the level set above.
    logging.getLogger("prophet").setLevel(logging.WARNING)
    return Prophet


@dataclass(frozen=True)
class _Settings:
    """What a worker needs to build one series' model."""

    freq: str
    country: str
    use_exog: bool
    uncertainty_samples: int


@dataclass(frozen=True)
class _SeriesModel:
    """One series' fitted state. `model_json` is None where Prophet could not or need not be fitted
    (fewer than 2 points, a history of zeros, a failed fit): the series then forecasts `fallback`."""

    last_ds: pd.Timestamp
    fallback: float
    model_json: str | None
    regressors: tuple[str, ...]
    reference_price: float | None  # median positive training price; price enters as price / this
    last_price: float | None  # the future price when the plan gives none


def _positive_prices(history: pd.DataFrame) -> pd.Series:
    if "price" not in history:
        return pd.Series(np.nan, index=history.index, dtype="float64")
    price = pd.to_numeric(history["price"], errors="coerce").astype("float64")
    return price.where(price > 0)


def _seasonalities(freq: str, span: pd.Timedelta) -> dict[str, Any]:
    if freq == "D":
        return {"weekly_seasonality": "auto", "yearly_seasonality": "auto"}
    if freq.startswith("W"):
        return {"weekly_seasonality": False, "yearly_seasonality": "auto"}
    # Monthly or quarterly: n points a year determine n/2 yearly harmonics exactly. Fewer leave a ringing
    # error around a sharp month (a December peak); Prophet's "auto" 10 would only alias the first ones.
    order = seasonal_period(freq) // 2
    return {"weekly_seasonality": False, "yearly_seasonality": order if order and span >= TWO_YEARS else False}


def _fit_series(history: pd.DataFrame, settings: _Settings) -> _SeriesModel:
    """Fit one series (ds, y and the exogenous columns); runs in a joblib worker."""
    history = history[history[Y].notna()]
    y = history[Y].to_numpy(dtype="float64")
    last_ds = pd.Timestamp(history[DS].max())
    fallback = float(y[-1]) if len(y) else 0.0
    prices = _positive_prices(history)
    known_prices = prices.dropna()
    reference = float(known_prices.median()) if len(known_prices) else None
    last_price = float(known_prices.iloc[-1]) if len(known_prices) else None

    def unfitted() -> _SeriesModel:
        return _SeriesModel(last_ds, fallback, None, (), reference, last_price)

    if len(y) < 2 or not np.any(y != 0):
        return unfitted()

    train = pd.DataFrame({"ds": history[DS].to_numpy(), "y": y})
    regressors: list[str] = []
    # A regressor constant over the history is inseparable from the level, and its coefficient would
    # then turn any future change (a first promotion, say) into an arbitrary jump: leave it out.
    if settings.use_exog and PROMOTION in history:
        promotion = pd.to_numeric(history[PROMOTION], errors="coerce").fillna(0.0).to_numpy(dtype="float64")
        if np.ptp(promotion) > 0:
            train[PROMOTION] = promotion
            regressors.append(PROMOTION)
    if settings.use_exog and reference is not None:
        ratio = (prices / reference).ffill().bfill().to_numpy(dtype="float64")
        if np.ptp(ratio) > 0:
            train[PRICE_RATIO] = ratio
            regressors.append(PRICE_RATIO)

    model = _prophet_class()(
        growth="linear",
        daily_seasonality=False,
        interval_width=LEVEL / 100,
        uncertainty_samples=settings.uncertainty_samples,
        **_seasonalities(settings.freq, last_ds - pd.Timestamp(history[DS].min())),
    )
    if settings.freq == "D":
        # Holidays are single days: on weekly or monthly dates they would only alias with the period.
        model.add_country_holidays(country_name=settings.country)
    for name in regressors:
        model.add_regressor(name)
    try:
        model.fit(train)
    except RuntimeError as exc:  # Stan's optimiser failed even with Prophet's Newton retry
        log.warning("prophet could not fit a series ending %s (%s); forecasting its last value", last_ds, exc)
        return unfitted()

    from prophet.serialize import model_to_json

    return _SeriesModel(last_ds, fallback, model_to_json(model), tuple(regressors), reference, last_price)


def _predict_series(series: _SeriesModel, future: pd.DataFrame, seed: int) -> pd.DataFrame:
    """p10, p50, p90 for `future` (ds and the regressor columns); runs in a joblib worker."""
    if series.model_json is None:
        values = np.full(len(future), series.fallback)
        return pd.DataFrame({DS: future["ds"].to_numpy(), "p10": values, "p50": values, "p90": values})

    _prophet_class()
    from prophet.serialize import model_from_json

    model = model_from_json(series.model_json)
    # Prophet samples with numpy's global generator; a fixed seed per series makes the interval
    # reproducible (and identical after a save/load), and restoring the state keeps the caller's stream.
    saved = np.random.get_state()
    try:
        np.random.seed(seed)
        forecast = model.predict(future)
    finally:
        np.random.set_state(saved)
    p50 = forecast["yhat"].to_numpy(dtype="float64")
    has_interval = "yhat_lower" in forecast
    return pd.DataFrame(
        {
            DS: forecast["ds"].to_numpy(),
            "p10": forecast["yhat_lower"].to_numpy(dtype="float64") if has_interval else p50,
            "p50": p50,
            "p90": forecast["yhat_upper"].to_numpy(dtype="float64") if has_interval else p50,
        }
    )


def _series_seed(seed: int, uid: str) -> int:
    # From the id, not the position: a series' interval must not change when other series come or go.
    return (seed + zlib.crc32(uid.encode())) % 2**32


class ProphetModel(Forecaster):
    """One Prophet model per series.

    `country`: the public-holiday calendar (daily data only). `use_exog`: add the promotion flag and the
    price relative to the series' median price as regressors where a series' history varies in them.
    `uncertainty_samples`: simulated paths behind p10/p90 (0: no sampling, p10 = p90 = p50).
    `n_jobs`: worker processes for fitting and predicting. `seed`: fixes the sampled intervals.
    """

    family = "prophet"
    uses_exog: ClassVar[bool] = True

    def __init__(
        self,
        country: str = "US",
        n_jobs: int = 2,
        use_exog: bool = True,
        uncertainty_samples: int = 200,
        seed: int = 0,
        **params: Any,
    ) -> None:
        super().__init__(
            country=country,
            n_jobs=n_jobs,
            use_exog=use_exog,
            uncertainty_samples=uncertainty_samples,
            seed=seed,
            **params,
        )
        self._series: dict[str, _SeriesModel] = {}

    def _parallel(self, tasks: int) -> Parallel:
        n_jobs = int(self.params["n_jobs"])
        if tasks < PARALLEL_MIN_SERIES:
            n_jobs = 1
        elif n_jobs > 0:
            n_jobs = min(n_jobs, tasks)
        return Parallel(n_jobs=n_jobs, backend="loky")

    def _fit(self, frame: SeriesFrame) -> None:
        settings = _Settings(
            freq=frame.freq,
            country=str(self.params["country"]),
            use_exog=bool(self.params["use_exog"]),
            uncertainty_samples=int(self.params["uncertainty_samples"]),
        )
        if frame.freq == "D":
            _check_country(settings.country)
        columns = [DS, Y, *[c for c in ("price", PROMOTION) if c in frame.data]]
        groups = [(str(uid), group[columns]) for uid, group in frame.data.groupby(ID, sort=False)]
        fitted: list[_SeriesModel] = self._parallel(len(groups))(
            delayed(_fit_series)(history, settings) for _, history in groups
        )
        self._series = {uid: series for (uid, _), series in zip(groups, fitted, strict=True)}

    def _future(self, h: int, future_exog: pd.DataFrame | None, ids: frozenset[str] | None) -> pd.DataFrame:
        """unique_id, ds and the regressor values of the series `ids` (None: all): the plan where it has
        them, else no promotion and the last known price."""
        assert self.freq is not None
        series = {uid: s for uid, s in self._series.items() if ids is None or uid in ids}
        if not series:
            return pd.DataFrame(columns=[ID, DS, "price", PROMOTION])
        last = pd.DataFrame({ID: list(series), DS: [s.last_ds for s in series.values()]})
        future = future_dates(SeriesFrame(last, self.freq), h)
        future[PROMOTION] = 0.0
        future["price"] = future[ID].map({uid: s.last_price for uid, s in series.items()}).astype("float64")
        if future_exog is None or future_exog.empty:
            return future
        plan = future_exog[[c for c in (ID, DS, "price", PROMOTION) if c in future_exog]].copy()
        plan[ID] = plan[ID].astype(str)
        plan[DS] = pd.to_datetime(plan[DS])
        merged = future.merge(
            plan.rename(columns={"price": "price_plan", PROMOTION: "promotion_plan"}), on=[ID, DS], how="left"
        )
        if "price_plan" in merged:
            planned = pd.to_numeric(merged["price_plan"], errors="coerce").astype("float64")
            merged["price"] = planned.where(planned > 0).fillna(merged["price"])
        if "promotion_plan" in merged:
            planned = pd.to_numeric(merged["promotion_plan"], errors="coerce").astype("float64")
            merged[PROMOTION] = planned.fillna(merged[PROMOTION])
        return merged[[ID, DS, "price", PROMOTION]]

    def _predict(self, h: int, future_exog: pd.DataFrame | None, ids: frozenset[str] | None) -> pd.DataFrame:
        future = self._future(h, future_exog, ids)
        if future.empty:
            return empty_forecast()
        seed = int(self.params["seed"])
        tasks = []
        for uid, rows in future.groupby(ID, sort=False):
            series = self._series[str(uid)]
            inputs = pd.DataFrame({"ds": rows[DS].to_numpy()})
            if PROMOTION in series.regressors:
                inputs[PROMOTION] = rows[PROMOTION].to_numpy(dtype="float64")
            if PRICE_RATIO in series.regressors:
                assert series.reference_price is not None
                inputs[PRICE_RATIO] = rows["price"].to_numpy(dtype="float64") / series.reference_price
            tasks.append((str(uid), series, inputs))
        forecasts: list[pd.DataFrame] = self._parallel(len(tasks))(
            delayed(_predict_series)(series, inputs, _series_seed(seed, uid)) for uid, series, inputs in tasks
        )
        parts = [forecast.assign(**{ID: uid}) for (uid, _, _), forecast in zip(tasks, forecasts, strict=True)]
        return pd.concat(parts, ignore_index=True)

    def _state(self) -> Any:
        return {"series": self._series}

    def _set_state(self, state: Any) -> None:
        self._series = state["series"]


def _check_country(country: str) -> None:
    """Fail once, up front, rather than in every worker."""
    _prophet_class()
    from prophet.make_holidays import get_country_holidays_class

    try:
        get_country_holidays_class(country)
    except AttributeError as exc:
        raise ConfigurationError(f"prophet: no holiday calendar for country {country!r}") from exc
