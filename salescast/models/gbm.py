"""Global gradient-boosted models (LightGBM, XGBoost) over all series at once, through mlforecast.

One model learns from every series: lags, rolling statistics, calendar and holiday features, price
relative to the series' usual price, promotion flags and the static category and store. Each series'
target is scaled on its own (standard scaling by default for LightGBM), so that one model serves series
of any size.

LightGBM's default loss is L1 on the scaled target, so its point forecast is the median (the `p50` it
reports, and what MASE and WAPE reward); the loss weights each series by 1 / its standard deviation,
close to MASE's own scaling. On skewed and intermittent sales the median lies below the mean, so the
bias metric reads negative: `objective="tweedie"` with `scaler="mean"` forecasts the mean instead.
XGBoost keeps the seed's Tweedie loss on min-max scaled targets.

Local training is lean on memory: the target and features are float32, the feature table is built once
by mlforecast and handed to the booster as one float32 matrix, and only the last `train_periods` rows of
each series (400 days by default) are trained on; the lags still see the whole history.

Given a `dask.distributed` client, the features are built on the cluster, one partition of whole series
per task, and the booster is trained by the library's own Dask estimator; the fitted pipeline then comes
back as a local `MLForecast`, so predicting, saving and loading do not depend on the cluster.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import coreforecast.scalers as core_scalers  # type: ignore[import-untyped]
import lightgbm as lgb
import numpy as np
import pandas as pd
import xgboost as xgb
from mlforecast import MLForecast
from mlforecast.lag_transforms import RollingMax, RollingMean, RollingMin, RollingStd
from mlforecast.target_transforms import LocalMinMaxScaler, LocalStandardScaler
from mlforecast.target_transforms import _BaseLocalScaler as _MLForecastLocalScaler

from salescast.errors import ConfigurationError
from salescast.features.calendar import calendar_features
from salescast.features.frame import DS, ID, SeriesFrame, Y
from salescast.models.base import Forecaster, empty_forecast, future_dates

if TYPE_CHECKING:
    import dask.dataframe as dd
    from distributed import Client

STATIC = ("store", "category")
SMALL_TRAINING_ROWS = 200_000
NON_NEGATIVE_OBJECTIVES = frozenset({"tweedie", "poisson", "reg:tweedie", "count:poisson"})
# Fewer series than this are predicted on one thread (see _threads_for_predict).
FEW_SERIES = 100


def lags_for(freq: str, history: int, seasons: int = 1) -> list[int]:
    """Lags of a week, two, four and a year (daily), scaled to weekly and monthly data, plus the same
    period `seasons` years back, that history allows."""
    if freq == "D":
        candidates, year = [1, 7, 14, 28, 364], 364
    elif freq.startswith("W"):
        candidates, year = [1, 2, 4, 52], 52
    else:
        candidates, year = [1, 2, 3, 12], 12
    candidates += [year * k for k in range(2, seasons + 1)]
    return [lag for lag in candidates if lag < history]


def rolling_for(freq: str) -> dict[int, list[Any]]:
    windows = [7, 28] if freq == "D" else [4, 13] if freq.startswith("W") else [3, 12]
    transforms: list[Any] = []
    for window in windows:
        transforms += [RollingMean(window), RollingStd(window), RollingMin(window), RollingMax(window)]
    return {1: transforms}


def date_features_for(freq: str, country: str) -> list[Any]:
    if freq == "D":
        return calendar_features(country)
    if freq.startswith("W"):
        return ["week", "month", "quarter"]
    return ["month", "quarter"]


class _CoreMeanScaler(core_scalers._BaseLocalScaler):  # type: ignore[misc]
    """Divides each series by its mean (1 where the mean is 0): non-negative, as the Tweedie loss needs."""

    def fit(self, ga: Any) -> _CoreMeanScaler:
        data = np.asarray(ga.data, dtype="float64")
        indptr = np.asarray(ga.indptr)
        sums = np.add.reduceat(data, indptr[:-1]) if len(data) else np.zeros(len(indptr) - 1)
        counts = np.diff(indptr)
        sums[counts == 0] = 0.0
        mean = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
        scale = np.where(mean > 0, mean, 1.0)
        self.stats_ = np.column_stack([np.zeros_like(scale), scale]).astype(ga.data.dtype)
        return self


class LocalMeanScaler(_MLForecastLocalScaler):
    """mlforecast target transform: y / mean(y) per series."""

    scaler_factory = _CoreMeanScaler


SCALERS = ("standard", "mean", "minmax", "none")


def _scalers(name: str) -> list[Any] | None:
    """Per-series target scaling, so that one global model serves series of any size. `standard` (y minus
    its mean, over its standard deviation) suits the L1 loss; `mean` and `minmax` keep the target
    non-negative, as the Tweedie loss needs."""
    if name == "none":
        return None
    if name == "standard":
        return [LocalStandardScaler()]
    if name == "mean":
        return [LocalMeanScaler()]
    if name == "minmax":
        return [LocalMinMaxScaler()]
    raise ConfigurationError(f"unknown scaler {name!r}; use one of {', '.join(SCALERS)}")


def train_periods_for(freq: str) -> int | None:
    """Rows per series the booster trains on: the last 400 days of daily data (a year and a month, each
    row with its year-ago lag; more rows cost time and bought no accuracy on the benchmarks); all rows of
    coarser data, which has few."""
    return 400 if freq == "D" else None


def _last_rows(ids: np.ndarray, periods: int) -> np.ndarray:
    """Mask of each series' last `periods` rows, for rows sorted by series and date."""
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]) if len(ids) else np.zeros(0, dtype="int64")
    ends = np.r_[starts[1:], len(ids)]
    from_end = np.repeat(ends, ends - starts) - np.arange(len(ids))  # 1 on a series' last row
    mask: np.ndarray = from_end <= periods
    return mask


