"""Backtests never show a model the future, and features at a date depend only on the past."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from salescast.features.frame import DS, ID, SeriesFrame, Y
from salescast.models.base import Forecaster
from salescast.models.catalog import model_factory
from salescast.models.gbm import LightGBMModel
from salescast.training.backtest import BacktestSpec, cutoffs, run_backtest
from tests.models.conftest import synthetic_frame


class SpyModel(Forecaster):
    """Forecasts the last seen value and records what it was shown."""

    family = "spy"
    seen: ClassVar[list[tuple[pd.Timestamp, list[str]]]] = []

    def _fit(self, frame: SeriesFrame) -> None:
        self._train = frame
        self._last = {str(k): float(v) for k, v in frame.data.groupby(ID)[Y].last().items()}

    def _predict(self, h: int, future_exog: pd.DataFrame | None, ids: frozenset[str] | None) -> pd.DataFrame:
        assert self._train is not None
        SpyModel.seen.append((self._train.data[DS].max(), [] if future_exog is None else list(future_exog.columns)))
        last_dates = self._train.data.groupby(ID)[DS].max()
        rows = [
            (uid, day + pd.Timedelta(days=i), self._last[str(uid)])
            for uid, day in last_dates.items()
            for i in range(1, h + 1)
        ]
        out = pd.DataFrame(rows, columns=[ID, DS, "p50"])
        return out.assign(p10=out["p50"], p90=out["p50"])


@pytest.fixture(scope="module")
def frame() -> SeriesFrame:
    return synthetic_frame(stores=1, products=4, days=200)


def test_windows_train_only_up_to_their_cutoff(frame: SeriesFrame) -> None:
    SpyModel.seen = []
    spec = BacktestSpec(horizon=14, windows=3, step=7, probes=0)  # one fit per window (probes: test_probes.py)

    result = run_backtest(frame, {"spy": SpyModel}, spec)

    expected = [c.max() for c in cutoffs(frame, spec)]
    assert [seen for seen, _ in SpyModel.seen] == expected
    assert all(Y not in columns for _, columns in SpyModel.seen)
    for window, cutoff in enumerate(expected):
        part = result.results[result.results["window"] == window]
        assert part[DS].min() == cutoff + pd.Timedelta(days=1)
        assert part[DS].max() == cutoff + pd.Timedelta(days=14)
    last = frame.data[DS].max()
    assert expected[-1] == last - pd.Timedelta(days=14)
    assert expected[0] == last - pd.Timedelta(days=14 + 2 * 7)


def test_series_ending_at_different_dates_are_each_scored_on_their_own_last_periods(frame: SeriesFrame) -> None:
    first = frame.ids[0]
    ended = frame.data[~((frame.data[ID] == first) & (frame.data[DS] > frame.data[DS].max() - pd.Timedelta(days=50)))]
    uneven = SeriesFrame(ended.reset_index(drop=True), frame.freq, frame.static)

    result = run_backtest(uneven, {"spy": SpyModel}, BacktestSpec(horizon=7, windows=1))

    scored = result.results.groupby(ID)[DS].agg(["min", "max"])
    assert set(scored.index) == set(frame.ids)
    own_end = uneven.data.groupby(ID)[DS].max()
    assert (scored["max"] == own_end.reindex(scored.index)).all()
    assert (scored["min"] == own_end.reindex(scored.index) - pd.Timedelta(days=6)).all()


def test_the_seed_hold_out_is_the_last_30_days(frame: SeriesFrame) -> None:
    (cutoff,) = cutoffs(frame, BacktestSpec(horizon=30, windows=1))
    assert (cutoff == frame.data[DS].max() - pd.Timedelta(days=30)).all()


def assert_no_lookahead(
    features: Callable[[SeriesFrame], pd.DataFrame], frame: SeriesFrame, cutoff: pd.Timestamp
) -> None:
    """Features of the rows up to `cutoff` must be the same whether or not later data exists."""
    full = features(frame)
    truncated = features(frame.until(cutoff))
    full = full[full[DS] <= cutoff].sort_values([ID, DS]).reset_index(drop=True)
    truncated = truncated.sort_values([ID, DS]).reset_index(drop=True)
    pd.testing.assert_frame_equal(full, truncated, check_dtype=False, check_categorical=False)


def test_gbm_features_do_not_look_ahead(frame: SeriesFrame) -> None:
    # Point in time: lags, rolling windows, calendar and price features (the target scaler, fitted per
    # training window, is checked by the perturbation test below).
    model = LightGBMModel(scaler="none")
    cutoff = frame.data[DS].max() - pd.Timedelta(days=40)

    assert_no_lookahead(model.feature_table, frame, cutoff)


@pytest.mark.parametrize("name", ["lgbm", "ets", "snaive"])
def test_changing_the_future_does_not_change_a_backtest_window(frame: SeriesFrame, name: str) -> None:
    """Multiply every sale after the window's cutoff by 100: features, scaling and fitting must not notice."""
    spec = BacktestSpec(horizon=14, windows=1)
    (cutoff,) = cutoffs(frame, spec)
    after = frame.data[DS] > frame.data[ID].map(cutoff)
    distorted = SeriesFrame(
        frame.data.assign(y=frame.data[Y].where(~after, frame.data[Y] * 100)), frame.freq, frame.static
    )
    factory = model_factory(name, **({"n_estimators": 30} if name == "lgbm" else {}))

    honest = run_backtest(frame, {name: factory}, spec).results
    tempted = run_backtest(distorted, {name: factory}, spec).results

    np.testing.assert_allclose(honest[name].to_numpy(), tempted[name].to_numpy(), rtol=1e-9)
    assert (tempted[Y].to_numpy() == honest[Y].to_numpy() * 100).all()


