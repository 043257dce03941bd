"""A read replica on two real PostgreSQL databases: with database_read_url set, the read routes answer
from the replica; keys, the prediction log and alias moves stay on the primary."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.orm import InstrumentedAttribute

from salescast.data.database import make_engine, read_engine
from salescast.data.schema import AliasEvent, ModelVersion, PredictionLogEntry, Product, StoredForecast
from salescast.serving import queries
from salescast.serving.app import create_app
from tests.serving.conftest import api_settings, scope_keys
from tests.serving.served_store import StoreTemplate, copy_store, database_name, drop_database

pytestmark = pytest.mark.postgres
REPLICA_MARK = "replica copy of "


@dataclass
class TwoDatabases:
    client: TestClient
    primary: Engine
    replica: Engine
    keys: dict[str, str]

    def get(self, path: str, key: str = "read") -> Any:
        response = self.client.get(path, headers={"Authorization": f"Bearer {self.keys[key]}"})
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def two_databases(store_template: StoreTemplate, tmp_path: Path) -> Iterator[TwoDatabases]:
    primary_url, replica_url = copy_store(store_template, tmp_path), copy_store(store_template, tmp_path)
    primary, replica = make_engine(primary_url), make_engine(replica_url)
    # What only the replica holds tells the two apart: renamed products, forecasts 1,000 units higher.
    with replica.begin() as conn:
        conn.execute(update(Product).values(name=func.concat(REPLICA_MARK, Product.sku)))
        conn.execute(update(StoredForecast).values(p10=StoredForecast.p10 + 1000, p50=StoredForecast.p50 + 1000))
        conn.execute(text("UPDATE forecast_rankings SET p50 = p50 + 1000000"))
    keys = scope_keys(primary)  # only the primary knows the keys: every accepted request was checked there
    settings = api_settings(store_template, primary_url, tmp_path / "home", database_read_url=replica_url)
    client = TestClient(create_app(settings), raise_server_exceptions=False)
    client.__enter__()
    try:
        yield TwoDatabases(client, primary, replica, keys)
    finally:
        client.__exit__(None, None, None)
        primary.dispose()
        replica.dispose()
        drop_database(database_name(primary_url))
        drop_database(database_name(replica_url))


@pytest.mark.parametrize("store_template", ["postgresql"], indirect=True)
def test_read_routes_answer_from_the_replica(two_databases: TwoDatabases) -> None:
    page = two_databases.get("/api/v1/products?page_size=500")
    names = [p["name"] for p in page["items"]]
    assert names and all(name.startswith(REPLICA_MARK) for name in names)

    ranked = two_databases.get("/api/v1/forecast/top-products?time_period=week&limit=3")
    products = ranked["products"]
    assert all(p["name"].startswith(REPLICA_MARK) for p in products)
    assert all(p["units"]["p50"] > 1_000_000 for p in products)

    sku = products[0]["product_id"]
    forecast = two_databases.get(f"/api/v1/forecast/products/{sku}?horizon=3")
    with two_databases.primary.connect() as conn:
        version_one = select(ModelVersion.id).where(ModelVersion.name == "demand", ModelVersion.version == 1)
        production = conn.scalar(version_one)
    assert production is not None
    on_replica = queries.product_forecast(two_databases.replica, production, str(sku), None, 3)
    on_primary = queries.product_forecast(two_databases.primary, production, str(sku), None, 3)
    assert forecast["forecast"] == on_replica["forecast"] != on_primary["forecast"]
    # Summed over the product's stores, each day is at least 1,000 above the primary's.
    for served, primary in zip(forecast["forecast"], on_primary["forecast"], strict=True):
        assert served["p50"] >= primary["p50"] + 1000


@pytest.mark.parametrize("store_template", ["postgresql"], indirect=True)
def test_writes_and_keys_stay_on_the_primary(two_databases: TwoDatabases) -> None:
    def count(engine: Engine, column: InstrumentedAttribute[int]) -> int:
        with engine.connect() as conn:
            return int(conn.scalar(select(func.count(column))) or 0)

    events_before = {e: count(e, AliasEvent.id) for e in (two_databases.primary, two_databases.replica)}
    moved = two_databases.client.post(
        "/api/v1/models/demand/aliases",
        headers={"Authorization": f"Bearer {two_databases.keys['admin']}"},
        json={"alias": "staging", "version": 2, "reason": "replica test"},
    )
    assert moved.status_code == 200, moved.text
    assert count(two_databases.primary, AliasEvent.id) == events_before[two_databases.primary] + 1
    assert count(two_databases.replica, AliasEvent.id) == events_before[two_databases.replica]

    two_databases.get("/api/v1/forecast/top-products?time_period=month&limit=2")
    deadline = time.monotonic() + 10
    while count(two_databases.primary, PredictionLogEntry.id) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert count(two_databases.primary, PredictionLogEntry.id) >= 1
    assert count(two_databases.replica, PredictionLogEntry.id) == 0


def test_no_read_url_reads_the_primary_itself(tmp_path: Path) -> None:
    primary = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    assert read_engine("", primary) is primary
    assert read_engine(f"sqlite:///{tmp_path / 'p.db'}", primary) is primary
    replica = read_engine(f"sqlite:///{tmp_path / 'r.db'}", primary)
    assert replica is not primary and replica.url.database == str(tmp_path / "r.db")