def _float32_matrix(table: pd.DataFrame, columns: list[str], rows: np.ndarray | None = None) -> np.ndarray:
    """The columns as one column-major float32 matrix, categoricals as their codes (NaN for missing): one
    copy of the data, which LightGBM reads without another."""
    n = len(table) if rows is None else int(rows.sum())
    matrix = np.empty((n, len(columns)), dtype="float32", order="F")
    for j, column in enumerate(columns):
        values = table[column]
        if isinstance(values.dtype, pd.CategoricalDtype):
            codes = values.cat.codes.to_numpy()
            column_values = np.where(codes < 0, np.nan, codes).astype("float32")
        else:
            column_values = values.to_numpy(dtype="float32", na_value=np.nan)
        matrix[:, j] = column_values if rows is None else column_values[rows]
    return matrix


class BoosterRegressor:
    """A trained LightGBM booster that predicts from mlforecast's feature frames (mlforecast only calls
    `predict`), reading them the way training read its matrix."""

    def __init__(self, booster: lgb.Booster, features: list[str], num_threads: int = 1) -> None:
        self.booster = booster
        self.features = features
        self.num_threads = num_threads

    def predict(self, X: pd.DataFrame) -> np.ndarray:  # noqa: N803 (the scikit-learn name)
        matrix = _float32_matrix(X, self.features)
        return np.asarray(self.booster.predict(matrix, num_threads=self.num_threads))


def _running_mean_price(ids: pd.Series, price: pd.Series) -> pd.Series:
    """Mean of the positive prices seen so far in each series (rows sorted by series and date)."""
    positive = price.where(price > 0)
    total = positive.fillna(0.0).groupby(ids, sort=False).cumsum()
    count = positive.notna().astype("int64").groupby(ids, sort=False).cumsum()
    return (total / count.where(count > 0)).astype("float64")


def _series_partitions(data: pd.DataFrame, partitions: int) -> dd.DataFrame:
    """A Dask frame of about equal partitions of whole series, one per worker. mlforecast's own
    repartitioning hashes series ids, which can leave a worker with one series; data-parallel LightGBM
    then bins the features that worker is assigned from that series alone."""
    import dask.dataframe as dd

    ordered = data.sort_values([ID, DS], kind="stable")
    # On an index of series ids, Dask's divisions never split a series.
    ordered.index = pd.Index(ordered[ID].to_numpy(), dtype=object)
    return dd.from_pandas(ordered, npartitions=max(1, min(partitions, ordered[ID].nunique())), sort=True)


