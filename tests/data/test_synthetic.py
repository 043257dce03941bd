"""The synthetic generator: shape and types of the frame, and that each effect it promises shows in the data."""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from salescast.data.synthetic import (
    SALES_COLUMNS,
    SyntheticConfig,
    generate_sales,
    holiday_dates,
    write_sales,
)
from salescast.errors import ConfigurationError

# Two years, so that every yearly effect and each US holiday shows twice, yet fast (~0.2 s).
MEDIUM = SyntheticConfig(stores=3, products=120, days=730, seed=7)
SMALL = SyntheticConfig(stores=2, products=10, days=60, seed=3)
SERIES = ["store", "product"]


@pytest.fixture(scope="module")
def sales() -> pd.DataFrame:
    return generate_sales(MEDIUM)


def _weekday_matched_ratio(frame: pd.DataFrame, days: pd.DatetimeIndex, special: pd.DatetimeIndex) -> float:
    """Mean non-promotion units on `days` over the mean on the same weekday one and two weeks either
    side (days in `special` excluded), so weekday mix and season cancel out."""
    daily = frame.loc[~frame["on_promotion"]].groupby("date")["units"].mean()
    days = days[days.isin(daily.index)]
    neighbours = pd.DatetimeIndex(
        [day + pd.Timedelta(weeks=weeks) for day in days for weeks in (-2, -1, 1, 2)]
    ).unique()
    neighbours = neighbours[neighbours.isin(daily.index) & ~neighbours.isin(special)]
    return float(daily[days].mean() / daily[neighbours].mean())


def _holiday_ratios(frame: pd.DataFrame, config: SyntheticConfig) -> tuple[float, float]:
    """Weekday-matched ratios of holidays and of the days just before them."""
    holidays = holiday_dates(config.country, config.start, config.end + datetime.timedelta(days=2))
    eves = (holidays - pd.Timedelta(days=1)).union(holidays - pd.Timedelta(days=2))
    special = holidays.union(eves)
    return (
        _weekday_matched_ratio(frame, holidays, special),
        _weekday_matched_ratio(frame, (holidays - pd.Timedelta(days=1)).difference(holidays), special),
    )


def test_same_seed_gives_the_same_frame_and_another_seed_other_units() -> None:
    pd.testing.assert_frame_equal(generate_sales(SMALL), generate_sales(SMALL))

    keys = ["store", "product", "date"]
    first = generate_sales(SMALL).set_index(keys)["units"]
    other = generate_sales(SyntheticConfig(stores=2, products=10, days=60, seed=4)).set_index(keys)["units"]
    common = first.index.intersection(other.index)
    assert len(common) > 0.5 * len(first)
    assert (first[common] != other[common]).mean() > 0.3


def test_columns_types_and_values(sales: pd.DataFrame) -> None:
    assert tuple(sales.columns) == SALES_COLUMNS
    assert sales["date"].dtype == np.dtype("datetime64[ns]")
    for column in ("store", "store_name", "product", "product_name", "category", "subcategory"):
        assert sales[column].map(lambda value: isinstance(value, str)).all(), column
    for column in ("units", "unit_price", "revenue"):
        assert sales[column].dtype == np.float64, column
    assert sales["on_promotion"].dtype == np.bool_

    assert (sales["units"] >= 0).all()
    assert (sales["units"] == sales["units"].round()).all()
    assert (sales["unit_price"] > 0).all()
    np.testing.assert_array_equal(sales["revenue"], (sales["units"] * sales["unit_price"]).round(2))
    assert not sales.duplicated(["store", "product", "date"]).any()
    assert sales["store"].str.fullmatch(r"S\d{3}").all()
    assert sales["product"].str.fullmatch(r"P\d{5}").all()


def test_catalog_is_a_hierarchy(sales: pd.DataFrame) -> None:
    assert sales.groupby("subcategory")["category"].nunique().eq(1).all()
    assert sales.groupby("product")[["category", "subcategory", "product_name"]].nunique().eq(1).all().all()
    assert sales.groupby("store")["store_name"].nunique().eq(1).all()
    assert sales.drop_duplicates("product")["product_name"].is_unique
    assert sales["category"].nunique() >= 6
    # Categories sell at different levels: the fastest sells at least 3x the slowest per product-day.
    by_category = sales.groupby("category")["units"].mean()
    assert by_category.max() > 3 * by_category.min()


def test_weekends_sell_more_than_midweek(sales: pd.DataFrame) -> None:
    regular = sales.loc[~sales["on_promotion"]]
    by_weekday = regular.groupby(regular["date"].dt.weekday)["units"].mean()
    ratio = by_weekday[[5, 6]].mean() / by_weekday[[1, 2]].mean()
    assert 1.4 < ratio < 1.9  # the profiles put about 1.6


def test_holidays_and_the_days_before_sell_more(sales: pd.DataFrame) -> None:
    on_holiday, day_before = _holiday_ratios(sales, MEDIUM)
    assert on_holiday > 1.2  # +30% put in
    assert day_before > 1.1  # +20% put in


def test_without_holiday_uplift_holidays_are_ordinary_days() -> None:
    config = SyntheticConfig(stores=3, products=120, days=730, seed=7, holiday_uplift=0.0)
    on_holiday, day_before = _holiday_ratios(generate_sales(config), config)
    assert 0.9 < on_holiday < 1.1
    assert 0.9 < day_before < 1.1


