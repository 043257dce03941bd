"""Ensemble weights sum to 1 and favour the better model; cold start covers series too young to model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from salescast.features.frame import SeriesFrame
from salescast.models.catalog import model_factory
from salescast.models.ensemble import EnsembleModel, learn_weights, robust_weights
from tests.models.test_families import spy_on_series_forecast


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


@pytest.mark.parametrize("method", ["scaled_error", "inverse_error", "nnls"])
def test_weights_sum_to_one_and_favour_the_better_model(method: str) -> None:
    weights = learn_weights(constructed_results(), ["good", "poor", "biased"], method)  # type: ignore[arg-type]

    assert sum(weights.values()) == pytest.approx(1.0)
    assert all(w >= 0 for w in weights.values())
    assert weights["good"] > 0.7
    assert weights["good"] > weights["poor"] > 0 or method in {"nnls", "scaled_error"}
    assert weights["good"] > weights["biased"]


def test_inverse_error_weights_follow_the_squared_mae_ratio() -> None:
    results = pd.DataFrame({"y": [10.0, 10.0], "a": [11.0, 9.0], "b": [12.0, 8.0]})  # MAE 1 and 2

    weights = learn_weights(results, ["a", "b"], "inverse_error")

    assert weights == pytest.approx({"a": 0.8, "b": 0.2})


def per_series_results(seed: int = 0) -> pd.DataFrame:
    """A large series (level 1000) and a small one (level 1): `big` is exact on the large series and
    poor on the small one, `small` the reverse; `weak` is poor everywhere."""
    rng = np.random.default_rng(seed)
    n = 200
    large = 1000 + rng.normal(0, 50, n)
    little = 1 + rng.gamma(1.0, 1.0, n)
    y = np.r_[large, little]
    return pd.DataFrame(
        {
            "unique_id": ["large"] * n + ["small"] * n,
            "y": y,
            "big": np.r_[large + rng.normal(0, 5, n), little * 3],
            "small": np.r_[large + rng.normal(0, 40, n), little + rng.normal(0, 0.05, n)],
            "weak": y * 3,
        }
    )


def test_scaled_error_drops_a_family_that_only_dilutes_the_better_ones() -> None:
    results = constructed_results()
    # `noisy` makes every error `good` makes and more of its own: blending it in can only add noise.
    rng = np.random.default_rng(1)
    results["noisy"] = results["good"] + rng.normal(0, 3.0, len(results))

    weights = learn_weights(results, ["good", "noisy", "biased"], "scaled_error")
    inverse = learn_weights(results, ["good", "noisy", "biased"], "inverse_error")

    # 1/MAE² still gives the noisy family some weight, which makes the blend worse than `good` alone.
    assert inverse["noisy"] > 0.01
    assert weights == {"good": 1.0, "noisy": 0.0, "biased": 0.0}


def test_scaled_error_counts_every_series_alike_whatever_its_size() -> None:
    results = per_series_results()

    scaled = learn_weights(results, ["big", "small", "weak"], "scaled_error")
    raw = learn_weights(results, ["big", "small", "weak"], "inverse_error")

    # By raw MAE the large series decides everything; scaled, `small` is far better on the small series
    # and close on the large one, so it takes (nearly) all the weight; `weak` is dropped.
    assert raw["big"] > 0.8
    assert scaled["small"] > 0.9
    assert scaled["weak"] == 0.0
    assert sum(scaled.values()) == pytest.approx(1.0)


def test_scaled_error_blends_families_whose_errors_cancel() -> None:
    rng = np.random.default_rng(3)
    y = rng.gamma(5.0, 2.0, 1000)
    noise = rng.normal(0, 1.0, 1000)
    results = pd.DataFrame({"y": y, "high": y + 2 + noise, "low": y - 2 + noise})

    weights = learn_weights(results, ["high", "low"], "scaled_error")

    # Each alone is off by about 2; their average is off by only the noise.
    assert weights == pytest.approx({"high": 0.5, "low": 0.5}, abs=0.05)


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


def test_a_subset_forecast_equals_the_whole_one_for_old_and_new_series(small_frame: SeriesFrame) -> None:
    frame = young_and_old(small_frame)
    member = model_factory("lgbm", n_estimators=30)()
    ensemble = EnsembleModel(members={"lgbm": member}, weights={"lgbm": 1.0}, min_history=28).fit(frame)
    whole = ensemble.predict(14)
    old = str(small_frame.ids[2])

    member_series = spy_on_series_forecast(member)
    for wanted in ([old], ["S001/NEW"], ["S001/NEW", old]):
        part = ensemble.predict(14, ids=wanted)

        expected = whole[whole["unique_id"].isin(wanted)].reset_index(drop=True)
        pd.testing.assert_frame_equal(part.reset_index(drop=True), expected)
    # the new series' profile reads every established series' forecast, not only the ones asked for
    assert member_series == [1, len(small_frame.ids), len(small_frame.ids)]


def test_predict_with_members_gives_the_blend_and_the_members_that_made_it(small_frame: SeriesFrame) -> None:
    frame = young_and_old(small_frame)
    members = {"lgbm": model_factory("lgbm", n_estimators=30)(), "snaive": model_factory("snaive")()}
    ensemble = EnsembleModel(members=members, weights={"lgbm": 0.75, "snaive": 0.25}, min_history=28).fit(frame)
    old = str(small_frame.ids[1])

    forecast, by_member = ensemble.predict_with_members(14, ids=[old, "S001/NEW"])

    pd.testing.assert_frame_equal(forecast, ensemble.predict(14, ids=[old, "S001/NEW"]))
    assert set(by_member) == {"lgbm", "snaive"}
    for name, member_forecast in by_member.items():
        pd.testing.assert_frame_equal(member_forecast, members[name].predict(14, ids=[old]))
    blended = 0.75 * by_member["lgbm"]["p50"] + 0.25 * by_member["snaive"]["p50"]
    np.testing.assert_allclose(forecast.loc[forecast["unique_id"] == old, "p50"], blended, rtol=1e-9)


def _windows(errors: dict[str, list[float]]) -> pd.DataFrame:
    """Backtest rows of one series, 5 periods per window, each family off by its window's error."""
    windows = len(next(iter(errors.values())))
    window = np.repeat(np.arange(windows), 5)
    y = np.full(len(window), 10.0)
    return pd.DataFrame(
        {"window": window, "unique_id": "a", "y": y}
        | {name: y + np.repeat(np.asarray(off, dtype=float), 5) for name, off in errors.items()}
    )