def test_the_leakage_check_catches_a_feature_that_peeks_at_the_future(frame: SeriesFrame) -> None:
    model = LightGBMModel(scaler="none")

    def leaky(data: SeriesFrame) -> pd.DataFrame:
        table = model.feature_table(data)
        return table.assign(next_y=table.groupby(ID)[Y].shift(-1))  # tomorrow's sales: a leak

    with pytest.raises(AssertionError):
        assert_no_lookahead(leaky, frame, frame.data[DS].max() - pd.Timedelta(days=40))


def test_series_too_young_to_train_on_are_forecast_by_the_cold_start_not_left_out(frame: SeriesFrame) -> None:
    late = frame.data[frame.data[ID] == frame.ids[0]].copy()
    late = late[late[DS] > late[DS].max() - pd.Timedelta(days=20)].assign(**{ID: "late/launch"})
    with_late = SeriesFrame(pd.concat([frame.data, late], ignore_index=True), frame.freq, frame.static)
    SpyModel.seen.clear()

    result = run_backtest(with_late, {"spy": SpyModel}, BacktestSpec(horizon=7, windows=1))

    launch = result.results[result.results[ID] == "late/launch"]
    assert len(launch) == 7
    assert set(launch["path"]) == {"cold"}
    assert set(result.results.loc[result.results[ID] != "late/launch", "path"]) == {"full"}
    assert np.isfinite(result.results["spy"]).all()


def test_a_one_point_series_and_a_short_one_are_forecast_in_every_window() -> None:
    days = pd.date_range("2026-01-01", periods=120, freq="D")
    rng = np.random.default_rng(1)
    long = pd.DataFrame({ID: "s/long", DS: days, Y: rng.poisson(20, len(days)).astype(float)})
    short = pd.DataFrame({ID: "s/short", DS: days[-20:], Y: rng.poisson(5, 20).astype(float)})
    # one observation before the hold-out's cutoff, seven after it
    one = pd.DataFrame({ID: "s/one", DS: days[-8:], Y: [4.0, 3, 5, 4, 6, 2, 4, 5]})
    frame = SeriesFrame(pd.concat([long, short, one], ignore_index=True), "D")

    result = run_backtest(frame, {"snaive": model_factory("snaive")}, BacktestSpec(horizon=7, windows=2))

    last = result.results[result.results["window"] == 1]
    assert set(last[ID]) == {"s/long", "s/short", "s/one"}
    paths = last.groupby(ID)["path"].first().to_dict()
    assert paths == {"s/long": "full", "s/short": "cold", "s/one": "cold"}
    assert np.isfinite(last["snaive"]).all()
    # a cold series is its one observation times the profile of the established series' forecasts
    long_level = long.loc[long[DS] <= days[-8], Y].tail(28).mean()
    profile = last.loc[last[ID] == "s/long", "snaive"].to_numpy() / long_level
    assert last.loc[last[ID] == "s/one", "snaive"].to_numpy() == pytest.approx(4.0 * profile)


def test_the_default_step_puts_the_first_window_a_year_before_the_hold_out_when_history_allows() -> None:
    from salescast.training.backtest import seasonal_step

    def weekly(weeks: int) -> SeriesFrame:
        dates = pd.date_range("2024-01-07", periods=weeks, freq="W-SUN")
        return SeriesFrame(pd.DataFrame({ID: "s/a", DS: dates, Y: 1.0}), "W-SUN")

    assert seasonal_step(weekly(160), 13, 3) == 26
    assert seasonal_step(weekly(160), 13, 2) == 52
    assert seasonal_step(weekly(70), 13, 3) == 13  # a year, the horizon and 13 weeks do not fit: back to back
    assert seasonal_step(weekly(160), 13, 1) == 13
    days = pd.date_range("2023-01-01", periods=1096, freq="D")
    daily = SeriesFrame(pd.DataFrame({ID: "s/a", DS: days, Y: 1.0}), "D")
    assert seasonal_step(daily, 28, 3) == 182
    spec = BacktestSpec(horizon=28, windows=3, step=seasonal_step(daily, 28, 3))
    first, _, last = cutoffs(daily, spec)
    assert (last.iloc[0] - first.iloc[0]).days == 364  # the same weekdays of the season a year earlier
