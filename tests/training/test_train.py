"""A training run: backtest, learned ensemble, calibrated intervals, a refit model that forecasts."""

from __future__ import annotations

from pathlib import Path

import pytest

from salescast.features.frame import SeriesFrame
from salescast.models.ensemble import EnsembleModel
from salescast.training.backtest import BacktestSpec
from salescast.training.train import train
from tests.models.conftest import synthetic_frame


@pytest.fixture(scope="module")
def frame() -> SeriesFrame:
    return synthetic_frame(stores=2, products=8, days=420, seed=5)


def test_training_reports_every_model_and_the_baseline_on_the_hold_out(frame: SeriesFrame, tmp_path: Path) -> None:
    model, report = train(
        frame, ["lgbm", "ets"], BacktestSpec(horizon=14, windows=3), model_params={"lgbm": {"n_estimators": 60}}
    )

    overall = report.overall()
    assert set(overall.index) == {"lgbm", "ets", "ensemble", "snaive"}
    assert report.calibrated_out_of_sample
    assert sum(report.weights.values()) == pytest.approx(1.0)
    # the models beat the seasonal naive baseline on this seasonal, promotional data
    mase = {str(k): float(v) for k, v in overall["mase"].items()}
    assert mase["ensemble"] < mase["snaive"]
    assert mase["lgbm"] < mase["snaive"]
    # intervals calibrated on earlier windows cover the hold-out roughly as promised
    assert 60 <= float(overall["coverage"]["ensemble"]) <= 95
    assert set(report.window_metrics["window"]) == {0, 1, 2}
    categories = report.metrics[report.metrics["level"] == "group"]["key"]
    assert set(categories) == set(frame.static["category"])

    forecast = model.predict(14)
    model.save(tmp_path / "model")
    assert len(forecast) == len(frame.ids) * 14
    assert (forecast["p10"] < forecast["p90"]).mean() > 0.9
    assert EnsembleModel.load(tmp_path / "model").predict(14).equals(forecast)


def test_fixed_weights_reproduce_the_seed_design(frame: SeriesFrame) -> None:
    _, report = train(
        frame,
        ["lgbm", "ets"],
        BacktestSpec(horizon=14, windows=2),
        fixed_weights={"lgbm": 0.5, "ets": 0.5},
        model_params={"lgbm": {"n_estimators": 30}},
    )

    assert report.weights == {"lgbm": 0.5, "ets": 0.5}
    holdout = report.backtest.results[report.backtest.results["window"] == 1]
    blended = (holdout["lgbm"] + holdout["ets"]) / 2
    assert float(report.overall()["mae"]["ensemble"]) == pytest.approx((blended - holdout["y"]).abs().mean())


def test_reconciliation_effect_is_reported_per_level(frame: SeriesFrame) -> None:
    _, report = train(
        frame,
        ["lgbm"],
        BacktestSpec(horizon=14, windows=2),
        model_params={"lgbm": {"n_estimators": 30}},
        reconcile=("bottom_up", "mint_shrink"),
    )

    table = report.reconciliation
    assert table is not None
    assert set(table["method"]) == {"base", "bottom_up", "mint_shrink"}
    assert set(table["level"]) == {"series", "category", "total"}
    mae = {(str(m), str(lv)): float(v) for m, lv, v in zip(table["method"], table["level"], table["mae"], strict=True)}
    # bottom-up keeps the series forecasts; MinT moves them towards the independent upper-level forecasts
    assert mae[("bottom_up", "series")] == pytest.approx(mae[("base", "series")])
    assert mae[("mint_shrink", "series")] != pytest.approx(mae[("base", "series")])
    assert table["mae"].notna().all()


def test_the_ensembles_calibration_residuals_are_cross_fitted_between_windows() -> None:
    import numpy as np
    import pandas as pd

    from salescast.training.train import _cross_fitted

    # `p` is exact on window 0 and off by 5 on window 1; `q` the reverse. Window 2 is the hold-out.
    window = np.repeat([0, 1, 2], 4)
    y = np.full(12, 10.0)
    results = pd.DataFrame(
        {
            "window": window,
            "unique_id": "a",
            "y": y,
            "p": np.where(window == 1, 15.0, 10.0),
            "q": np.where(window == 0, 15.0, 10.0),
        }
    )
    calibration = results[results["window"] < 2]

    forecast = _cross_fitted(results, calibration, ["p", "q"], {"p": 0.5, "q": 0.5}, "scaled_error")

    # Each calibration window is blended by weights that never saw it: those of the one other window,
    # which by the single-window rule are equal (learned on window 1 alone they would be all on q and
    # give window 0 a forecast of 15, as overfit as the windows disagree).
    np.testing.assert_allclose(forecast[window == 0], 12.5)
    np.testing.assert_allclose(forecast[window == 1], 12.5)
    np.testing.assert_allclose(forecast[window == 2], 10.0)  # the hold-out: the weights given


def test_the_mean_forecast_totals_a_period_without_the_medians_shortfall() -> None:
    import pandas as pd

    full = synthetic_frame(stores=2, products=20, days=500, seed=4)
    cut = full.data["ds"].max() - pd.Timedelta(days=28)
    history = SeriesFrame(full.data[full.data["ds"] <= cut].reset_index(drop=True), full.freq, full.static)
    future = full.data[full.data["ds"] > cut]
    model, _ = train(history, ["lgbm"], BacktestSpec(horizon=28, windows=2))

    forecast = model.predict(28, future[["unique_id", "ds", "price", "on_promotion"]])

    held_out = forecast.merge(future[["unique_id", "ds", "y"]], on=["unique_id", "ds"])
    assert len(held_out) == 40 * 28
    actual = held_out["y"].sum()
    median_bias = held_out["p50"].sum() / actual - 1
    mean_bias = held_out["mean"].sum() / actual - 1
    # Daily medians of this intermittent demand sum well short of the period; means do not.
    assert median_bias < -0.08
    assert abs(mean_bias) < abs(median_bias) / 2
