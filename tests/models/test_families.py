"""Every family speaks the same interface and round-trips through save/load with identical forecasts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from salescast.features.frame import SeriesFrame
from salescast.models.base import FORECAST_COLUMNS, Forecaster, ModelNotFittedError
from salescast.models.catalog import model_class, model_factory
from salescast.models.statistical import demand_pattern

FAST_FAMILIES = ["snaive", "lgbm", "xgb", "ets"]


@pytest.mark.parametrize("name", FAST_FAMILIES)
def test_family_forecasts_every_series_and_round_trips(name: str, small_frame: SeriesFrame, tmp_path: Path) -> None:
    params = {"n_estimators": 40} if name in {"lgbm", "xgb"} else {}
    model = model_factory(name, **params)().fit(small_frame)

    forecast = model.predict(14)
    model.save(tmp_path / name)
    loaded = model_class(type(model).family).load(tmp_path / name)
    again = loaded.predict(14)

    assert list(forecast.columns) == FORECAST_COLUMNS
    assert len(forecast) == len(small_frame.ids) * 14
    last = small_frame.data.groupby("unique_id")["ds"].max()
    first_forecast = forecast.groupby("unique_id")["ds"].min()
    assert (first_forecast - last.reindex(first_forecast.index) == pd.Timedelta(days=1)).all()
    assert (forecast["p10"] <= forecast["p50"]).all() and (forecast["p50"] <= forecast["p90"]).all()
    assert (forecast["p10"] >= 0).all()
    pd.testing.assert_frame_equal(forecast, again)


def test_monthly_series_are_forecast_monthly(monthly_frame: SeriesFrame) -> None:
    assert monthly_frame.freq == "MS"

    forecast = model_factory("snaive")().fit(monthly_frame).predict(12)

    antidiabetic = forecast[forecast["unique_id"] == "antidiabetic_drug_sales"]
    assert antidiabetic["ds"].min() == pd.Timestamp("2008-07-01")
    history = monthly_frame.data[monthly_frame.data["unique_id"] == "antidiabetic_drug_sales"]
    # seasonal naive repeats the last year's months
    np.testing.assert_allclose(antidiabetic["p50"].to_numpy(), history["y"].to_numpy()[-12:])


def test_predict_before_fit_is_a_clear_error() -> None:
    model: Forecaster = model_factory("snaive")()
    with pytest.raises(ModelNotFittedError, match="call fit before predict"):
        model.predict(7)


def test_gbm_uses_the_promotion_plan(small_frame: SeriesFrame) -> None:
    model = model_factory("lgbm", n_estimators=80)().fit(small_frame)
    ids = small_frame.ids
    last = small_frame.data.groupby("unique_id")["ds"].max()
    plan = pd.DataFrame(
        [(uid, last[uid] + pd.Timedelta(days=d), 1.0) for uid in ids for d in range(1, 8)],
        columns=["unique_id", "ds", "on_promotion"],
    )

    base = model.predict(7)
    promoted = model.predict(7, future_exog=plan)

    assert promoted["p50"].sum() > base["p50"].sum() * 1.1


@pytest.mark.parametrize(
    "series, pattern",
    [
        (np.array([5, 6, 5, 7, 6, 5, 6.0]), "smooth"),
        (np.array([1, 20, 2, 30, 1, 25, 3.0]), "erratic"),
        (np.array([0, 0, 3, 0, 0, 3, 0, 0, 3.0]), "intermittent"),
        (np.array([0, 0, 1, 0, 0, 30, 0, 0, 2.0]), "lumpy"),
        (np.zeros(5), "zero"),
    ],
)
def test_demand_patterns_follow_the_sbc_classification(series: np.ndarray, pattern: str) -> None:
    assert demand_pattern(series) == pattern


def test_the_vectorised_seasonal_naive_equals_statsforecast(small_frame: SeriesFrame) -> None:
    from statsforecast import StatsForecast
    from statsforecast.models import SeasonalNaive

    ours = model_factory("snaive")().fit(small_frame)._predict(10, None, None)
    theirs = StatsForecast(models=[SeasonalNaive(season_length=7)], freq="D").forecast(
        h=10, df=small_frame.data[["unique_id", "ds", "y"]], level=[80]
    )
    theirs["unique_id"] = theirs["unique_id"].astype(str)
    merged = ours.merge(theirs, on=["unique_id", "ds"], how="outer", validate="one_to_one")

    assert len(merged) == len(small_frame.ids) * 10
    np.testing.assert_allclose(merged["p50"], merged["SeasonalNaive"], rtol=1e-9)
    np.testing.assert_allclose(merged["p10"], merged["SeasonalNaive-lo-80"], rtol=1e-6)
    np.testing.assert_allclose(merged["p90"], merged["SeasonalNaive-hi-80"], rtol=1e-6)


@pytest.mark.parametrize("name", [*FAST_FAMILIES, "prophet"])
def test_a_subset_of_series_is_forecast_as_in_the_whole(name: str, small_frame: SeriesFrame) -> None:
    frame = small_frame.subset(small_frame.ids[:3]) if name == "prophet" else small_frame  # prophet is slow
    params = {"n_estimators": 40} if name in {"lgbm", "xgb"} else {}
    model = model_factory(name, **params)().fit(frame)
    last = frame.data.groupby("unique_id")["ds"].max()
    # A plan that differs per series: a subset must get its own series' plan, not its neighbours'.
    plan = pd.DataFrame(
        [
            (uid, last[uid] + pd.Timedelta(days=d), float(d % 2 == i % 2))
            for i, uid in enumerate(frame.ids)
            for d in (1, 2, 3, 4, 5, 6, 7)
        ],
        columns=["unique_id", "ds", "on_promotion"],
    )
    wanted = [str(frame.ids[-1]), str(frame.ids[1])]

    whole = model.predict(7, plan)
    forecast_series = spy_on_series_forecast(model)
    part = model.predict(7, plan, ids=[*wanted, "S999/unknown"])

    assert forecast_series == [2]  # the family forecast those two alone, not everything then filtered

    expected = whole[whole["unique_id"].isin(wanted)].reset_index(drop=True)
    pd.testing.assert_frame_equal(part.reset_index(drop=True), expected)
    assert set(part["unique_id"]) == set(wanted)
    nothing = model.predict(7, plan, ids=["S999/unknown"])
    assert list(nothing.columns) == FORECAST_COLUMNS and nothing.empty


def spy_on_series_forecast(model: Forecaster) -> list[int]:
    """How many series each later `_predict` call of `model` forecast."""
    counts: list[int] = []
    original = model._predict

    def counting(h: int, future_exog: pd.DataFrame | None, ids: frozenset[str] | None) -> pd.DataFrame:
        forecast = original(h, future_exog, ids)
        counts.append(forecast["unique_id"].nunique())
        return forecast

    model._predict = counting  # type: ignore[method-assign]
    return counts


def test_the_mean_column_adds_the_blended_mean_residual_and_new_series_take_their_own_level() -> None:
    from salescast.models.base import fit_conformal

    # Series a: residuals +1 and +3 (mean 2); series b: too few residuals of its own.
    residuals = pd.DataFrame(
        {
            "unique_id": ["a"] * 14 + ["b"] * 2,
            "y": [10.0] * 14 + [10.0] * 2,
            "residual": [1.0, 3.0] * 7 + [4.0, 4.0],
        }
    )
    intervals = fit_conformal(residuals)
    # Pooled: every residual over its series' mean |y| (10): 36 / 16 / 10, so 2.25 at a scale of 10.
    assert intervals.pooled_mean_scaled == pytest.approx(0.225)
    forecast = pd.DataFrame(
        {
            "unique_id": ["a", "b", "c", "a"],
            "ds": pd.to_datetime(["2026-01-01"] * 4),
            "p50": [5.0, 5.0, 4.0, 5.0],
            "method": ["model", "model", "model", "model"],
        }
    )

    out = intervals.apply(forecast)

    # a: (own 2 + pooled 2.25) / 2; b: pooled alone at its scale (10); c, never calibrated: pooled alone
    # at the level of its own forecast (4), not at another series' scale.
    np.testing.assert_allclose(out["mean"], [7.125, 7.25, 4.0 + 0.225 * 4, 7.125])
    del intervals.mean_per_series  # as intervals pickled before the mean existed
    assert "mean" not in intervals.apply(forecast)


def test_cold_start_rows_get_the_band_calibrated_on_cold_start_residuals() -> None:
    from salescast.models.base import fit_conformal

    # Model residuals are small (±1 on a level of 10), cold-start ones large (±6).
    residuals = pd.DataFrame(
        {
            "unique_id": ["m"] * 20 + ["c"] * 20,
            "y": [10.0] * 40,
            "residual": [-1.0, 1.0] * 10 + [-6.0, 6.0] * 10,
            "method": ["model"] * 20 + ["cold_start"] * 20,
        }
    )
    intervals = fit_conformal(residuals, min_residuals=100)  # no series has offsets of its own
    forecast = pd.DataFrame(
        {
            "unique_id": ["new-model", "new-cold"],
            "ds": pd.to_datetime(["2026-01-01"] * 2),
            "p50": [10.0, 10.0],
            "method": ["model", "cold_start"],
        }
    )

    out = intervals.apply(forecast)

    widths = (out["p90"] - out["p10"]).to_numpy()
    np.testing.assert_allclose(widths, [2.0, 12.0])  # each row's band from its own method's residuals
    assert (out["p10"] < out["p50"]).all()


def test_the_seasonal_average_carries_last_years_shape_onto_the_current_level() -> None:
    from salescast.models.statistical import SeasonalAverageModel

    rng = np.random.default_rng(2)
    pattern = rng.uniform(20, 80, 52)
    week = np.arange(156)
    dates = pd.date_range("2023-01-01", periods=156, freq="W-SUN")
    trending = pd.DataFrame({"unique_id": "s/trend", "ds": dates, "y": pattern[week % 52] + 0.1 * week})
    young = pd.DataFrame({"unique_id": "s/young", "ds": dates[-30:], "y": rng.poisson(9, 30).astype(float)})
    frame = SeriesFrame(pd.concat([trending, young], ignore_index=True), "W-SUN")

    forecast = SeasonalAverageModel().fit(frame).predict(13)

    ahead = np.arange(1, 14)
    # A yearly shape on a linear trend is continued exactly: both years agree once shifted to the level.
    expected = pattern[(155 + ahead) % 52] + 0.1 * (155 + ahead)
    np.testing.assert_allclose(forecast.loc[forecast["unique_id"] == "s/trend", "p50"], expected)
    # Under a year of history: SeasonalNaive's fallback, the mean of what exists.
    np.testing.assert_allclose(forecast.loc[forecast["unique_id"] == "s/young", "p50"], young["y"].mean())
