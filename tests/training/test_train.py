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

    from salescast.models.ensemble import RobustWeights
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

    chosen = RobustWeights({"p": 0.5, "q": 0.5}, 0.0, "as learned")
    forecast = _cross_fitted(results, calibration, ["p", "q"], chosen, "scaled_error")

    # Window 0 gets the weights window 1 learned (all on q), window 1 those of window 0 (all on p): each
    # calibration window is blended by weights that never saw it.
    np.testing.assert_allclose(forecast[window == 0], 15.0)
    np.testing.assert_allclose(forecast[window == 1], 15.0)
    np.testing.assert_allclose(forecast[window == 2], 10.0)  # the hold-out: the weights given
    # Pulled halfway toward equal, as the chosen weights were: 0.75 on the wrong family.
    halfway = _cross_fitted(results, calibration, ["p", "q"], RobustWeights(chosen.weights, 0.5, ""), "scaled_error")
    np.testing.assert_allclose(halfway[window == 0], 13.75)


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


def messy_frame() -> SeriesFrame:
    import pandas as pd

    from salescast.features.frame import prepare
    from tests.training.messy import messy_weekly_sales

    raw = messy_weekly_sales()
    data = raw.assign(unique_id=raw["store"] + "/" + raw["product"]).rename(columns={"date": "ds", "units": "y"})
    static = data.drop_duplicates("unique_id")[["unique_id", "product", "store", "category"]]
    return prepare(pd.DataFrame(data[["unique_id", "ds", "y"]]), static=static)


def test_no_series_is_refused_and_every_path_gets_a_band(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    import numpy as np

    frame = messy_frame()
    assert frame.freq == "W-SUN" and (frame.data["y"] < 0).any()

    with caplog.at_level(logging.INFO, logger="salescast.training.train"):
        model, report = train(frame, ["lgbm", "savg"], BacktestSpec(horizon=13, windows=3))

    assert report.paths == {"full": 22, "short": 8, "cold": 6}
    forecast = model.predict(13)
    assert forecast["unique_id"].nunique() == len(frame.ids) == 36  # the one-week series too
    assert np.isfinite(forecast[["p10", "p50", "p90"]].to_numpy()).all()
    cold = forecast[forecast["method"] == "cold_start"]
    assert cold["unique_id"].nunique() == 6
    # cold starts get a calibrated band, not p10 = p50 = p90
    assert (cold["p90"] > cold["p10"]).mean() > 0.9
    coverage = report.by_path()["coverage"]
    assert {("full", "ensemble"), ("short", "ensemble")} <= set(coverage.index)
    assert coverage.notna().all()
    logged = [r for r in caplog.records if r.getMessage() == "training.series_path"]
    assert len(logged) == 8 + 6
    assert {r.path for r in logged} == {"short", "cold"}  # type: ignore[attr-defined]
    one_week = [r for r in logged if r.periods == 1]  # type: ignore[attr-defined]
    assert len(one_week) == 2 and {r.path for r in one_week} == {"cold"}  # type: ignore[attr-defined]


def test_the_weekly_default_blends_two_boosters_that_round_trip(tmp_path: Path) -> None:
    """Weekly data's default holds LightGBM twice (standard- and mean-scaled): both are saved and loaded
    under their own names, and the mean-scaled one is the better on the messy file's short series,
    the reason it is in the default (models/catalog.py)."""
    import pandas as pd

    from salescast.models.catalog import model_class, resolve_models

    frame = messy_frame()
    families = resolve_models(["auto"], frame.freq)
    model, report = train(frame, families, BacktestSpec(horizon=13, windows=3, step=26))

    assert set(model.members) == {"lgbm", "lgbm_mean", "theta"}
    mase = report.by_path()["mase"]
    assert mase[("short", "lgbm_mean")] < mase[("short", "lgbm")]
    model.save(tmp_path / "model")
    loaded = model_class("ensemble").load(tmp_path / "model")
    pd.testing.assert_frame_equal(model.predict(13), loaded.predict(13))
