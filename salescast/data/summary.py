"""What the sales store holds: counts, date range, per-category totals and the latest ingestion runs."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, aliased

from salescast.data.runs import mark_interrupted
from salescast.data.schema import Category, IngestionRun, Product, RejectedRow, SalesFact, Store


@dataclass(frozen=True)
class CategoryTotals:
    category: str
    products: int
    units: float
    revenue: float | None


@dataclass(frozen=True)
class DataSummary:
    products: int
    stores: int
    categories: int
    facts: int
    series: int
    first_date: dt.date | None
    last_date: dt.date | None
    total_units: float
    total_revenue: float | None
    by_category: list[CategoryTotals]
    recent_runs: list[IngestionRun]


def summarize(engine: Engine, runs: int = 5) -> DataSummary:
    with engine.connect() as conn:
        facts, first, last, units, revenue = conn.execute(
            select(
                func.count(),
                func.min(SalesFact.date),
                func.max(SalesFact.date),
                func.coalesce(func.sum(SalesFact.units), 0.0),
                func.sum(SalesFact.revenue),
            )
        ).one()
        series = conn.execute(
            select(func.count()).select_from(select(SalesFact.product_id, SalesFact.store_id).distinct().subquery())
        ).scalar_one()
        # Totals by top-level category: a sub-category's sales count towards its parent.
        parent = aliased(Category)
        top = func.coalesce(parent.name, Category.name, "(none)")
        by_category = [
            CategoryTotals(name, n_products, float(cat_units or 0.0), cat_revenue)
            for name, n_products, cat_units, cat_revenue in conn.execute(
                select(
                    top,
                    func.count(func.distinct(Product.id)),
                    func.sum(SalesFact.units),
                    func.sum(SalesFact.revenue),
                )
                .select_from(SalesFact)
                .join(Product, Product.id == SalesFact.product_id)
                .outerjoin(Category, Category.id == Product.category_id)
                .outerjoin(parent, parent.id == Category.parent_id)
                .group_by(top)
                .order_by(func.sum(SalesFact.units).desc())
            )
        ]
        counts = {
            model.__tablename__: conn.execute(select(func.count()).select_from(model)).scalar_one()
            for model in (Product, Store, Category)
        }
    return DataSummary(
        products=counts["products"],
        stores=counts["stores"],
        categories=counts["categories"],
        facts=facts,
        series=series,
        first_date=first,
        last_date=last,
        total_units=float(units),
        total_revenue=revenue,
        by_category=by_category,
        recent_runs=recent_runs(engine, runs),
    )


def recent_runs(engine: Engine, limit: int) -> list[IngestionRun]:
    """The latest `limit` runs, newest first; a `running` run whose process is gone is shown (and recorded)
    as `interrupted`."""
    mark_interrupted(engine)
    with Session(engine, expire_on_commit=False) as session:
        return list(session.scalars(select(IngestionRun).order_by(IngestionRun.id.desc()).limit(limit)))


def rejected_rows(engine: Engine, run_id: int, limit: int = 100) -> list[RejectedRow]:
    with Session(engine, expire_on_commit=False) as session:
        query = select(RejectedRow).where(RejectedRow.run_id == run_id).order_by(RejectedRow.line, RejectedRow.id)
        return list(session.scalars(query.limit(limit)))
