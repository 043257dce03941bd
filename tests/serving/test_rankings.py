"""Per-version rankings: written with a version's forecasts, equal to summing them, replaced with them.

The semantics of what top_products makes of them are specified in test_queries.py (whose versions are
stored without rankings, so every test there also exercises their lazy computation); here a real model's
stored forecasts are checked against the rules written out over the `forecasts` and `sales` tables.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, delete, func, select, update

from salescast.config import Settings
from salescast.data.ingest import ingest_file
from salescast.data.presets import resolve_spec
from salescast.data.schema import ALL_STORES, ForecastRanking, ModelVersion, Product, SalesFact, Store, StoredForecast
from salescast.data.synthetic import SyntheticConfig
from salescast.features.frame import DS, SeriesFrame
from salescast.models.ensemble import EnsembleModel
from salescast.models.statistical import StatisticalModel
from salescast.registry.artifacts import LocalArtifactStore
from salescast.registry.versions import ModelRegistry
from salescast.serving import queries
from salescast.serving.rankings import PERIOD_DAYS, ensure_rankings, store_rankings
from salescast.serving.stored_forecasts import store_forecasts
from tests.serving.catalog_fixtures import generated_sales_frame, register_frame_model

QUARTER = 91

Key = tuple[str, int, int]  # period, store_id, product_id


@dataclass
class Trained:
    sales_file: Path
    frame: SeriesFrame
    model: EnsembleModel


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """An ets ensemble trained once on the generated sales that each test's store holds."""
    root = tmp_path_factory.mktemp("rankings")
    sales_file, frame = generated_sales_frame(root, SyntheticConfig(stores=2, products=6, days=200, seed=3))
    member = StatisticalModel(method="ets").fit(frame)
    model = EnsembleModel(members={"ets": member}, weights={"ets": 1.0}).fit(frame)
    return Trained(sales_file, frame, model)


@pytest.fixture
def registry(engine: Engine, trained: Trained, tmp_path: Path) -> ModelRegistry:
    ingest_file(engine, trained.sales_file, resolve_spec(None), Settings(_env_file=None, home=tmp_path / "home"))
    return ModelRegistry(engine, LocalArtifactStore(tmp_path / "artifacts"))


def register(registry: ModelRegistry, frame: SeriesFrame, folder: Path) -> ModelVersion:
    folder.mkdir()
    (folder / "README").write_text("the artifact is not read: these tests store forecasts from memory\n")
    return register_frame_model(registry, folder, frame, "demand", "ets", 14)


def stored_rankings(engine: Engine, version_id: int) -> dict[Key, tuple[Any, ...]]:
    r = ForecastRanking
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                r.period,
                r.store_id,
                r.product_id,
                r.p50,
                r.low_squares,
                r.high_squares,
                r.min_p10,
                r.history_units,
                r.latest_price,
                r.cold_start,
            ).where(r.version_id == version_id)
        ).all()
    return {(row[0], row[1], row[2]): tuple(row[3:]) for row in rows}


def summed_on_the_fly(engine: Engine, version_id: int, start: dt.date) -> dict[Key, tuple[Any, ...]]:
    """The rules of top_products written out, one product and store scope at a time: the forecasts in
    [start, start + days), the units in [start - days, start), the mean price on the latest priced day."""
    f, s = StoredForecast, SalesFact
    with engine.connect() as conn:
        forecasts = pd.DataFrame(
            conn.execute(
                select(f.product_id, f.store_id, f.date, f.p10, f.p50, f.p90, f.method).where(
                    f.version_id == version_id
                )
            ).all()
        )
        sales = pd.DataFrame(conn.execute(select(s.product_id, s.store_id, s.date, s.units, s.unit_price)).all())
    stores = sorted(set(sales["store_id"]))
    expected: dict[Key, tuple[Any, ...]] = {}
    for period, days in PERIOD_DAYS.items():
        window = forecasts[(forecasts["date"] >= start) & (forecasts["date"] < start + dt.timedelta(days=days))]
        for product in set(window["product_id"]):
            for store in [ALL_STORES, *stores]:
                terms = window[(window["product_id"] == product) & ((window["store_id"] == store) | (store == 0))]
                if terms.empty:
                    continue
                sold = sales[(sales["product_id"] == product) & ((sales["store_id"] == store) | (store == 0))]
                past = sold[(sold["date"] >= start - dt.timedelta(days=days)) & (sold["date"] < start)]
                priced = sold[(sold["date"] < start) & sold["unit_price"].notna()]
                latest = priced[priced["date"] == priced["date"].max()]
                expected[(period, store, product)] = (
                    pytest.approx(terms["p50"].sum()),
                    pytest.approx(((terms["p50"] - terms["p10"]) ** 2).sum()),
                    pytest.approx(((terms["p90"] - terms["p50"]) ** 2).sum()),
                    pytest.approx(terms["p10"].min()),
                    pytest.approx(past["units"].sum()),
                    pytest.approx(latest["unit_price"].mean()) if not latest.empty else None,
                    bool((terms["method"] == "cold_start").any()),
                )
    return expected


