"""The series frame: frequency inference, documented gap filling, clear errors for bad input."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, insert

from salescast.data.schema import Product, SalesFact, Store
from salescast.errors import DataValidationError
from salescast.features.frame import infer_freq, load_series, prepare


def long(ds: list[str], y: list[float], uid: str = "a") -> pd.DataFrame:
    return pd.DataFrame({"unique_id": uid, "ds": pd.to_datetime(ds), "y": y})


@pytest.mark.parametrize(
    "dates, freq",
    [
        (pd.date_range("2024-01-01", periods=10, freq="D"), "D"),
        (pd.date_range("2024-01-07", periods=10, freq="W-SUN"), "W-SUN"),
        (pd.date_range("2024-01-01", periods=10, freq="MS"), "MS"),
        (pd.date_range("2024-01-31", periods=10, freq="ME"), "ME"),
    ],
)
def test_frequency_is_inferred_from_the_dates(dates: pd.DatetimeIndex, freq: str) -> None:
    assert infer_freq(pd.Series(dates)) == freq


def test_gaps_are_filled_with_zero_sales_and_exogenous_values_carried_forward() -> None:
    data = long(["2024-01-01", "2024-01-02", "2024-01-05"], [3, 4, 5]).assign(price=[2.0, 2.5, 3.0])

    frame = prepare(data, freq="D")

    assert frame.data["ds"].dt.day.tolist() == [1, 2, 3, 4, 5]
    assert frame.data["y"].tolist() == [3, 4, 0, 0, 5]
    assert frame.data["price"].tolist() == [2.0, 2.5, 2.5, 2.5, 3.0]


def test_gaps_can_be_refused_instead() -> None:
    with pytest.raises(DataValidationError, match="1 series have missing periods"):
        prepare(long(["2024-01-01", "2024-01-02", "2024-01-05"], [3, 4, 5]), freq="D", fill="error")


def test_series_of_different_lengths_and_starts_keep_their_own_span() -> None:
    data = pd.concat(
        [
            long(["2024-01-01", "2024-01-02", "2024-01-03"], [1, 2, 3], "a"),
            long(["2024-01-02", "2024-01-03"], [5, 6], "b"),
        ]
    )

    frame = prepare(data, freq="D")

    assert frame.lengths().to_dict() == {"a": 3, "b": 2}


@pytest.mark.parametrize(
    "data, message",
    [
        (long(["2024-01-01", "2024-01-01", "2024-01-02"], [1, 2, 3]), r"1 duplicated \(unique_id, ds\) rows"),
        (long(["2024-01-01", "2024-01-02", "2024-01-03"], [1, np.nan, 3]), "1 missing or non-finite target"),
        (long(["2024-01-01", "2024-01-02"], [1, 2]), "fewer than 3 distinct dates"),
        (pd.DataFrame({"unique_id": ["a"], "y": [1.0]}), r"needs columns \['ds'\]"),
    ],
)
def test_bad_frames_are_clear_errors(data: pd.DataFrame, message: str) -> None:
    with pytest.raises(DataValidationError, match=message):
        prepare(data)


def test_rows_between_periods_are_refused() -> None:
    data = long(["2024-01-01", "2024-02-01", "2024-02-15", "2024-03-01"], [1, 2, 3, 4])

    with pytest.raises(DataValidationError, match="fall between the MS periods"):
        prepare(data, freq="MS")


def test_a_subset_of_every_series_is_the_frame_itself_and_a_smaller_one_a_copy() -> None:
    data = pd.DataFrame(
        {"unique_id": ["a", "a", "b"], "ds": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-01"]), "y": 1.0}
    )
    frame = prepare(data, freq="D")

    assert frame.subset(["a", "b", "c"]) is frame
    smaller = frame.subset(["b"])
    assert list(smaller.data["unique_id"]) == ["b"] and smaller is not frame


def test_stored_non_finite_values_are_skipped_with_a_warning_not_a_refusal(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """A row stored before ingestion rejected inf (or written by hand) must not block every training."""
    days = pd.date_range("2024-01-01", periods=10).date
    with engine.begin() as conn:
        conn.execute(insert(Store), [{"id": 1, "code": "s1"}])
        conn.execute(insert(Product), [{"id": 1, "sku": "A"}, {"id": 2, "sku": "B"}])
        conn.execute(
            insert(SalesFact),
            [
                {"product_id": p, "store_id": 1, "date": d, "units": u, "unit_price": price, "on_promotion": False}
                for p in (1, 2)
                for i, d in enumerate(days)
                for u, price in [
                    (float("inf") if (p, i) == (1, 4) else float(i), float("-inf") if (p, i) == (2, 6) else 2.0)
                ]
            ],
        )
    caplog.set_level(logging.WARNING, logger="salescast.features.frame")

    frame = load_series(engine, freq="D")

    a = frame.data[frame.data["unique_id"] == "s1/A"]
    assert a["y"].tolist() == [0.0, 1.0, 2.0, 3.0, 0.0, 5.0, 6.0, 7.0, 8.0, 9.0]  # the day is a gap, filled as no sales
    b = frame.data[frame.data["unique_id"] == "s1/B"]
    assert b["price"].tolist() == [2.0] * 6 + [2.0, 2.0, 2.0, 2.0] and np.isfinite(frame.data["price"]).all()
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "features.frame.skipped rows=1 column=units reason=non-finite series=s1/A",
        "features.frame.skipped rows=1 column=price reason=non-finite, read as unknown series=s1/B",
    ]
