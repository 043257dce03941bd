"""The read queries of the forecast API, on a small store whose every number is known."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine

from salescast.errors import DataValidationError, NotFoundError
from salescast.serving import queries
from tests.serving.catalog_fixtures import (
    add_categories,
    add_forecasts,
    add_products,
    add_sales,
    add_stores,
    add_version,
    days_from,
    set_price,
)

DATA_END = dt.date(2024, 3, 31)
START = dt.date(2024, 4, 1)
HISTORY = START - dt.timedelta(days=60)


@dataclass
class Shop:
    version: int
    products: dict[str, int]
    stores: dict[str, int]


@pytest.fixture
def shop(engine: Engine) -> Shop:
    """Electronics > Phones and Garden; two stores; 91 daily forecasts per series with constant values.

    Per day (p10, p50, p90): PHN-1 (8, 10, 13) in S1 and (4, 5, 7) in S2; LAP-100% (15, 20, 30);
    TV-1000 (1, 2, 4); CBL-1 (0, 1, 3, a cold start); G_1 (40, 50, 60), all in S1.
    Sales over the 60 days before the start: PHN-1 8/day in S1 and 2/day in S2 at 90, repriced on the
    last day to 100 (S1) and 110 (S2); LAP-100% 10/day at 500; G_1 50/day at 20. TV-1000 sold once, long
    before, at 1000; CBL-1 never.
    """
    add_categories(engine, {"Electronics": None, "Phones": "Electronics", "Garden": None})
    products = add_products(
        engine,
        [
            ("PHN-1", "Phone X", "Phones"),
            ("CBL-1", "Cable", "Phones"),
            ("LAP-100%", "Laptop 100%", "Electronics"),
            ("TV-1000", "Television", "Electronics"),
            ("G_1", "Rake", "Garden"),
        ],
    )
    stores = add_stores(engine, ["S1", "S2"])
    s1, s2 = stores["S1"], stores["S2"]
    version = add_version(engine, DATA_END)
    quarter = days_from(START, 91)
    add_forecasts(engine, version, products["PHN-1"], s1, quarter, 8, 10, 13)
    add_forecasts(engine, version, products["PHN-1"], s2, quarter, 4, 5, 7)
    add_forecasts(engine, version, products["LAP-100%"], s1, quarter, 15, 20, 30)
    add_forecasts(engine, version, products["TV-1000"], s1, quarter, 1, 2, 4)
    add_forecasts(engine, version, products["CBL-1"], s1, quarter, 0, 1, 3, method="cold_start")
    add_forecasts(engine, version, products["G_1"], s1, quarter, 40, 50, 60)
    add_sales(engine, products["PHN-1"], s1, HISTORY, 60, units=8, price=90)
    add_sales(engine, products["PHN-1"], s2, HISTORY, 60, units=2, price=90)
    set_price(engine, products["PHN-1"], s1, DATA_END, 100)
    set_price(engine, products["PHN-1"], s2, DATA_END, 110)
    add_sales(engine, products["LAP-100%"], s1, HISTORY, 60, units=10, price=500)
    add_sales(engine, products["G_1"], s1, HISTORY, 60, units=50, price=20)
    add_sales(engine, products["TV-1000"], s1, dt.date(2023, 12, 1), 1, units=1, price=1000)
    return Shop(version, products, stores)


def interval(days: int, terms: list[tuple[float, float, float]]) -> dict[str, object]:
    """The documented rule, written out: the sum of p50s, p10/p90 sqrt(sum of squares) away."""
    p50 = days * sum(t[1] for t in terms)
    low = math.sqrt(days * sum((t[1] - t[0]) ** 2 for t in terms))
    high = math.sqrt(days * sum((t[2] - t[1]) ** 2 for t in terms))
    return {
        "p10": pytest.approx(p50 - low, abs=1e-3),
        "p50": pytest.approx(p50),
        "p90": pytest.approx(p50 + high, abs=1e-3),
    }


# -- top products ---------------------------------------------------------------------------------------


def test_top_products_of_a_category_includes_its_subcategories_ranked_by_units(engine: Engine, shop: Shop) -> None:
    result = queries.top_products(engine, shop.version, "week", "Electronics", None, 10, "units")

    assert [p["product_id"] for p in result["products"]] == ["LAP-100%", "PHN-1", "TV-1000", "CBL-1"]
    assert [p["rank"] for p in result["products"]] == [1, 2, 3, 4]
    assert result["total"] == 4
    assert (result["period_start"], result["period_end"]) == ("2024-04-01", "2024-04-07")
    assert (result["time_period"], result["category"], result["store"], result["rank_by"]) == (
        "week",
        "Electronics",
        None,
        "units",
    )
    laptop, phone, tv, cable = result["products"]
    assert laptop == {
        "rank": 1,
        "product_id": "LAP-100%",
        "name": "Laptop 100%",
        "category": "Electronics",
        "units": interval(7, [(15, 20, 30)]),
        "revenue": 70000.0,
        "trend_pct": 100.0,
        "history_units": 70.0,
        "method": "model",
    }
    # Two stores' days are independent terms of one sum; the price is the mean over the stores that sold
    # on the latest priced day (100 and 110), not the older 90.
    assert phone["units"] == interval(7, [(8, 10, 13), (4, 5, 7)])
    assert phone["category"] == "Phones"
    assert (phone["history_units"], phone["trend_pct"], phone["revenue"]) == (70.0, 50.0, 11025.0)
    # No sale in the week before: no trend; its price comes from a sale months earlier.
    assert (tv["history_units"], tv["trend_pct"], tv["revenue"]) == (0.0, None, 14000.0)
    assert (cable["method"], cable["revenue"], cable["trend_pct"]) == ("cold_start", None, None)


def test_a_subcategory_holds_only_its_own_products(engine: Engine, shop: Shop) -> None:
    result = queries.top_products(engine, shop.version, "week", "Phones", None, 10, "units")

    assert [p["product_id"] for p in result["products"]] == ["PHN-1", "CBL-1"]


def test_without_a_category_every_product_is_ranked(engine: Engine, shop: Shop) -> None:
    result = queries.top_products(engine, shop.version, "week", None, None, 10, "units")

    assert [p["product_id"] for p in result["products"]] == ["G_1", "LAP-100%", "PHN-1", "TV-1000", "CBL-1"]


def test_a_month_sums_thirty_days_against_the_thirty_before(engine: Engine, shop: Shop) -> None:
    result = queries.top_products(engine, shop.version, "month", "Phones", None, 1, "units")

    (phone,) = result["products"]
    assert phone["units"] == interval(30, [(8, 10, 13), (4, 5, 7)])
    assert phone["history_units"] == 300.0
    assert phone["trend_pct"] == 50.0
    assert result["period_end"] == "2024-04-30"
    assert result["total"] == 2


def test_limit_keeps_the_best_and_total_counts_all_that_matched(engine: Engine, shop: Shop) -> None:
    result = queries.top_products(engine, shop.version, "quarter", "Electronics", None, 2, "units")

    assert [p["product_id"] for p in result["products"]] == ["LAP-100%", "PHN-1"]
    assert result["total"] == 4
    assert result["period_end"] == "2024-06-30"


def test_a_store_filter_counts_that_store_only_at_its_own_price(engine: Engine, shop: Shop) -> None:
    result = queries.top_products(engine, shop.version, "week", "Electronics", "S2", 10, "units")

    (phone,) = result["products"]
    assert phone["product_id"] == "PHN-1"
    assert phone["units"] == interval(7, [(4, 5, 7)])
    assert (phone["history_units"], phone["trend_pct"], phone["revenue"]) == (14.0, 150.0, 35 * 110.0)


def test_ranking_by_revenue_puts_unpriced_products_last(engine: Engine, shop: Shop) -> None:
    result = queries.top_products(engine, shop.version, "week", "Electronics", None, 10, "revenue")

    assert [(p["product_id"], p["revenue"]) for p in result["products"]] == [
        ("LAP-100%", 70000.0),
        ("TV-1000", 14000.0),
        ("PHN-1", 11025.0),
        ("CBL-1", None),
    ]


def test_weekly_forecasts_count_the_periods_dated_within_the_days(engine: Engine, shop: Shop) -> None:
    weekly = add_version(engine, DATA_END, number=2)
    weeks = days_from(START + dt.timedelta(days=6), 13, step=7)  # 7 April, 14 April, ... 30 June
    add_forecasts(engine, weekly, shop.products["G_1"], shop.stores["S1"], weeks, 90, 100, 120)

    p50 = {
        period: queries.top_products(engine, weekly, period, None, None, 5, "units")["products"][0]["units"]["p50"]
        for period in ("week", "month", "quarter")
    }

    assert p50 == {"week": 100.0, "month": 400.0, "quarter": 1300.0}


def test_an_unknown_category_is_not_found_with_the_known_ones_listed(engine: Engine, shop: Shop) -> None:
    with pytest.raises(NotFoundError) as raised:
        queries.top_products(engine, shop.version, "week", "Electronix", None, 10, "units")

    assert str(raised.value) == (
        "unknown category 'Electronix' (did you mean 'Electronics'?); known categories: Electronics, Garden, Phones"
    )


def test_an_unknown_store_or_version_is_not_found(engine: Engine, shop: Shop) -> None:
    with pytest.raises(NotFoundError, match=r"unknown store 'S9'.*known stores: S1, S2"):
        queries.top_products(engine, shop.version, "week", None, "S9", 10, "units")
    with pytest.raises(NotFoundError, match=f"model version id {shop.version + 99} has no stored forecasts"):
        queries.top_products(engine, shop.version + 99, "week", None, None, 10, "units")


def test_impossible_parameters_are_refused(engine: Engine, shop: Shop) -> None:
    with pytest.raises(DataValidationError, match="limit must be between 1 and 1000, got 0"):
        queries.top_products(engine, shop.version, "week", None, None, 0, "units")
    with pytest.raises(DataValidationError, match="time_period must be one of week, month, quarter"):
        queries.top_products(engine, shop.version, "year", None, None, 5, "units")  # type: ignore[arg-type]


def test_forecast_start_and_stored_days(engine: Engine, shop: Shop) -> None:
    assert queries.forecast_start(engine, shop.version) == START
    assert queries.stored_days(engine, shop.version) == 91
    assert queries.forecast_start(engine, shop.version + 99) is None
    assert queries.stored_days(engine, shop.version + 99) == 0


def test_without_a_recorded_data_end_the_forecast_starts_at_its_first_date(engine: Engine, shop: Shop) -> None:
    version = add_version(engine, None, number=2)
    add_forecasts(engine, version, shop.products["G_1"], shop.stores["S1"], days_from(START, 3), 1, 2, 3)

    assert queries.forecast_start(engine, version) == START
    assert queries.stored_days(engine, version) == 3


# -- one product ----------------------------------------------------------------------------------------


def test_product_forecast_sums_its_stores_per_day_with_its_history(engine: Engine, shop: Shop) -> None:
    result = queries.product_forecast(engine, shop.version, "PHN-1", None, horizon=3, history_days=2)

    assert result["forecast_start"] == "2024-04-01"
    assert [day["date"] for day in result["forecast"]] == ["2024-04-01", "2024-04-02", "2024-04-03"]
    assert {k: v for k, v in result["forecast"][0].items() if k != "date"} == {
        **interval(1, [(8, 10, 13), (4, 5, 7)]),
        "mean": 15.0,  # no mean stored (as before means existed): the p50s
        "method": "model",
    }
    assert result["history"] == [{"date": "2024-03-30", "units": 10.0}, {"date": "2024-03-31", "units": 10.0}]


def test_product_forecast_of_one_store(engine: Engine, shop: Shop) -> None:
    result = queries.product_forecast(engine, shop.version, "PHN-1", "S2", horizon=1, history_days=1)

    assert result["forecast"] == [
        {"date": "2024-04-01", "p10": 4.0, "p50": 5.0, "p90": 7.0, "mean": 5.0, "method": "model"}
    ]
    assert result["history"] == [{"date": "2024-03-31", "units": 2.0}]
    assert result["store"] == "S2"


def test_product_forecast_marks_cold_starts(engine: Engine, shop: Shop) -> None:
    result = queries.product_forecast(engine, shop.version, "CBL-1", None, horizon=2)

    assert [day["method"] for day in result["forecast"]] == ["cold_start", "cold_start"]
    assert result["history"] == []


def test_a_horizon_beyond_the_stored_days_says_how_many_are_stored(engine: Engine, shop: Shop) -> None:
    with pytest.raises(DataValidationError, match="91 days are stored for 'PHN-1'"):
        queries.product_forecast(engine, shop.version, "PHN-1", None, horizon=92)


def test_an_unknown_product_is_not_found(engine: Engine, shop: Shop) -> None:
    with pytest.raises(NotFoundError, match=r"unknown product 'PHN-2'; did you mean 'PHN-1'\?"):
        queries.product_forecast(engine, shop.version, "PHN-2", None, horizon=3)
    with pytest.raises(NotFoundError, match="no forecast for product 'G_1' in store 'S2'"):
        queries.product_forecast(engine, shop.version, "G_1", "S2", horizon=3)


# -- catalogue ------------------------------------------------------------------------------------------


def test_categories_count_the_products_below_them(engine: Engine, shop: Shop) -> None:
    assert queries.categories(engine) == [
        {"name": "Electronics", "parent": None, "products": 4, "subcategories": ["Phones"]},
        {"name": "Garden", "parent": None, "products": 1, "subcategories": []},
        {"name": "Phones", "parent": "Electronics", "products": 2, "subcategories": []},
    ]


def test_products_are_paged_in_sku_order(engine: Engine, shop: Shop) -> None:
    pages = [queries.products(engine, None, None, page, 2) for page in (1, 2, 3, 4)]

    assert [[item["product_id"] for item in page["items"]] for page in pages] == [
        ["CBL-1", "G_1"],
        ["LAP-100%", "PHN-1"],
        ["TV-1000"],
        [],
    ]
    assert {page["total"] for page in pages} == {5}
    assert pages[1]["items"][1] == {
        "product_id": "PHN-1",
        "name": "Phone X",
        "category": "Phones",
        "stores": ["S1", "S2"],
    }
    assert (pages[1]["page"], pages[1]["page_size"]) == (2, 2)


def test_search_takes_wildcards_literally_and_ignores_case(engine: Engine, shop: Shop) -> None:
    def skus(search: str) -> list[str]:
        return [item["product_id"] for item in queries.products(engine, search, None, 1, 50)["items"]]

    assert skus("100%") == ["LAP-100%"]  # unescaped, % would also match TV-1000
    assert skus("_1") == ["G_1"]  # unescaped, _ would match any character before a 1
    assert skus("rAKe") == ["G_1"]  # by name
    assert skus("phone") == ["PHN-1"]


def test_products_of_a_category_include_its_subcategories(engine: Engine, shop: Shop) -> None:
    result = queries.products(engine, None, "Electronics", 1, 50)

    assert [item["product_id"] for item in result["items"]] == ["CBL-1", "LAP-100%", "PHN-1", "TV-1000"]
    assert result["total"] == 4
    with pytest.raises(NotFoundError, match="unknown category 'Toys'"):
        queries.products(engine, None, "Toys", 1, 50)


def test_impossible_pages_are_refused(engine: Engine, shop: Shop) -> None:
    with pytest.raises(DataValidationError, match="page must be 1 or more, got 0"):
        queries.products(engine, None, None, 0, 10)
    with pytest.raises(DataValidationError, match="page_size must be between 1 and 500, got 501"):
        queries.products(engine, None, None, 1, 501)
