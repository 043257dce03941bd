"""The days a product's chart marks: its promotion days (any store) and the public holidays, over a range
of dates the caller names (the dashboard asks for the range its chart shows)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Engine, select

from salescast.data.schema import Product, SalesFact
from salescast.errors import NotFoundError
from salescast.features.calendar import named_holidays

Json = dict[str, Any]


def product_calendar(engine: Engine, product: str, start: dt.date, days: int, country: str) -> Json:
    """Product `product`'s promotion days (a sale on promotion in any store) and `country`'s public
    holidays in the `days` days from `start` (cut at the last representable date)."""
    end = dt.date.max if (dt.date.max - start).days < days - 1 else start + dt.timedelta(days=days - 1)
    with engine.connect() as conn:
        product_id = conn.scalar(select(Product.id).where(Product.sku == product))
        if product_id is None:
            raise NotFoundError(f"unknown product {product!r}")
        promoted = conn.scalars(
            select(SalesFact.date)
            .where(
                SalesFact.product_id == product_id,
                SalesFact.on_promotion.is_(True),
                SalesFact.date >= start,
                SalesFact.date <= end,
            )
            .distinct()
            .order_by(SalesFact.date)
        ).all()
    return {
        "product_id": product,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "promotion_days": [day.isoformat() for day in promoted],
        "holidays": [{"date": day.isoformat(), "name": name} for day, name in named_holidays(country, start, end)],
    }
