"""Small synthetic series frames for model tests."""

from __future__ import annotations

import pandas as pd
import pytest

from salescast.data.synthetic import SyntheticConfig, generate_sales
from salescast.features.frame import SeriesFrame, prepare


def synthetic_frame(stores: int = 2, products: int = 6, days: int = 500, seed: int = 3) -> SeriesFrame:
    sales = generate_sales(SyntheticConfig(stores=stores, products=products, days=days, seed=seed))
    sales["unique_id"] = sales["store"] + "/" + sales["product"]
    data = sales.rename(columns={"date": "ds", "units": "y", "unit_price": "price"})
    data["on_promotion"] = data["on_promotion"].astype(float)
    static = sales.drop_duplicates("unique_id")[["unique_id", "product", "store", "category", "subcategory"]]
    return prepare(data[["unique_id", "ds", "y", "price", "on_promotion"]], static=static)


@pytest.fixture(scope="session")
def small_frame() -> SeriesFrame:
    return synthetic_frame()


@pytest.fixture(scope="session")
def monthly_frame() -> SeriesFrame:
    from tests.conftest import FIXTURES

    raw = pd.read_csv(FIXTURES / "au_monthly/au_monthly_sales.csv")
    data = raw.rename(columns={"series_id": "unique_id", "month": "ds", "value": "y"})[["unique_id", "ds", "y"]]
    return prepare(data)