def test_storing_forecasts_stores_the_rankings_they_sum_to(
    engine: Engine, registry: ModelRegistry, trained: Trained, tmp_path: Path
) -> None:
    version = register(registry, trained.frame, tmp_path / "v1")

    store_forecasts(engine, version, trained.model, QUARTER)

    start = trained.frame.data[DS].max().date() + dt.timedelta(days=1)
    rankings = stored_rankings(engine, version.id)
    assert rankings == summed_on_the_fly(engine, version.id, start)
    # 12 series and their 6 products, in each of the three periods.
    assert len(rankings) == 3 * (12 + 6)


def test_stored_forecasts_read_back_exactly_as_the_model_predicted(
    engine: Engine, registry: ModelRegistry, trained: Trained, tmp_path: Path
) -> None:
    version = register(registry, trained.frame, tmp_path / "v1")

    count = store_forecasts(engine, version, trained.model, 7)

    f = StoredForecast
    with engine.connect() as conn:
        rows = conn.execute(
            select(Store.code, Product.sku, f.date, f.p10, f.p50, f.p90, f.method)
            .join(Store, Store.id == f.store_id)
            .join(Product, Product.id == f.product_id)
            .where(f.version_id == version.id)
        ).all()
    stored = {(f"{code}/{sku}", day): (p10, p50, p90, method) for code, sku, day, p10, p50, p90, method in rows}
    predicted = trained.model.predict(7)
    expected = {
        (uid, ds.date()): (p10, p50, p90, method)
        for uid, ds, p10, p50, p90, method in predicted[["unique_id", DS, "p10", "p50", "p90", "method"]].itertuples(
            index=False
        )
    }
    assert count == len(predicted) == len(stored)
    assert stored == expected  # floats exactly: COPY's text round-trips every double


def test_period_totals_add_the_daily_means_and_old_rows_their_p50(
    engine: Engine, registry: ModelRegistry, trained: Trained, tmp_path: Path
) -> None:
    version = register(registry, trained.frame, tmp_path / "v1")
    store_forecasts(engine, version, trained.model, QUARTER)
    f = StoredForecast
    with engine.begin() as conn:
        conn.execute(update(f).where(f.version_id == version.id).values(mean=None))  # as stored before means
        store_rankings(conn, version.id)
    by_median = by_sku(queries.top_products(engine, version.id, "month", None, None, 10, "units"))

    with engine.begin() as conn:
        conn.execute(update(f).where(f.version_id == version.id).values(mean=f.p50 + 1.0))
        store_rankings(conn, version.id)
    by_mean = by_sku(queries.top_products(engine, version.id, "month", None, None, 10, "units"))

    assert by_mean.keys() == by_median.keys()
    for sku, product in by_mean.items():
        days_in_stores = 30 * 2  # a month of daily forecasts in each of the 2 stores
        before, after = by_median[sku]["units"], product["units"]
        assert after["p50"] == pytest.approx(before["p50"] + days_in_stores, abs=1e-6)
        # The spread around it still comes from the quantiles.
        assert after["p90"] - after["p50"] == pytest.approx(before["p90"] - before["p50"], abs=1e-6)


