"""ProphetModel on small synthetic series whose weekly, yearly and promotion effects are known."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_array_equal

from salescast.errors import ConfigurationError
from salescast.features.frame import DS, ID, SeriesFrame, prepare
from salescast.models import prophet_model
from salescast.models.prophet_model import ProphetModel

FRIDAY_PEAK, MONDAY_TROUGH, PROMOTION_UPLIFT = 8.0, -5.0, 12.0
H = 14


def daily_frame(n_series: int = 3, periods: int = 400, seed: int = 7) -> SeriesFrame:
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2023-01-02", periods=periods, freq="D")
    weekday = np.select([ds.dayofweek == 4, ds.dayofweek == 0], [FRIDAY_PEAK, MONDAY_TROUGH], 0.0)
    parts = []
    for i in range(n_series):
        promotion = (rng.random(periods) < 0.1).astype(float)
        y = 20.0 + 10 * i + weekday + PROMOTION_UPLIFT * promotion + rng.normal(0, 1.5, periods)
        price = np.where(rng.random(periods) < 0.2, 4.5, 5.0)  # discounts unrelated to sales
        parts.append(pd.DataFrame({ID: f"s/{i}", DS: ds, "y": y, "price": price, "on_promotion": promotion}))
    data = pd.concat(parts, ignore_index=True)
    return prepare(data, static=pd.DataFrame({ID: data[ID].unique(), "category": "food"}))


@pytest.fixture(scope="module")
def frame() -> SeriesFrame:
    return daily_frame()


@pytest.fixture(scope="module")
def fitted(frame: SeriesFrame) -> ProphetModel:
    return ProphetModel(n_jobs=2).fit(frame)


def test_forecast_has_one_row_per_series_and_day_after_the_history(frame: SeriesFrame, fitted: ProphetModel) -> None:
    forecast = fitted.predict(H)

    assert list(forecast.columns) == [ID, DS, "p10", "p50", "p90"]
    assert len(forecast) == 3 * H
    assert (forecast["p10"] <= forecast["p50"]).all() and (forecast["p50"] <= forecast["p90"]).all()
    assert (forecast["p90"] - forecast["p10"]).min() > 0  # a real interval, not a copy of p50
    last = frame.data.groupby(ID)[DS].max()
    for uid, rows in forecast.groupby(ID):
        expected = pd.date_range(last[uid] + pd.Timedelta(days=1), periods=H, freq="D")
        assert_array_equal(rows[DS].to_numpy(), expected.to_numpy())


def test_forecast_reproduces_the_weekly_pattern(fitted: ProphetModel) -> None:
    forecast = fitted.predict(H)
    weekday = forecast[DS].dt.dayofweek
    for _, rows in forecast.groupby(ID):
        friday = rows.loc[weekday[rows.index] == 4, "p50"].mean()
        monday = rows.loc[weekday[rows.index] == 0, "p50"].mean()
        sunday = rows.loc[weekday[rows.index] == 6, "p50"].mean()
        # Built in: Friday 13 above Monday, Monday 5 below the other days.
        assert friday - monday == pytest.approx(FRIDAY_PEAK - MONDAY_TROUGH, abs=3.0)
        assert sunday - monday == pytest.approx(-MONDAY_TROUGH, abs=2.5)


def promotion_plan(frame: SeriesFrame, days: list[int], on: float) -> pd.DataFrame:
    last = frame.data.groupby(ID)[DS].max()
    return pd.DataFrame(
        [{ID: uid, DS: end + pd.Timedelta(days=day), "on_promotion": on} for uid, end in last.items() for day in days]
    )


def test_a_planned_promotion_raises_the_forecast_on_its_days_only(frame: SeriesFrame, fitted: ProphetModel) -> None:
    promoted_days = [3, 4, 5]
    baseline = fitted.predict(H)
    promoted = fitted.predict(H, future_exog=promotion_plan(frame, promoted_days, on=1.0))
    explicit_none = fitted.predict(H, future_exog=promotion_plan(frame, promoted_days, on=0.0))

    on_promotion = baseline.groupby(ID).cumcount().add(1).isin(promoted_days).to_numpy()
    uplift = promoted["p50"].to_numpy() - baseline["p50"].to_numpy()
    assert uplift[on_promotion] == pytest.approx(np.full(on_promotion.sum(), PROMOTION_UPLIFT), abs=2.0)
    assert_array_equal(uplift[~on_promotion], 0.0)
    assert_array_equal(explicit_none["p50"].to_numpy(), baseline["p50"].to_numpy())


def test_without_exog_the_promotion_plan_is_ignored(frame: SeriesFrame) -> None:
    small = frame.subset(["s/0"])
    model = ProphetModel(use_exog=False, n_jobs=1).fit(small)
    plan = promotion_plan(small, [1, 2], on=1.0)
    assert_array_equal(model.predict(7, future_exog=plan)["p50"].to_numpy(), model.predict(7)["p50"].to_numpy())


def test_fit_in_worker_processes_then_save_and_load_predicts_identically(
    frame: SeriesFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prophet_model, "PARALLEL_MIN_SERIES", 1)  # three series would otherwise stay in-process
    model = ProphetModel(n_jobs=2, seed=3).fit(frame)
    plan = promotion_plan(frame, [2], on=1.0)
    in_workers = model.predict(H, future_exog=plan)
    model.save(tmp_path / "prophet")
    monkeypatch.undo()

    loaded = ProphetModel.load(tmp_path / "prophet")
    reloaded = loaded.predict(H, future_exog=plan)

    manifest = json.loads((tmp_path / "prophet" / "manifest.json").read_text())
    assert manifest["params"] == {"country": "US", "n_jobs": 2, "use_exog": True, "uncertainty_samples": 200, "seed": 3}
    for column in ("p10", "p50", "p90"):
        assert_array_equal(reloaded[column].to_numpy(), in_workers[column].to_numpy())
    assert_array_equal(reloaded[DS].to_numpy(), in_workers[DS].to_numpy())


def test_monthly_series_follow_their_yearly_cycle() -> None:
    ds = pd.date_range("2019-01-01", periods=60, freq="MS")
    rng = np.random.default_rng(1)
    season = np.where(ds.month == 12, 30.0, np.where(ds.month == 7, -10.0, 0.0))
    data = pd.concat(
        [pd.DataFrame({ID: f"m/{i}", DS: ds, "y": 100.0 + 20 * i + season + rng.normal(0, 2, 60)}) for i in range(2)]
    )
    frame = prepare(data)
    assert frame.freq == "MS"

    forecast = ProphetModel(n_jobs=1).fit(frame).predict(12)

    assert len(forecast) == 24
    for _, rows in forecast.groupby(ID):
        assert_array_equal(rows[DS].to_numpy(), pd.date_range("2024-01-01", periods=12, freq="MS").to_numpy())
        by_month = rows.set_index(rows[DS].dt.month)["p50"]
        assert by_month[12] - by_month[7] == pytest.approx(40.0, abs=8.0)
        assert by_month[12] > by_month.drop(12).max() + 15


def test_series_of_zeros_or_a_single_point_forecast_without_prophet() -> None:
    ds = pd.date_range("2024-01-01", periods=60, freq="D")
    data = pd.concat(
        [
            pd.DataFrame({ID: "zeros", DS: ds, "y": 0.0, "on_promotion": 0.0}),
            pd.DataFrame({ID: "regular", DS: ds, "y": 10.0 + (ds.dayofweek == 5) * 4.0, "on_promotion": 0.0}),
            pd.DataFrame({ID: "newcomer", DS: ds[-1:], "y": [5.0], "on_promotion": [1.0]}),
        ]
    )
    model = ProphetModel(n_jobs=1).fit(prepare(data))

    forecast = model.predict(7)
    series = {str(uid): rows for uid, rows in forecast.groupby(ID)}

    assert len(forecast) == 21
    assert_array_equal(series["zeros"][["p10", "p50", "p90"]].to_numpy(), 0.0)
    assert_array_equal(series["newcomer"][["p10", "p50", "p90"]].to_numpy(), 5.0)
    regular = series["regular"]
    expected = 10.0 + (regular[DS].dt.dayofweek == 5).to_numpy() * 4.0
    assert regular["p50"].to_numpy() == pytest.approx(expected, abs=1.0)


def test_an_unknown_holiday_country_is_a_configuration_error(frame: SeriesFrame) -> None:
    with pytest.raises(ConfigurationError, match="XX"):
        ProphetModel(country="XX", n_jobs=1).fit(frame.subset(["s/0"]))
