"""Metrics equal hand-computed values on a small frame, and follow the stated rules for zeros."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from salescast.training.metrics import evaluate, mape, mase, naive_scale, point_metrics, smape, wape

Y = np.array([10.0, 0.0, 5.0, 5.0])
YHAT = np.array([8.0, 1.0, 5.0, 7.0])


def test_point_metrics_equal_hand_computed_values() -> None:
    metrics = point_metrics(Y, YHAT)

    # errors: -2, +1, 0, +2 (yhat - y); |e| = 2, 1, 0, 2
    assert metrics["mae"] == pytest.approx(5 / 4)
    assert metrics["rmse"] == pytest.approx(math.sqrt((4 + 1 + 0 + 4) / 4))
    # mean 5, SST = 25 + 25 + 0 + 0 = 50, SSE = 9
    assert metrics["r2"] == pytest.approx(1 - 9 / 50)
    # MAPE skips the zero actual: (2/10 + 0/5 + 2/5) / 3
    assert metrics["mape"] == pytest.approx((0.2 + 0.0 + 0.4) / 3 * 100)
    # sMAPE: 2*2/18, 2*1/1, 0, 2*2/12
    assert metrics["smape"] == pytest.approx((4 / 18 + 2 + 0 + 4 / 12) / 4 * 100)
    assert metrics["wape"] == pytest.approx(5 / 20 * 100)
    assert metrics["bias"] == pytest.approx((-2 + 1 + 0 + 2) / 20 * 100)


def test_zero_rules() -> None:
    zeros = np.zeros(3)
    assert math.isnan(mape(zeros, np.ones(3)))
    assert smape(zeros, zeros) == 0.0
    assert math.isnan(wape(zeros, np.ones(3)))


def test_mase_scales_by_the_in_sample_seasonal_naive_error() -> None:
    history = np.array([1.0, 2.0, 3.0, 5.0, 2.0, 3.0, 4.0, 6.0])
    scale = naive_scale(history, season=4)

    # seasonal differences: |2-1|, |3-2|, |4-3|, |6-5| -> 1
    assert scale == pytest.approx(1.0)
    assert mase(Y, YHAT, scale) == pytest.approx(5 / 4)
    # a flat season falls back to the one-step naive scale
    assert naive_scale(np.array([1.0, 3.0, 1.0, 3.0]), season=2) == pytest.approx(2.0)


def test_evaluate_reports_series_groups_and_overall_with_coverage() -> None:
    results = pd.DataFrame(
        {
            "unique_id": ["a", "a", "b", "b"],
            "ds": pd.to_datetime(["2024-01-01", "2024-01-02"] * 2),
            "y": Y,
            "m": YHAT,
            "m-p10": YHAT - 1.5,
            "m-p90": YHAT + 1.5,
        }
    )
    scales = pd.Series({"a": 2.0, "b": 1.0})

    table = evaluate(results, ["m"], scales, groups=pd.Series({"a": "X", "b": "Y"})).set_index(["level", "key"])

    assert table.loc[("series", "a"), "mae"] == pytest.approx(1.5)
    assert table.loc[("series", "a"), "mase"] == pytest.approx(0.75)
    assert table.loc[("series", "b"), "mase"] == pytest.approx(1.0)
    assert table.loc[("group", "X"), "wape"] == pytest.approx(3 / 10 * 100)
    assert table.loc[("overall", "all"), "mase"] == pytest.approx((0.75 + 1.0) / 2)
    assert table.loc[("overall", "all"), "mae"] == pytest.approx(5 / 4)
    # |e| <= 1.5 inside the band: errors 2, 1, 0, 2 -> 2 of 4 covered
    assert table.loc[("overall", "all"), "coverage"] == pytest.approx(50.0)
