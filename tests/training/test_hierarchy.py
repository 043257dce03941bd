"""Bottom-up sums equal hand-computed ones, and reconciliation matches the closed forms on a tiny hierarchy.

The hierarchy: total -> categories A, B -> series s1/a1, s1/a2 (A) and s2/b1, s2/b2 (B).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from salescast.training.hierarchy import aggregate, hierarchy_levels, reconcile, reconciliation_report
from salescast.training.metrics import mase, point_metrics

IDS = ["s1/a1", "s1/a2", "s2/b1", "s2/b2"]
DAYS = pd.date_range("2024-03-01", periods=10, freq="D")
T = np.arange(10, dtype=float)
# Hand-chosen actuals and p50s per series (whole numbers, so every sum is exact).
ACTUALS = {"s1/a1": T + 1, "s1/a2": 2 * T, "s2/b1": 10 - T, "s2/b2": np.full(10, 3.0)}
P50 = {"s1/a1": T + 2, "s1/a2": 2 * T + 1, "s2/b1": 9 - T, "s2/b2": np.full(10, 4.0)}


@pytest.fixture
def static() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "unique_id": IDS,
            "product": ["a1", "a2", "b1", "b2"],
            "store": ["s1", "s1", "s2", "s2"],
            "category": ["A", "A", "B", "B"],
            "subcategory": ["", "", "", ""],
        }
    )


def _results(windows: int = 1) -> pd.DataFrame:
    parts = []
    for window in range(windows):
        for uid in IDS:
            # Later windows shift the values so that mixing windows up would show.
            parts.append(
                pd.DataFrame(
                    {
                        "window": window,
                        "cutoff": DAYS[0] - pd.Timedelta(days=1),
                        "unique_id": uid,
                        "ds": DAYS,
                        "y": ACTUALS[uid] + 5 * window,
                        "m": P50[uid] + 5 * window,
                    }
                )
            )
    return pd.concat(parts, ignore_index=True)


def _rows(frame: pd.DataFrame, level: str, key: str, column: str) -> np.ndarray:
    part = frame[(frame["level"] == level) & (frame["key"] == key)].sort_values("ds")
    return part[column].to_numpy()


def _upper(static: pd.DataFrame, total_shift: float, results: pd.DataFrame | None = None) -> pd.DataFrame:
    """Independent upper-level forecasts: the category sums, and a total `total_shift` above their sum."""
    sums = aggregate(_results() if results is None else results, static, ["m"])
    upper = sums[sums["level"] != "series"].copy()
    upper.loc[upper["level"] == "total", "m"] += total_shift
    return upper


def test_hierarchy_levels_fill_missing_ancestors(static: pd.DataFrame) -> None:
    static = static.assign(category=pd.Series(["A", None, "B", " "])).drop(columns="store")

    tree = hierarchy_levels(static, ("category", "store"), ids=[*IDS, "s3/new"])

    assert tree["unique_id"].tolist() == [*IDS, "s3/new"]
    assert tree["category"].tolist() == ["A", "unknown", "B", "unknown", "unknown"]
    assert tree["store"].tolist() == ["s1", "s1", "s2", "s2", "s3"]  # from the ids when static has no store
    assert (tree["total"] == "total").all()
    with pytest.raises(ValueError, match="unknown hierarchy level"):
        hierarchy_levels(static, ("region",))


def test_aggregate_equals_hand_computed_sums_and_is_coherent(static: pd.DataFrame) -> None:
    summed = aggregate(_results(), static, ["y", "m"])

    assert sorted(summed["level"].unique()) == ["category", "series", "total"]
    assert len(summed) == 10 * (4 + 2 + 1)
    # A: (t + 1) + 2t = 3t + 1 and (t + 2) + (2t + 1) = 3t + 3; B: (10 - t) + 3 = 13 - t and (9 - t) + 4 = 13 - t.
    np.testing.assert_array_equal(_rows(summed, "category", "A", "y"), 3 * T + 1)
    np.testing.assert_array_equal(_rows(summed, "category", "A", "m"), 3 * T + 3)
    np.testing.assert_array_equal(_rows(summed, "category", "B", "y"), 13 - T)
    np.testing.assert_array_equal(_rows(summed, "category", "B", "m"), 13 - T)
    np.testing.assert_array_equal(_rows(summed, "total", "total", "y"), 2 * T + 14)
    np.testing.assert_array_equal(_rows(summed, "total", "total", "m"), 2 * T + 16)
    np.testing.assert_array_equal(_rows(summed, "series", "s2/b1", "m"), 9 - T)
    for column in ("y", "m"):
        categories = _rows(summed, "category", "A", column) + _rows(summed, "category", "B", column)
        np.testing.assert_array_equal(_rows(summed, "total", "total", column), categories)


def test_aggregate_keeps_windows_apart_and_can_add_stores(static: pd.DataFrame) -> None:
    summed = aggregate(_results(windows=2), static, ["y"], levels=("category", "store"))

    total = summed[summed["level"] == "total"]
    assert len(total) == 2 * 10  # one total per window and day, never one per day across windows
    later = total[total["window"] == 1].sort_values("ds")["y"].to_numpy()
    np.testing.assert_array_equal(later, 2 * T + 14 + 4 * 5)
    np.testing.assert_array_equal(
        summed[(summed["level"] == "store") & (summed["key"] == "s1") & (summed["window"] == 0)]["y"].to_numpy(),
        3 * T + 1,
    )


def test_a_sum_with_a_missing_part_is_missing(static: pd.DataFrame) -> None:
    results = _results()
    results.loc[(results["unique_id"] == "s1/a2") & (results["ds"] == DAYS[3]), "y"] = np.nan

    summed = aggregate(results, static, ["y"])

    assert np.isnan(_rows(summed, "category", "A", "y")[3])
    assert np.isnan(_rows(summed, "total", "total", "y")[3])
    assert _rows(summed, "category", "B", "y")[3] == 13 - 3
    assert np.isfinite(np.delete(_rows(summed, "total", "total", "y"), 3)).all()


def test_bottom_up_returns_the_input_unchanged(static: pd.DataFrame) -> None:
    results = _results(windows=2)

    done = reconcile(results, static, "m", "bottom_up")

    np.testing.assert_array_equal(done.forecasts["m"].to_numpy(), results["m"].to_numpy())
    pd.testing.assert_frame_equal(done.forecasts.drop(columns="m"), results.drop(columns="m"))
    assert done.notes == []


@pytest.mark.parametrize("method", ["ols", "wls_struct"])
def test_minimum_trace_leaves_coherent_bases_unchanged(static: pd.DataFrame, method: str) -> None:
    results = _results(windows=2)

    done = reconcile(results, static, "m", method)  # type: ignore[arg-type]

    # Bottom-up bases are coherent already and MinTrace projects onto the coherent forecasts.
    np.testing.assert_allclose(done.forecasts["m"].to_numpy(), results["m"].to_numpy(), atol=1e-9)
    levels = done.levels[done.levels["window"] == 0]
    series = levels[levels["level"] == "series"]
    category_a = series[series["key"].isin(["s1/a1", "s1/a2"])].groupby("ds")["m"].sum().to_numpy()
    np.testing.assert_allclose(_rows(levels, "category", "A", "m"), category_a)
    categories = _rows(levels, "category", "A", "m") + _rows(levels, "category", "B", "m")
    np.testing.assert_allclose(_rows(levels, "total", "total", "m"), categories)


@pytest.mark.parametrize(("method", "shift"), [("ols", 7.0), ("wls_struct", 12.0)])
def test_minimum_trace_spreads_an_incoherent_total_by_its_closed_form(
    static: pd.DataFrame, method: str, shift: float
) -> None:
    # A total `d` above its parts: OLS solves (S'S) x = S'e_total = 1, so every series gets d / (1 + 2 + 4);
    # WLS with W = diag(4, 2, 2, 1, 1, 1, 1) gets d / 4 / (1 + 1/2 + 1/4 * 4) = d / 12.
    results = _results()

    done = reconcile(results, static, "m", method, upper=_upper(static, shift))  # type: ignore[arg-type]

    np.testing.assert_allclose(done.forecasts["m"].to_numpy(), results["m"].to_numpy() + 1.0, atol=1e-9)
    np.testing.assert_allclose(_rows(done.levels, "total", "total", "m"), 2 * T + 16 + 4.0, atol=1e-9)


def _history(seed: int = 3) -> pd.DataFrame:
    """60 days before the cutoff with fitted values: series of category A share their errors, b1 is noisy."""
    rng = np.random.default_rng(seed)
    days = pd.date_range(end=DAYS[0] - pd.Timedelta(days=1), periods=60, freq="D")
    shared = rng.normal(0, 2, len(days))
    errors = {
        "s1/a1": shared + rng.normal(0, 0.3, len(days)),
        "s1/a2": shared + rng.normal(0, 0.3, len(days)),
        "s2/b1": rng.normal(0, 4, len(days)),
        "s2/b2": rng.normal(0, 0.5, len(days)),
    }
    parts = []
    for uid in IDS:
        y = rng.poisson(6, len(days)).astype(float)
        parts.append(pd.DataFrame({"unique_id": uid, "ds": days, "y": y, "m": y - errors[uid]}))
    history = pd.concat(parts, ignore_index=True)
    history.loc[5, "m"] = np.nan  # a missing fitted value must not break the covariance
    return history


def test_mint_shrink_with_residuals_is_coherent_non_negative_and_uses_them(static: pd.DataFrame) -> None:
    results = _results()
    upper = _upper(static, -60.0)  # a total forecast below 0 drags some series below 0 before clipping

    done = reconcile(results, static, "m", "mint_shrink", history=_history(), upper=upper)
    structural = reconcile(results, static, "m", "wls_struct", upper=upper)

    assert done.notes == []
    assert (done.forecasts["m"] >= 0).all()
    assert (done.forecasts["m"] == 0).any()  # clipped, not negative
    assert not np.allclose(done.forecasts["m"], results["m"])
    assert not np.allclose(done.forecasts["m"], structural.forecasts["m"])  # the residuals change the weights
    series = done.forecasts.groupby("ds")["m"].sum().to_numpy()
    np.testing.assert_allclose(_rows(done.levels, "total", "total", "m"), series)
    categories = _rows(done.levels, "category", "A", "m") + _rows(done.levels, "category", "B", "m")
    np.testing.assert_allclose(_rows(done.levels, "total", "total", "m"), categories)

    same = reconcile(_results(), static, "m", "mint_shrink", history=_history())
    np.testing.assert_allclose(same.forecasts["m"], _results()["m"], atol=1e-8)


def test_negative_reconciled_forecasts_are_clipped_to_zero(static: pd.DataFrame) -> None:
    results = _results()
    results.loc[results["unique_id"] == "s2/b2", "m"] = 0.0

    done = reconcile(results, static, "m", "ols", upper=_upper(static, -7.0, results))  # each series - 1

    b2 = done.forecasts["unique_id"] == "s2/b2"
    np.testing.assert_array_equal(done.forecasts.loc[b2, "m"].to_numpy(), np.zeros(10))  # -1 clipped to 0
    expected = np.clip(results["m"].to_numpy() - 1.0, 0.0, None)  # b1 ends at 9 - 9 - 1 = -1 too
    np.testing.assert_allclose(done.forecasts["m"].to_numpy(), expected, atol=1e-9)
    series = done.forecasts.groupby("ds")["m"].sum().to_numpy()
    np.testing.assert_allclose(_rows(done.levels, "total", "total", "m"), series)  # re-summed after clipping


def test_mint_shrink_without_residuals_falls_back_to_wls_struct(static: pd.DataFrame) -> None:
    results = _results()
    upper = _upper(static, 12.0)

    done = reconcile(results, static, "m", "mint_shrink", upper=upper)
    after_cutoff = _history().assign(ds=lambda h: h["ds"] + pd.Timedelta(days=61))  # all of it after the cutoff
    future_only = reconcile(results, static, "m", "mint_shrink", history=after_cutoff, upper=upper)

    assert "wls_struct" in done.note
    np.testing.assert_allclose(done.forecasts["m"], results["m"] + 1.0, atol=1e-9)
    assert "wls_struct" in future_only.note
    np.testing.assert_allclose(future_only.forecasts["m"], results["m"] + 1.0, atol=1e-9)


def test_reconciliation_report_scores_every_method_at_every_level(static: pd.DataFrame) -> None:
    results = _results()
    scales = pd.Series({"s1/a1": 1.0, "s1/a2": 2.0, "s2/b1": 1.0, "s2/b2": 0.5})
    methods = ["bottom_up", "ols", "mint_shrink"]

    report = reconciliation_report(results, static, "m", methods, scales, upper=_upper(static, 7.0))  # type: ignore[arg-type]

    assert len(report) == 4 * 3
    assert set(zip(report["method"], report["level"], strict=True)) == {
        (method, level) for method in ["base", *methods] for level in ("series", "category", "total")
    }
    assert np.isfinite(report["mae"]).all()
    base = report.set_index(["method", "level"])
    y, m = results["y"].to_numpy(), results["m"].to_numpy()
    assert base.loc[("base", "series"), "mae"] == pytest.approx(point_metrics(y, m)["mae"], rel=1e-12)
    assert base.loc[("base", "series"), "mae"] == pytest.approx(1.0)  # every series is off by exactly 1
    per_series = [mase(results.loc[results["unique_id"] == uid, "y"].to_numpy(), P50[uid], scales[uid]) for uid in IDS]
    assert base.loc[("base", "series"), "mase"] == pytest.approx(np.mean(per_series))
    # The base total is the independent forecast, 2 + 7 above the actual total; OLS moves it 4 / 7 of the way.
    assert base.loc[("base", "total"), "mae"] == pytest.approx(9.0)
    assert base.loc[("ols", "total"), "mae"] == pytest.approx(2.0 + 4.0)
    assert base.loc[("bottom_up", "total"), "mae"] == pytest.approx(2.0)
    assert "wls_struct" in str(base.loc[("mint_shrink", "series"), "note"])