def test_restoring_a_version_replaces_its_rankings(
    engine: Engine, registry: ModelRegistry, trained: Trained, tmp_path: Path
) -> None:
    version = register(registry, trained.frame, tmp_path / "v1")
    store_forecasts(engine, version, trained.model, QUARTER)
    month_before = by_sku(queries.top_products(engine, version.id, "month", None, None, 10, "units"))

    store_forecasts(engine, version, trained.model, 7)  # a week of forecasts now

    start = trained.frame.data[DS].max().date() + dt.timedelta(days=1)
    assert stored_rankings(engine, version.id) == summed_on_the_fly(engine, version.id, start)
    month = by_sku(queries.top_products(engine, version.id, "month", None, None, 10, "units"))
    week = by_sku(queries.top_products(engine, version.id, "week", None, None, 10, "units"))
    # The month holds only the week's days now, against its own 30 days of history.
    assert {sku: p["units"] for sku, p in month.items()} == {sku: p["units"] for sku, p in week.items()}
    assert all(month[sku]["units"]["p50"] < month_before[sku]["units"]["p50"] for sku in month)
    assert {sku: p["history_units"] for sku, p in month.items()} == {
        sku: p["history_units"] for sku, p in month_before.items()
    }


def by_sku(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {product["product_id"]: product for product in result["products"]}


def test_a_new_version_keeps_the_rankings_of_the_old_for_a_rollback(
    engine: Engine, registry: ModelRegistry, trained: Trained, tmp_path: Path
) -> None:
    first = register(registry, trained.frame, tmp_path / "v1")
    store_forecasts(engine, first, trained.model, QUARTER)
    before = stored_rankings(engine, first.id)

    second = register(registry, trained.frame, tmp_path / "v2")
    store_forecasts(engine, second, trained.model, 30)

    assert stored_rankings(engine, first.id) == before
    assert {period for period, _, _ in stored_rankings(engine, second.id)} == {"week", "month", "quarter"}


def test_a_version_stored_without_rankings_is_ranked_once_on_first_read(
    engine: Engine, registry: ModelRegistry, trained: Trained, tmp_path: Path
) -> None:
    version = register(registry, trained.frame, tmp_path / "v1")
    store_forecasts(engine, version, trained.model, QUARTER)
    with engine.begin() as conn:  # as if stored before rankings existed
        conn.execute(delete(ForecastRanking).where(ForecastRanking.version_id == version.id))

    result = queries.top_products(engine, version.id, "quarter", None, None, 3, "units")

    start = trained.frame.data[DS].max().date() + dt.timedelta(days=1)
    assert stored_rankings(engine, version.id) == summed_on_the_fly(engine, version.id, start)
    assert result["total"] == 6
    assert ensure_rankings(engine, version.id) == 0


def test_rankings_stored_at_the_same_time_by_two_first_reads_are_stored_once(
    engine: Engine, registry: ModelRegistry, trained: Trained, tmp_path: Path
) -> None:
    version = register(registry, trained.frame, tmp_path / "v1")
    store_forecasts(engine, version, trained.model, QUARTER)
    expected = stored_rankings(engine, version.id)
    with engine.begin() as conn:
        conn.execute(delete(ForecastRanking).where(ForecastRanking.version_id == version.id))
    raised: list[BaseException] = []

    def second_reader() -> None:
        try:
            ensure_rankings(engine, version.id)
        except BaseException as exc:  # handed to the test thread, which asserts there was none
            raised.append(exc)

    with engine.begin() as first:
        store_rankings(first, version.id)
        reader = threading.Thread(target=second_reader)
        reader.start()
        time.sleep(0.3)  # lets the second reach its insert (PostgreSQL) or the write lock (SQLite)
    reader.join(timeout=60)

    assert raised == []
    assert stored_rankings(engine, version.id) == expected
    with engine.connect() as conn:
        count = conn.scalar(select(func.count()).where(ForecastRanking.version_id == version.id))
    assert count == len(expected)