def test_promotions_discount_the_price_and_lift_units(sales: pd.DataFrame) -> None:
    assert 0.04 < sales["on_promotion"].mean() < 0.12
    promoted = sales.loc[sales.groupby("product")["on_promotion"].transform("any")]
    by_flag = promoted.groupby("on_promotion")["units"].mean()
    assert by_flag[True] > 1.4 * by_flag[False]

    # The regular price of a promotion day is the last price seen before it without one.
    regular = promoted["unit_price"].where(~promoted["on_promotion"])
    regular = regular.groupby([promoted["store"], promoted["product"]]).transform(lambda p: p.ffill().bfill())
    on_promotion = promoted["on_promotion"]
    discount = 1 - promoted.loc[on_promotion, "unit_price"] / regular[on_promotion]
    assert (discount > 0.08).all()
    assert (discount < 0.42).all()


def test_regular_prices_change_and_demand_follows() -> None:
    config = SyntheticConfig(stores=3, products=120, days=730, seed=7, price_changes_per_year=2.0)
    sales = generate_sales(config)
    regular = sales.loc[~sales["on_promotion"]]
    prices_per_product = regular.groupby("product")["unit_price"].nunique()
    assert (prices_per_product > 1).mean() > 0.5

    # Within each product, regular-price days at the higher end sell less (elasticity about -1.5).
    relative_price = regular["unit_price"] / regular.groupby(SERIES)["unit_price"].transform("median")
    relative_units = regular["units"] / regular.groupby(SERIES)["units"].transform("mean")
    raised = relative_price > 1.05
    lowered = relative_price < 0.95
    assert relative_units[raised].mean() < 0.9 * relative_units[lowered].mean()


def test_slow_movers_have_intermittent_demand(sales: pd.DataFrame) -> None:
    zero_share = sales["units"].eq(0).astype(float).groupby([sales["store"], sales["product"]]).mean()
    assert (zero_share > 0.3).mean() > 0.25
    mostly_zero = zero_share[zero_share > 0.7]
    assert len(mostly_zero) > 0.1 * len(zero_share)  # the slow movers put in sell 0.05-0.5 a day
    assert (mostly_zero < 1).all()  # yet they do sell now and then
    assert (zero_share < 0.05).any()  # while fast movers sell every day


def test_launched_products_start_late_and_run_to_the_end(sales: pd.DataFrame) -> None:
    span = sales.groupby(SERIES)["date"].agg(["min", "max", "count"])
    start, end = pd.Timestamp(MEDIUM.start), pd.Timestamp(MEDIUM.end)
    assert (span["max"] == end).all()
    assert (span["count"] == (span["max"] - span["min"]).dt.days + 1).all()  # no gaps
    launches = span.groupby("product")["min"].agg(["min", "max"])
    assert (launches["min"] == launches["max"]).all()  # a product launches in every store at once
    late = launches.loc[launches["min"] > start, "min"]
    assert len(late) == round(0.15 * MEDIUM.products)
    assert late.min() > start + pd.Timedelta(days=30)


def test_toys_peak_before_christmas_and_garden_in_summer(sales: pd.DataFrame) -> None:
    month = sales["date"].dt.month
    by_month = sales.groupby([sales["category"], month])["units"].mean()
    assert by_month["Toys"][12] > 1.5 * by_month["Toys"][3]
    assert by_month["Garden"][7] > 2.0 * by_month["Garden"][1]
    assert by_month["Grocery"][7] < 1.3 * by_month["Grocery"][1]


def test_small_config_has_one_row_per_series_day_since_launch() -> None:
    sales = generate_sales(SMALL)
    assert sales[SERIES].drop_duplicates().shape[0] == SMALL.stores * SMALL.products
    first = sales.groupby(SERIES)["date"].min()
    days_since_launch = (pd.Timestamp(SMALL.end) - first).dt.days + 1
    assert len(sales) == days_since_launch.sum()
    assert (first > pd.Timestamp(SMALL.start)).any()
    assert sales.equals(sales.sort_values(["store", "product", "date"]))


def test_holiday_dates_follow_the_country() -> None:
    us = holiday_dates("US", datetime.date(2023, 1, 1), datetime.date(2023, 12, 31))
    assert pd.Timestamp("2023-07-04") in us
    assert pd.Timestamp("2023-12-25") in us
    assert us.is_monotonic_increasing
    germany = holiday_dates("DE", datetime.date(2023, 1, 1), datetime.date(2023, 12, 31))
    assert pd.Timestamp("2023-10-03") in germany
    assert pd.Timestamp("2023-07-04") not in germany
    with pytest.raises(ConfigurationError, match="XX"):
        holiday_dates("XX", datetime.date(2023, 1, 1), datetime.date(2023, 12, 31))


@pytest.mark.parametrize("changes", [{"stores": 0}, {"days": 0}, {"promo_share": 1.5}, {"overdispersion": -0.1}])
def test_invalid_config_is_refused(changes: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        SyntheticConfig(**changes)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["sales.csv", "sales.csv.gz", "sales.parquet"])
def test_written_sales_read_back_equal(tmp_path: Path, name: str) -> None:
    sales = generate_sales(SMALL)
    path = tmp_path / "out" / name
    write_sales(sales, path)
    if name.endswith(".parquet"):
        back = pd.read_parquet(path)
    else:
        back = pd.read_csv(path, parse_dates=["date"], dtype={"units": float})
    pd.testing.assert_frame_equal(back, sales)
    assert list(path.parent.iterdir()) == [path]


def test_unknown_extension_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"\.xlsx"):
        write_sales(generate_sales(SMALL), tmp_path / "sales.xlsx")
    assert not list(tmp_path.iterdir())
