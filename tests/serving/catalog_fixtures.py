"""Builders of small sales stores with known numbers, for the serving tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.orm import Session

from salescast.config import Settings
from salescast.data.database import make_engine, migrate
from salescast.data.ingest import ingest_file
from salescast.data.presets import resolve_spec
from salescast.data.schema import Category, ModelVersion, Product, SalesFact, Store, StoredForecast
from salescast.data.synthetic import SyntheticConfig, generate_sales, write_sales
from salescast.features.frame import DS, SeriesFrame, load_series
from salescast.registry.versions import Candidate, ModelRegistry


def add_version(engine: Engine, data_end: dt.date | None, name: str = "demand", number: int = 1) -> int:
    """A registered model version row (what serving needs of it: its id and the end of its data)."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        row = ModelVersion(
            name=name,
            version=number,
            status="registered",
            families=["lgbm"],
            weights={"lgbm": 1.0},
            params={},
            features=["price", "on_promotion"],
            freq="D",
            horizon=91,
            data_fingerprint="0" * 64,
            data_start=None,
            data_end=data_end,
            series=0,
            package_version="test",
            git_commit=None,
            metrics={},
        )
        session.add(row)
    return row.id


def add_categories(engine: Engine, tree: dict[str, str | None]) -> dict[str, int]:
    """Categories by name -> parent name (parents listed before their children)."""
    ids: dict[str, int] = {}
    with Session(engine) as session, session.begin():
        for name, parent in tree.items():
            category = Category(name=name, parent_id=ids[parent] if parent else None)
            session.add(category)
            session.flush()
            ids[name] = category.id
    return ids


def add_products(engine: Engine, products: list[tuple[str, str | None, str | None]]) -> dict[str, int]:
    """Products as (sku, name, category name)."""
    with Session(engine) as session, session.begin():
        categories = dict(session.execute(select(Category.name, Category.id)).all())
        rows = [
            Product(sku=sku, name=name, category_id=categories.get(cat) if cat else None) for sku, name, cat in products
        ]
        session.add_all(rows)
        session.flush()
        return {row.sku: row.id for row in rows}


def add_stores(engine: Engine, codes: list[str]) -> dict[str, int]:
    with Session(engine) as session, session.begin():
        rows = [Store(code=code, name=f"Store {code}") for code in codes]
        session.add_all(rows)
        session.flush()
        return {row.code: row.id for row in rows}


def add_sales(
    engine: Engine,
    product_id: int,
    store_id: int,
    first: dt.date,
    days: int,
    units: float,
    price: float | None,
    on_promotion: bool = False,
) -> None:
    rows = [
        {
            "product_id": product_id,
            "store_id": store_id,
            "date": first + dt.timedelta(days=i),
            "units": units,
            "revenue": units * price if price is not None else None,
            "unit_price": price,
            "on_promotion": on_promotion,
        }
        for i in range(days)
    ]
    with engine.begin() as conn:
        conn.execute(insert(SalesFact), rows)


def set_price(engine: Engine, product_id: int, store_id: int, day: dt.date, price: float) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(SalesFact)
            .where(SalesFact.product_id == product_id, SalesFact.store_id == store_id, SalesFact.date == day)
            .values(unit_price=price)
        )


def add_forecasts(
    engine: Engine,
    version_id: int,
    product_id: int,
    store_id: int,
    dates: list[dt.date],
    p10: float,
    p50: float,
    p90: float,
    method: str = "model",
) -> None:
    rows = [
        {
            "version_id": version_id,
            "product_id": product_id,
            "store_id": store_id,
            "date": day,
            "p10": p10,
            "p50": p50,
            "p90": p90,
            "method": method,
        }
        for day in dates
    ]
    with engine.begin() as conn:
        conn.execute(insert(StoredForecast), rows)


def days_from(first: dt.date, count: int, step: int = 1) -> list[dt.date]:
    return [first + dt.timedelta(days=i * step) for i in range(count)]


def generated_sales_frame(root: Path, config: SyntheticConfig) -> tuple[Path, SeriesFrame]:
    """Generated sales written to `root/sales.csv` and framed through a scratch store, as the models
    serving tests train on see them; the file is what each test's own store then ingests."""
    sales_file = root / "sales.csv"
    write_sales(generate_sales(config), sales_file)
    engine = make_engine(f"sqlite:///{root / 'train.db'}")
    migrate(engine)
    ingest_file(engine, sales_file, resolve_spec(None), Settings(_env_file=None, home=root / "home"))
    frame = load_series(engine)
    engine.dispose()
    return sales_file, frame


def register_frame_model(
    registry: ModelRegistry, folder: Path, frame: SeriesFrame, name: str, family: str, horizon: int
) -> ModelVersion:
    """A registered version of a one-family model trained on `frame`, its artifact the folder given."""
    return registry.register(
        Candidate(
            name=name,
            families=[family],
            weights={family: 1.0},
            params={},
            features=list(frame.exog),
            freq=frame.freq,
            horizon=horizon,
            data_fingerprint="0" * 64,
            data_start=frame.data[DS].min().date(),
            data_end=frame.data[DS].max().date(),
            series=len(frame.ids),
            package_version="test",
            git_commit=None,
            metrics={},
        ),
        folder,
    )