def test_robust_weights_are_equal_with_a_single_calibration_window_and_say_so() -> None:
    chosen = robust_weights(_windows({"p": [1.0], "q": [4.0]}), ["p", "q"])

    assert chosen.weights == {"p": 0.5, "q": 0.5}
    assert chosen.shrinkage == 1.0
    assert "one calibration window" in chosen.rule


def test_robust_weights_keep_what_windows_agree_on() -> None:
    calibration = _windows({"p": [1.0, 1.0, 1.0], "q": [4.0, 4.0, 4.0]})

    chosen = robust_weights(calibration, ["p", "q"])

    assert chosen.shrinkage == 0.0
    assert chosen.weights == learn_weights(calibration, ["p", "q"])
    assert chosen.weights["p"] == 1.0  # q only dilutes p


def test_robust_weights_pull_toward_equal_when_windows_disagree() -> None:
    # p wins two windows by a little, q wins the third by a lot: learned on any two windows, the
    # weights favour the wrong family for the third.
    calibration = _windows({"p": [1.0, 1.0, 6.0], "q": [1.5, 1.5, 0.0]})

    chosen = robust_weights(calibration, ["p", "q"])

    assert chosen.shrinkage > 0
    learned = learn_weights(calibration, ["p", "q"])
    assert abs(chosen.weights["p"] - 0.5) < abs(learned["p"] - 0.5)
    assert sum(chosen.weights.values()) == pytest.approx(1.0)


def test_auto_resolves_to_the_default_pipeline_of_the_frequency() -> None:
    from salescast.errors import ConfigurationError
    from salescast.models.catalog import parse_models, resolve_models

    assert parse_models("auto") == ["auto"]
    assert resolve_models(["auto"], "D") == ["lgbm", "savg"]
    assert resolve_models(["auto"], "W-SUN") == ["lgbm", "lgbm_mean", "theta"]
    assert resolve_models(["auto"], "MS") == ["lgbm", "lgbm_mean", "theta"]
    assert resolve_models(["lgbm", "ets"], "D") == ["lgbm", "ets"]
    with pytest.raises(ConfigurationError, match="or auto alone"):
        parse_models("auto,lgbm")


def test_a_mean_point_forecast_swaps_the_median_lightgbm_for_the_tweedie_one() -> None:
    from salescast.models.catalog import resolve_models

    assert resolve_models(["auto"], "D", "mean") == ["lgbm_tweedie", "savg"]
    assert resolve_models(["auto"], "W-SUN", "mean") == ["lgbm_tweedie", "theta"]  # both medians: one Tweedie booster
    assert resolve_models(["lgbm", "ets"], "D", "median") == ["lgbm", "ets"]
