"""The discount a promotion usually brings, read from sales history.

A what-if that names promotion days but no price asks "what if we promote it as we usually do". In
retail data a promotion is mostly a discount, and a model learns most of a promotion's effect through
the price: the flag alone moved a promoted day of the default model by -2 % to +3 % where the
generated data's promotions had +25 % on top of their discount. So the what-if prices its promoted
days at the product's usual promotional discount: its mean promoted unit price against its mean
regular one over the last year of the model's data, or, for a product never promoted, the median of
its category's products.
"""

from __future__ import annotations

import datetime as dt
import statistics
from typing import Literal, NamedTuple

from sqlalchemy import ColumnElement, Connection, Engine, case, func, select

from salescast.data.schema import Product, SalesFact

HISTORY_DAYS = 365
# Promoted sales rows a product needs before its own discount is read from them.
MIN_PROMOTED_ROWS = 3
MAX_DISCOUNT_PCT = 90.0

DiscountSource = Literal["request", "price given", "product history", "category history", "none"]


class UsualDiscount(NamedTuple):
    pct: float  # 0 when neither the product nor its category was ever promoted
    source: DiscountSource


def usual_discount(engine: Engine, sku: str, until: dt.date | None) -> UsualDiscount:
    """The product's usual promotional discount in the year up to `until` (None: all its sales)."""
    with engine.connect() as conn:
        found = conn.execute(select(Product.id, Product.category_id).where(Product.sku == sku)).first()
        if found is None:
            return UsualDiscount(0.0, "none")
        product_id, category_id = found
        own = _discounts(conn, SalesFact.product_id == product_id, until)
        if product_id in own:
            return UsualDiscount(own[product_id], "product history")
        if category_id is not None:
            in_category = select(Product.id).where(Product.category_id == category_id).scalar_subquery()
            others = _discounts(conn, SalesFact.product_id.in_(in_category), until)
            if others:
                return UsualDiscount(round(statistics.median(others.values()), 1), "category history")
    return UsualDiscount(0.0, "none")


def _discounts(conn: Connection, which: ColumnElement[bool], until: dt.date | None) -> dict[int, float]:
    """Per product with enough promoted rows: 1 - mean promoted price / mean regular price, in %."""
    s = SalesFact
    where = [which, s.unit_price > 0]
    if until is not None:
        where += [s.date <= until, s.date > until - dt.timedelta(days=HISTORY_DAYS)]
    promoted = s.on_promotion.is_(True)
    rows = conn.execute(
        select(
            s.product_id,
            func.avg(case((promoted, s.unit_price))),
            func.avg(case((s.on_promotion.is_(False), s.unit_price))),
            func.sum(case((promoted, 1), else_=0)),
        )
        .where(*where)
        .group_by(s.product_id)
    ).all()
    return {
        int(product): round(min(MAX_DISCOUNT_PCT, max(0.0, (1 - float(on_promotion) / float(regular)) * 100)), 1)
        for product, on_promotion, regular, promoted_rows in rows
        if on_promotion is not None and regular and int(promoted_rows or 0) >= MIN_PROMOTED_ROWS
    }
