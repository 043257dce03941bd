"""The gradient-boosted families: lean training matrices, the rows trained on, target scalers, the median."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from coreforecast.grouped_array import GroupedArray  # type: ignore[import-untyped]

from salescast.errors import ConfigurationError
from salescast.features.frame import DS, ID, SeriesFrame, Y
from salescast.models.gbm import (
    BoosterRegressor,
    LightGBMModel,
    XGBoostModel,
    _CoreMeanScaler,
    _float32_matrix,
    _scalers,
    train_periods_for,
)


def test_the_training_matrix_is_float32_with_categorical_codes_and_nan_for_missing() -> None:
    table = pd.DataFrame(
        {
            "lag1": np.array([1.5, np.nan, 3.0], dtype="float64"),
            "store": pd.Categorical(["b", None, "a"], categories=["a", "b"]),
            "dayofweek": np.array([0, 6, 3], dtype="uint8"),
        }
    )

    matrix = _float32_matrix(table, ["lag1", "store", "dayofweek"])
    rows = _float32_matrix(table, ["lag1", "store"], np.array([True, False, True]))

    assert matrix.dtype == np.float32 and matrix.flags["F_CONTIGUOUS"]
    np.testing.assert_array_equal(matrix, np.array([[1.5, 1, 0], [np.nan, np.nan, 6], [3, 0, 3]], dtype="float32"))
    np.testing.assert_array_equal(rows, np.array([[1.5, 1], [3, 0]], dtype="float32"))


def test_lightgbm_trains_on_each_series_last_rows_only(small_frame: SeriesFrame) -> None:
    model = LightGBMModel(train_periods=30)
    table = model.feature_table(small_frame)

    rows = model._training_rows(table, small_frame.freq)

    assert rows is not None
    kept = table[rows]
    assert (kept.groupby(ID).size() == 30).all()
    last = table.groupby(ID)[DS].max()
    assert (kept[DS] > kept[ID].map(last) - pd.Timedelta(days=30)).all()


def test_daily_data_trains_on_400_days_and_coarser_data_on_all_rows() -> None:
    assert train_periods_for("D") == 400
    assert train_periods_for("W-SUN") is None and train_periods_for("MS") is None
    assert XGBoostModel().params["train_periods"] is None  # the seed's XGBoost: all history


def test_the_feature_table_is_float32(small_frame: SeriesFrame) -> None:
    table = LightGBMModel().feature_table(small_frame)

    assert table[Y].dtype == np.float32
    assert table["lag7"].dtype == np.float32 and table["rolling_mean_lag1_window_size28"].dtype == np.float32


def test_the_mean_scaler_divides_each_series_by_its_mean() -> None:
    data = np.array([2.0, 4.0, 0.0, 0.0, 1.0, 1.0, 1.0], dtype="float32")
    ga = GroupedArray(data, np.array([0, 2, 4, 7], dtype="int32"))

    scaler = _CoreMeanScaler().fit(ga)
    scaled = scaler.transform(ga)

    np.testing.assert_allclose(scaled, [2 / 3, 4 / 3, 0.0, 0.0, 1.0, 1.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(scaler.inverse_transform(ga._with_data(scaled)), data, rtol=1e-6)


def test_unknown_scalers_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="standard, mean, minmax, none"):
        _scalers("robust")


def test_lightgbm_forecasts_the_median_by_default_and_the_mean_with_tweedie(small_frame: SeriesFrame) -> None:
    # Skewed sales: every seventh day sells ten times the usual. The L1 loss's p50 stays near the
    # typical day, the Tweedie loss's moves towards the mean.
    data = small_frame.data.copy()
    spike = (data[DS].dt.dayofyear % 7 == 0).to_numpy()
    rng = np.random.default_rng(0)
    data[Y] = np.where(spike & (rng.random(len(data)) < 0.3), 50.0, 2.0)
    frame = SeriesFrame(data, small_frame.freq, small_frame.static)

    median = LightGBMModel().fit(frame).predict(14)
    mean = LightGBMModel(objective="tweedie", scaler="mean").fit(frame).predict(14)

    # A spike day sells 2 in 7 cases of 10 (its median) and 50 in 3 (a mean of 16.4).
    on_spike = (median[DS].dt.dayofyear % 7 == 0).to_numpy()
    assert median.loc[on_spike, "p50"].median() == pytest.approx(2.0, abs=0.5)
    assert mean.loc[on_spike, "p50"].median() > 3.0


def test_the_booster_predicts_from_feature_frames_as_it_was_trained(small_frame: SeriesFrame) -> None:
    model = LightGBMModel(n_estimators=20).fit(small_frame)
    assert model._forecaster is not None
    booster = model._forecaster.models_["lgbm"]
    table = model.feature_table(small_frame).tail(50)

    assert isinstance(booster, BoosterRegressor)
    direct = booster.booster.predict(_float32_matrix(table, booster.features))
    np.testing.assert_allclose(booster.predict(table[booster.features]), direct)


def test_two_season_lags_add_the_same_period_two_years_back_where_history_allows() -> None:
    from salescast.models.gbm import lags_for

    assert lags_for("W-SUN", 200, seasons=2) == [1, 2, 4, 52, 104]
    assert lags_for("W-SUN", 100, seasons=2) == [1, 2, 4, 52]  # two years back is beyond the history
    assert lags_for("D", 1096, seasons=2) == [1, 7, 14, 28, 364, 728]
    assert lags_for("MS", 60) == [1, 2, 3, 12]
