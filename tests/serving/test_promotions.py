"""A product's usual promotional discount, read from its sales (or its category's), on both databases."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, insert

from salescast.data.schema import Category, Product, SalesFact, Store
from salescast.serving.promotions import HISTORY_DAYS, usual_discount

END = dt.date(2026, 6, 30)


def sales(
    product_id: int, days: int, price: float, promoted_price: float | None, promoted_days: int, end: dt.date = END
) -> list[dict[str, object]]:
    """`days` daily rows in store 1 up to `end`; the last `promoted_days` of them at `promoted_price`."""
    rows = []
    for back in range(days):
        promoted = back < promoted_days
        rows.append(
            {
                "product_id": product_id,
                "store_id": 1,
                "date": end - dt.timedelta(days=back),
                "units": 5.0,
                "unit_price": promoted_price if promoted else price,
                "on_promotion": promoted,
            }
        )
    return rows


def test_the_usual_discount_comes_from_the_product_then_its_category_then_none(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(Category), [{"id": 1, "name": "Snacks"}, {"id": 2, "name": "Soap"}])
        conn.execute(insert(Store), [{"id": 1, "code": "S1"}])
        conn.execute(
            insert(Product),
            [
                {"id": 1, "sku": "crisps", "category_id": 1},  # promoted at 25 % off
                {"id": 2, "sku": "nuts", "category_id": 1},  # promoted at 15 % off, a year ago and more
                {"id": 3, "sku": "pretzels", "category_id": 1},  # never promoted
                {"id": 4, "sku": "bar", "category_id": 2},  # never promoted, nor is its category
                {"id": 5, "sku": "loose", "category_id": None},
                {"id": 6, "sku": "dip", "category_id": 1},  # promoted twice only: too few rows to read
            ],
        )
        rows = [
            *sales(1, 60, 4.0, 3.0, 6),
            *sales(3, 60, 2.0, None, 0),
            *sales(4, 60, 1.0, None, 0),
            *sales(5, 60, 1.0, None, 0),
            *sales(6, 60, 2.0, 1.0, 2),
        ]
        old = sales(2, 60, 2.0, 1.7, 10, end=END - dt.timedelta(days=HISTORY_DAYS + 30))  # beyond the window
        conn.execute(insert(SalesFact), rows + old)

    assert usual_discount(engine, "crisps", END) == (25.0, "product history")
    assert usual_discount(engine, "pretzels", END) == (25.0, "category history")
    assert usual_discount(engine, "dip", END) == (25.0, "category history")
    assert usual_discount(engine, "bar", END) == (0.0, "none")
    assert usual_discount(engine, "loose", END) == (0.0, "none")
    assert usual_discount(engine, "unknown", END) == (0.0, "none")
    # Without an end, all of a product's history counts: nuts' old promotions too.
    assert usual_discount(engine, "nuts", None) == (15.0, "product history")
    assert usual_discount(engine, "nuts", END) == (25.0, "category history")
