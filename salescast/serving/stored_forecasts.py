"""Stored forecasts: every series' p10/p50/p90 and mean for a version, written once per version with the
version's rankings, so that serving answers reads from tables and a rollback serves the previous
version's forecasts at once. The pipeline stores them on promotion, serving and deployments before a
candidate takes traffic; both reach this module without serving importing the pipeline.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, delete, select

from salescast.config import Settings
from salescast.data.bulk import insert_frame
from salescast.data.schema import ModelVersion, Product, Store, StoredForecast
from salescast.features.frame import DS, ID
from salescast.models.ensemble import EnsembleModel
from salescast.registry.versions import ModelRegistry
from salescast.serving.rankings import store_rankings


def stored_horizon(freq: str, horizon: int, days: int) -> int:
    """Periods of forecasts to store: at least the model's horizon and enough to cover `days` (serving
    answers "next quarter" from stored forecasts, whatever the training horizon was)."""
    days_per_period = 1 if freq == "D" else 7 if freq.startswith("W") else 30
    return max(horizon, math.ceil(days / days_per_period))


def store_forecasts(engine: Engine, version: ModelVersion, model: EnsembleModel, horizon: int) -> int:
    """Forecasts of every series for the horizon, kept per version (a new version never overwrites),
    with the version's rankings for serving's ranked queries, in one transaction: a version's rankings
    always sum the forecasts it serves."""
    forecast = model.predict(horizon)
    with engine.begin() as conn:
        products = dict(conn.execute(select(Product.sku, Product.id)).all())
        stores = dict(conn.execute(select(Store.code, Store.id)).all())
        parts = forecast[ID].str.split("/", n=1)
        store_code, sku = parts.str[0], parts.str[1]
        rows = pd.DataFrame(
            {
                "version_id": version.id,
                "product_id": sku.map(products),
                "store_id": store_code.map(stores),
                "date": forecast[DS].dt.date,
                "p10": forecast["p10"],
                "p50": forecast["p50"],
                "p90": forecast["p90"],
                "mean": forecast["mean"] if "mean" in forecast else forecast["p50"],
                "method": forecast.get("method", "model"),
            }
        ).dropna(subset=["product_id", "store_id"])
        conn.execute(delete(StoredForecast).where(StoredForecast.version_id == version.id))
        insert_frame(conn, StoredForecast, rows.astype({"product_id": "int64", "store_id": "int64"}))
        store_rankings(conn, version.id)
    return len(rows)


def ensure_stored_forecasts(engine: Engine, registry: ModelRegistry, version: ModelVersion, settings: Settings) -> int:
    """Store `version`'s forecasts unless the `forecasts` table has some already; the rows written (0 when
    there were some). A deployment calls it before sending a candidate traffic: today forecasts are only
    stored on promotion, and a candidate with none could not answer. Daily models store at least
    `stored_forecast_days` (a quarter, what serving reads) even when trained for a shorter horizon."""
    with engine.connect() as conn:
        present = conn.scalar(select(StoredForecast.version_id).where(StoredForecast.version_id == version.id).limit(1))
    if present is not None:
        return 0
    horizon = stored_horizon(version.freq, version.horizon, settings.stored_forecast_days)
    with tempfile.TemporaryDirectory(prefix="salescast-forecasts-") as tmp:
        model = EnsembleModel.load(registry.fetch(version, Path(tmp) / "model"))
        return store_forecasts(engine, version, model, horizon)