class GradientBoostedModel(Forecaster):
    """Shared by the LightGBM and XGBoost families; `_regressor` picks the library."""

    uses_exog = True
    engine: ClassVar[str]
    # The family's parameters unless overridden (n_estimators, learning_rate, num_leaves, scaler, ...).
    defaults: ClassVar[dict[str, Any]]

    def __init__(
        self,
        country: str = "US",
        seed: int = 0,
        num_threads: int = 2,
        client: Client | None = None,
        **params: Any,
    ) -> None:
        # The client says where to train, not what to learn: it is no parameter and is never saved.
        self.client = client
        super().__init__(
            **{**self.defaults, **params},
            country=country,
            seed=seed,
            num_threads=num_threads,
        )
        self._forecaster: MLForecast | None = None
        self._threads = num_threads
        self._reference_price: pd.Series | None = None
        self._last_exog: pd.DataFrame | None = None
        self._static: pd.DataFrame | None = None
        self._lookback = 0

    def _regressor(self) -> Any:
        raise NotImplementedError

    def _features(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Model inputs from (unique_id, ds[, y], price, on_promotion): price relative to the series' usual."""
        assert self._reference_price is not None and self._static is not None
        out = frame[[ID, DS, *([Y] if Y in frame else [])]].copy()
        if Y in out:
            out[Y] = out[Y].astype("float32")  # lags and rolling statistics follow the target's dtype
        price = frame["price"] if "price" in frame else pd.Series(np.nan, index=frame.index)
        # History: the usual price so far (point in time, no feature sees the future); future: the usual
        # price at the end of the history.
        reference = _running_mean_price(frame[ID], price) if Y in frame else out[ID].map(self._reference_price)
        out["price_ratio"] = (price / reference).astype("float32")
        promotion = frame["on_promotion"] if "on_promotion" in frame else pd.Series(0.0, index=frame.index)
        out["on_promotion"] = promotion.fillna(0).astype("float32")
        if Y in out:  # static columns go with the history only; mlforecast carries them into the future
            static = self._static.set_index(ID)
            for column in STATIC:
                out[column] = out[ID].map(static[column]).astype(static[column].dtype)
        return out

    def _prepare(self, frame: SeriesFrame) -> tuple[MLForecast, pd.DataFrame]:
        """An unfitted mlforecast pipeline and its input frame for `frame`."""
        data = frame.data
        price = data["price"] if "price" in data else pd.Series(np.nan, index=data.index)
        self._reference_price = _running_mean_price(data[ID], price).groupby(data[ID], sort=False).last()
        static = frame.static.set_index(ID).reindex(frame.ids) if len(frame.static.columns) > 1 else None
        self._static = pd.DataFrame(
            {
                ID: frame.ids,
                **{
                    column: pd.Categorical(
                        static[column].fillna("unknown").to_numpy()
                        if static is not None and column in static
                        else np.full(len(frame.ids), "unknown")
                    )
                    for column in STATIC
                },
            }
        )
        history = int(frame.lengths().median())
        lags = lags_for(frame.freq, history, int(self.params.get("season_lags", 1)))
        rolling = rolling_for(frame.freq)
        # Rows of history the features of one row read: the longest lag, or a rolling window after its lag.
        self._lookback = max([*lags, *(lag + t.window_size for lag, ts in rolling.items() for t in ts)])
        # Small training sets gain nothing from a second OpenMP thread, and spinning threads slow to a
        # crawl when another process shares the cores.
        self._threads = int(self.params["num_threads"]) if len(data) >= SMALL_TRAINING_ROWS else 1
        forecaster = MLForecast(
            models={self.family: self._regressor()},
            freq=frame.freq,
            lags=lags,
            lag_transforms=rolling,
            date_features=date_features_for(frame.freq, str(self.params["country"])),
            num_threads=self._threads,
            target_transforms=_scalers(str(self.params["scaler"])),
        )
        return forecaster, self._features(data)

    def feature_table(self, frame: SeriesFrame) -> pd.DataFrame:
        """The training rows with every feature the model sees (for inspection and leakage tests)."""
        forecaster, train = self._prepare(frame)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Found null values in")
            table = forecaster.preprocess(train, static_features=list(STATIC), dropna=False)
        assert isinstance(table, pd.DataFrame)
        return table

    def _fit(self, frame: SeriesFrame) -> None:
        if str(self.params.get("objective", "")) in NON_NEGATIVE_OBJECTIVES and (frame.data[Y] < 0).any():
            # Tweedie and Poisson losses model demand, which is never negative: net returns (kept by
            # `negative_sales = keep`) count as no sales for them rather than stopping the fit.
            frame = SeriesFrame(frame.data.assign(**{Y: frame.data[Y].clip(lower=0)}), frame.freq, frame.static)
        if self.client is not None:
            self._forecaster = self._fit_distributed(frame, self.client)
        else:
            self._forecaster = self._fit_local(frame)
        last = frame.data.groupby(ID, sort=False).tail(1)
        self._last_exog = last[[ID, DS, *[c for c in ("price", "on_promotion") if c in last]]].reset_index(drop=True)

    def _fit_local(self, frame: SeriesFrame) -> MLForecast:
        """mlforecast builds the feature table once (float32) from the history the training rows need;
        the booster trains on each series' last `train_periods` rows."""
        forecaster, train = self._prepare(frame)
        periods = self._train_periods(frame.freq)
        if periods is not None:
            # Older rows feed no feature of a training row: leave them out of the feature table.
            train = train[_last_rows(train[ID].to_numpy(), periods + self._lookback)].reset_index(drop=True)
        with warnings.catch_warnings():
            # dropna=False: young series have NaN lags rather than no rows; the trees handle NaN.
            warnings.filterwarnings("ignore", message="Found null values in")
            table = forecaster.preprocess(train, static_features=list(STATIC), dropna=False)
        assert isinstance(table, pd.DataFrame)
        del train
        features = [column for column in table.columns if column not in (ID, DS, Y)]
        rows = None if periods is None else _last_rows(table[ID].to_numpy(), periods)
        training = self._training_set(table, features, rows)
        del table  # the training set holds its own (smaller) copy
        forecaster.models_ = {self.family: self._train_booster(training)}
        return forecaster

    def _train_periods(self, freq: str) -> int | None:
        periods = self.params.get("train_periods", "auto")
        return train_periods_for(freq) if periods == "auto" else (None if periods is None else int(periods))

    def _training_rows(self, table: pd.DataFrame, freq: str) -> np.ndarray | None:
        """Each series' last `train_periods` rows of a feature table (None: all rows)."""
        periods = self._train_periods(freq)
        return None if periods is None else _last_rows(table[ID].to_numpy(), periods)

    def _training_set(self, table: pd.DataFrame, features: list[str], rows: np.ndarray | None) -> Any:
        data = table if rows is None else table[rows]
        return data[features], data[Y].to_numpy()

    def _train_booster(self, training: Any) -> Any:
        """The fitted regressor mlforecast predicts with; XGBoost's goes through its scikit-learn API."""
        features, target = training
        return self._regressor().fit(features, target)

    def _fit_distributed(self, frame: SeriesFrame, client: Client) -> MLForecast:
        """The same features and booster as the local fit, computed on the Dask cluster.

        `DistributedMLForecast.preprocess` builds the features per partition of whole series; the booster
        is trained on that Dask frame by `_fit_on_dask`; `to_local` then gathers the series state
        (last values, scalers) into a plain `MLForecast` holding the local booster.
        """
        from mlforecast.distributed import DistributedMLForecast

        local, train = self._prepare(frame)  # the local pipeline's settings, so that both build the same features
        categorical = {column: train[column].dtype for column in STATIC}
        workers = max(1, len(client.nthreads()))
        # Fugue, under the distributed pipeline, cannot carry pandas categoricals: the static columns
        # travel as strings and get their categories back before training and after `to_local`.
        data = _series_partitions(train.astype(dict.fromkeys(STATIC, str)), workers)
        settings = local.ts
        pipeline = DistributedMLForecast(
            models={},
            freq=settings.freq,
            lags=settings.lags,
            lag_transforms=settings.lag_transforms,
            date_features=settings.date_features,
            num_threads=settings.num_threads,
            target_transforms=settings.target_transforms,
            engine=client,
        )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Found null values in")
            table = pipeline.preprocess(data, static_features=list(STATIC), dropna=False)
        features = [column for column in table.columns if column not in (ID, DS, Y)]
        # Fugue hands back nullable (Arrow) dtypes; XGBoost's Dask path is orders of magnitude slower on
        # them, and NaN floats are what the local fit sees.
        numeric = {column: "float64" for column in [*features, Y] if column not in STATIC}
        table = table.astype({**numeric, **categorical})
        pipeline.models_ = {self.family: self._fit_on_dask(table[features], table[Y], client)}
        fitted = pipeline.to_local()
        ts = fitted.ts
        ts.uids = pd.Index(np.asarray(ts.uids, dtype=str), dtype=object)
        ts.last_dates = pd.DatetimeIndex(ts.last_dates).as_unit("ns")
        ts.static_features_ = ts.static_features_.astype({ID: object, **categorical})
        # The partitions carry DistributedMLForecast's feature namer, a closure that cannot be pickled; for
        # these transforms (whole-number windows) it names the features as the local pipeline's does.
        ts.lag_transforms_namer = settings.lag_transforms_namer
        return fitted

    def _fit_on_dask(self, features: dd.DataFrame, target: dd.Series, client: Client) -> Any:
        """Train the library's Dask estimator on the feature table; returns the fitted local regressor."""
        raise NotImplementedError

    def _future_exog(self, h: int, future_exog: pd.DataFrame | None, ids: list[str] | None) -> pd.DataFrame:
        """Future price and promotion of the series `ids` (None: all): the plan when given, else the
        last price and no promotion."""
        assert self._last_exog is not None and self.freq is not None
        last = self._last_exog if ids is None else self._last_exog[self._last_exog[ID].isin(ids)]
        future = future_dates(SeriesFrame(last[[ID, DS]], self.freq), h)
        defaults = future.merge(last.drop(columns=[DS]), on=ID, how="left").assign(on_promotion=0.0)
        if "price" not in defaults:
            defaults["price"] = np.nan
        if future_exog is None or future_exog.empty:
            return defaults
        planned = [c for c in ("price", "on_promotion") if c in future_exog]
        plan = future_exog[[ID, DS, *planned]].rename(columns={c: f"{c}_plan" for c in planned})
        merged = defaults.merge(plan, on=[ID, DS], how="left")
        for column in planned:
            merged[column] = merged[f"{column}_plan"].fillna(merged[column])
        return merged[[ID, DS, "price", "on_promotion"]]

    def _predict(self, h: int, future_exog: pd.DataFrame | None, ids: frozenset[str] | None) -> pd.DataFrame:
        assert self._forecaster is not None
        known = None
        if ids is not None:
            # mlforecast refuses ids it never saw; the recursion then runs on these series alone.
            known = [str(uid) for uid in self._forecaster.ts.uids if str(uid) in ids]
            if not known:
                return empty_forecast()
        x_df = self._features(self._future_exog(h, future_exog, known))
        few = known is not None and len(known) < FEW_SERIES
        with warnings.catch_warnings(), self._threads_for_predict(1 if few else self._threads):
            warnings.filterwarnings("ignore", message="Found null values in")
            forecast = self._forecaster.predict(h, X_df=x_df, ids=known)
        point = forecast[self.family].to_numpy(dtype="float64")
        return pd.DataFrame({ID: forecast[ID].astype(str), DS: forecast[DS], "p10": point, "p50": point, "p90": point})

    @contextlib.contextmanager
    def _threads_for_predict(self, threads: int) -> Iterator[None]:
        """Each recursive step's feature updates (coreforecast) and tree walks (LightGBM) on `threads`
        threads: for a few series, starting a second thread costs more than the work (a what-if's
        10 series x 28 days took 270 ms on 2 threads, 140 on one)."""
        assert self._forecaster is not None
        regressor = self._forecaster.models_[self.family]
        booster = regressor if isinstance(regressor, BoosterRegressor) else None
        saved = (self._forecaster.ts.num_threads, booster.num_threads if booster else 1)
        self._forecaster.ts.num_threads = threads
        if booster:
            booster.num_threads = threads
        try:
            yield
        finally:
            self._forecaster.ts.num_threads = saved[0]
            if booster:
                booster.num_threads = saved[1]

    def _state(self) -> Any:
        return {
            "forecaster": self._forecaster,
            "reference_price": self._reference_price,
            "last_exog": self._last_exog,
            "static": self._static,
        }

    def _set_state(self, state: Any) -> None:
        self._forecaster = state["forecaster"]
        self._reference_price = state["reference_price"]
        self._last_exog = state["last_exog"]
        self._static = state["static"]


class LightGBMModel(GradientBoostedModel):
    family = "lgbm"
    defaults: ClassVar[dict[str, Any]] = {
        "objective": "l1",
        "scaler": "standard",
        "n_estimators": 100,
        "learning_rate": 0.15,
        "num_leaves": 63,
        "min_child_samples": 20,
        "max_bin": 63,
        "bagging_fraction": 0.8,
        "feature_fraction": 0.8,
        "train_periods": "auto",
    }

    def _booster_params(self) -> dict[str, Any]:
        p = self.params
        return {
            "objective": p["objective"],
            "learning_rate": p["learning_rate"],
            "num_leaves": p["num_leaves"],
            "min_data_in_leaf": p["min_child_samples"],
            "max_bin": p["max_bin"],
            "bagging_fraction": p["bagging_fraction"],
            "bagging_freq": 1,
            "feature_fraction": p["feature_fraction"],
            "seed": p["seed"],
            "num_threads": self._threads,
            "verbosity": -1,
        }

    def _regressor(self) -> Any:
        params = self._booster_params()
        return lgb.LGBMRegressor(
            n_estimators=self.params["n_estimators"],
            objective=params.pop("objective"),
            learning_rate=params.pop("learning_rate"),
            num_leaves=params.pop("num_leaves"),
            min_child_samples=params.pop("min_data_in_leaf"),
            subsample=params.pop("bagging_fraction"),
            subsample_freq=params.pop("bagging_freq"),
            colsample_bytree=params.pop("feature_fraction"),
            random_state=params.pop("seed"),
            n_jobs=params.pop("num_threads"),
            **params,
        )

    def _training_set(self, table: pd.DataFrame, features: list[str], rows: np.ndarray | None) -> Any:
        """One float32 matrix (and target) of the training rows; LightGBM reads it without a copy."""
        categorical = [f for f in features if isinstance(table[f].dtype, pd.CategoricalDtype)]
        target = table[Y].to_numpy(dtype="float32")
        return _float32_matrix(table, features, rows), target if rows is None else target[rows], features, categorical

    def _train_booster(self, training: Any) -> Any:
        """A LightGBM Dataset binned straight from the matrix (no copy of it), then the booster."""
        matrix, target, features, categorical = training
        params = self._booster_params()
        dataset = lgb.Dataset(
            matrix,
            label=target,
            feature_name=features,
            categorical_feature=categorical,
            params={"max_bin": params["max_bin"], "verbosity": -1},
            free_raw_data=True,
        )
        booster = lgb.train(params, dataset, num_boost_round=int(self.params["n_estimators"]))
        return BoosterRegressor(booster, features, self._threads)

    def _fit_on_dask(self, features: dd.DataFrame, target: dd.Series, client: Client) -> Any:
        from mlforecast.distributed.models.dask.lgb import DaskLGBMForecast

        # Data-parallel LightGBM: each worker bins and bags its own partitions and the histograms are
        # reduced over LightGBM's network, so the trees resemble a local fit's without equalling them.
        trained = DaskLGBMForecast(client=client, **self._regressor().get_params())
        with warnings.catch_warnings():
            # lightgbm.dask sizes its threads from the workers'; n_jobs stays for the local regressor.
            warnings.filterwarnings("ignore", message="Parameter n_jobs will be ignored")
            trained.fit(features, target)
        return trained.model_


class XGBoostModel(GradientBoostedModel):
    """The seed's XGBoost: Tweedie loss on min-max scaled targets, every row of history."""

    family = "xgb"
    defaults: ClassVar[dict[str, Any]] = {
        "scaler": "minmax",
        "n_estimators": 300,
        "learning_rate": 0.05,
        "num_leaves": 63,
        "train_periods": None,
    }

    def _regressor(self) -> Any:
        p = self.params
        return xgb.XGBRegressor(
            objective="reg:tweedie",
            n_estimators=p["n_estimators"],
            learning_rate=p["learning_rate"],
            max_leaves=p["num_leaves"],
            max_depth=0,
            grow_policy="lossguide",
            tree_method="hist",
            enable_categorical=True,
            subsample=0.8,
            colsample_bytree=0.8,
            random_state=p["seed"],
            n_jobs=self._threads,
        )

    def _fit_on_dask(self, features: dd.DataFrame, target: dd.Series, client: Client) -> Any:
        from xgboost.dask import DaskXGBRegressor

        local = self._regressor()
        trained = DaskXGBRegressor(**local.get_params())
        trained.client = client
        trained.fit(features, target)
        # mlforecast's DaskXGBForecast reloads the booster into a default XGBRegressor, which lacks
        # enable_categorical and so cannot read the categorical static columns: reload it into ours.
        local.load_model(bytearray(trained.get_booster().save_raw("ubj")))
        return local
