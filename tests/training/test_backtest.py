"""Backtests never show a model the future, and features at a date depend only on the past."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from salescast.features.frame import DS, ID, SeriesFrame, Y
from salescast.models.base import Forecaster
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

    def _predict(self, h: int, future_exog: pd.DataFrame | None) -> pd.DataFrame:
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
    spec = BacktestSpec(horizon=14, windows=3, step=7)

    result = run_backtest(frame, {"spy": SpyModel}, spec)

    expected = cutoffs(frame, spec)
    assert [seen for seen, _ in SpyModel.seen] == expected
    assert all(Y not in columns for _, columns in SpyModel.seen)
    for window, cutoff in enumerate(expected):
        part = result.results[result.results["window"] == window]
        assert part[DS].min() == cutoff + pd.Timedelta(days=1)
        assert part[DS].max() == cutoff + pd.Timedelta(days=14)
    last = frame.data[DS].max()
    assert expected[-1] == last - pd.Timedelta(days=14)
    assert expected[0] == last - pd.Timedelta(days=14 + 2 * 7)


def test_the_seed_hold_out_is_the_last_30_days(frame: SeriesFrame) -> None:
    (cutoff,) = cutoffs(frame, BacktestSpec(horizon=30, windows=1))
    assert cutoff == frame.data[DS].max() - pd.Timedelta(days=30)


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
    model = LightGBMModel()
    cutoff = frame.data[DS].max() - pd.Timedelta(days=40)

    assert_no_lookahead(model.feature_table, frame, cutoff)


def test_the_leakage_check_catches_a_feature_that_peeks_at_the_future(frame: SeriesFrame) -> None:
    model = LightGBMModel()

    def leaky(data: SeriesFrame) -> pd.DataFrame:
        table = model.feature_table(data)
        return table.assign(next_y=table.groupby(ID)[Y].shift(-1))  # tomorrow's sales: a leak

    with pytest.raises(AssertionError):
        assert_no_lookahead(leaky, frame, frame.data[DS].max() - pd.Timedelta(days=40))


def test_series_without_enough_history_before_a_cutoff_are_left_out(frame: SeriesFrame) -> None:
    late = frame.data[frame.data[ID] == frame.ids[0]].copy()
    late = late[late[DS] > late[DS].max() - pd.Timedelta(days=20)].assign(**{ID: "late/launch"})
    with_late = SeriesFrame(pd.concat([frame.data, late], ignore_index=True), frame.freq, frame.static)

    result = run_backtest(with_late, {"spy": SpyModel}, BacktestSpec(horizon=7, windows=1))

    assert "late/launch" not in set(result.results[ID])
    assert np.isfinite(result.results["spy"]).all()
