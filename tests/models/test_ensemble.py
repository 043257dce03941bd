"""Ensemble weights sum to 1 and favour the better model; cold start covers series too young to model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from salescast.features.frame import SeriesFrame
from salescast.models.catalog import model_factory
from salescast.models.ensemble import EnsembleModel, learn_weights


def constructed_results(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.gamma(5.0, 2.0, 500)
    return pd.DataFrame(
        {
            "y": y,
            "good": y + rng.normal(0, 0.5, 500),  # small errors
            "poor": y + rng.normal(0, 3.0, 500),  # large errors
            "biased": y * 1.5,  # systematically high
        }
    )


@pytest.mark.parametrize("method", ["inverse_error", "nnls"])
def test_weights_sum_to_one_and_favour_the_better_model(method: str) -> None:
    weights = learn_weights(constructed_results(), ["good", "poor", "biased"], method)  # type: ignore[arg-type]

    assert sum(weights.values()) == pytest.approx(1.0)
    assert all(w >= 0 for w in weights.values())
    assert weights["good"] > 0.7
    assert weights["good"] > weights["poor"] > 0 or method == "nnls"
    assert weights["good"] > weights["biased"]


def test_inverse_error_weights_follow_the_squared_mae_ratio() -> None:
    results = pd.DataFrame({"y": [10.0, 10.0], "a": [11.0, 9.0], "b": [12.0, 8.0]})  # MAE 1 and 2

    weights = learn_weights(results, ["a", "b"], "inverse_error")

    assert weights == pytest.approx({"a": 0.8, "b": 0.2})


def young_and_old(frame: SeriesFrame) -> SeriesFrame:
    """`frame` plus one product launched 10 days before the end, in the category of the first series."""
    first = frame.ids[0]
    template = frame.data[frame.data["unique_id"] == first].tail(10)
    young = template.assign(unique_id="S001/NEW", y=[4.0, 6.0, 5.0, 5.0, 4.0, 6.0, 5.0, 5.0, 4.0, 6.0])
    category = frame.static.set_index("unique_id").loc[first, "category"]
    static = pd.concat(
        [
            frame.static,
            pd.DataFrame([{"unique_id": "S001/NEW", "product": "NEW", "store": "S001", "category": category}]),
        ],
        ignore_index=True,
    )
    return SeriesFrame(pd.concat([frame.data, young], ignore_index=True), frame.freq, static)


def test_young_series_get_a_cold_start_forecast_marked_as_such(small_frame: SeriesFrame, tmp_path: Path) -> None:
    frame = young_and_old(small_frame)
    member = model_factory("snaive")()
    ensemble = EnsembleModel(members={"snaive": member}, weights={"snaive": 1.0}, min_history=28).fit(frame)

    forecast = ensemble.predict(14)
    ensemble.save(tmp_path / "m")
    again = EnsembleModel.load(tmp_path / "m").predict(14)

    new = forecast[forecast["unique_id"] == "S001/NEW"]
    assert len(new) == 14 and (new["method"] == "cold_start").all()
    assert (forecast.loc[forecast["unique_id"] != "S001/NEW", "method"] == "model").all()
    # scaled to its first sales (mean 5) by the category's profile, which hovers around its recent level
    assert 2.0 < new["p50"].mean() < 10.0
    assert (new["p10"] <= new["p50"]).all() and (new["p50"] <= new["p90"]).all()
    # the members never saw the young series
    assert "S001/NEW" not in set(member.predict(3)["unique_id"])
    pd.testing.assert_frame_equal(forecast, again)
