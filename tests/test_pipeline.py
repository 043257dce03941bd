"""The pipeline end to end: ingest, train, gate, register, promote, store forecasts; rejections alert."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from salescast.config import Settings
from salescast.data.schema import StoredForecast
from salescast.data.synthetic import SyntheticConfig, generate_sales, write_sales
from salescast.monitoring.alerts import LogAlertSink, WebhookAlertSink
from salescast.pipeline import PipelineConfig, run_pipeline
from salescast.registry.artifacts import LocalArtifactStore
from salescast.registry.versions import PRODUCTION, ModelRegistry
from salescast.serving.stored_forecasts import ensure_stored_forecasts, stored_horizon

FAST = {"lgbm": {"n_estimators": 60}}


@pytest.fixture
def sales_file(tmp_path: Path) -> Path:
    path = tmp_path / "sales.csv"
    write_sales(generate_sales(SyntheticConfig(stores=2, products=8, days=420, seed=5)), path)
    return path


def stored(engine: Engine, version_id: int) -> list[tuple[Any, ...]]:
    with Session(engine) as session:
        rows = session.execute(
            select(StoredForecast.product_id, StoredForecast.store_id, StoredForecast.date, StoredForecast.p50)
            .where(StoredForecast.version_id == version_id)
            .order_by(StoredForecast.product_id, StoredForecast.store_id, StoredForecast.date)
        ).all()
    return [tuple(r) for r in rows]


def test_a_first_run_registers_promotes_and_stores_forecasts(
    engine: Engine, settings: Settings, tmp_path: Path, sales_file: Path
) -> None:
    registry = ModelRegistry(engine, LocalArtifactStore(tmp_path / "artifacts"))
    config = PipelineConfig(models=["lgbm"], horizon=14, windows=2, model_params=FAST)

    result = run_pipeline(engine, registry, LogAlertSink(), config, settings, new_files=[sales_file])

    assert result.ingested[0].facts_inserted > 0
    assert result.verdict.passed and result.promoted
    version = registry.alias("demand", PRODUCTION)
    assert version.version == 1 and version.status == "registered"
    assert version.series == 16 and version.freq == "D" and len(version.data_fingerprint) == 64
    assert version.metrics["candidate"]["mase"] < version.metrics["baseline"]["mase"]
    assert version.params == {"lgbm": {"country": settings.holiday_country, "n_estimators": 60}}
    card = version.metrics["card"]
    assert card["families"] == ["lgbm"] and card["weights"] == {"lgbm": 1.0}
    assert card["weight_rule"] == "a single family"
    assert card["point_forecast"] == {"lgbm": "median (L1 loss)"}
    assert set(card["holdout"]) == {"lgbm", "ensemble", "snaive"}  # no theta: no plain-mean reference
    assert card["reference"] is None
    assert card["holdout"]["ensemble"]["mase"] == pytest.approx(version.metrics["candidate"]["mase"], abs=1e-4)
    assert card["holdout"]["snaive"]["coverage"] is not None
    assert card["paths"]["full"]["series"] == 16 and card["paths"]["cold"]["series"] == 0
    assert card["holdout_points"] == 16 * 14 and card["horizon"] == 14
    # Serving answers up to a quarter ahead: more days are stored than the 14-day training horizon.
    assert result.forecasts_stored == 16 * settings.stored_forecast_days == len(stored(engine, version.id))
    with Session(engine) as session:
        means, medians = session.execute(
            select(func.sum(StoredForecast.mean), func.sum(StoredForecast.p50)).where(
                StoredForecast.version_id == version.id
            )
        ).one()
    # The mean (what period totals add) sits above this intermittent demand's median.
    assert means is not None and medians is not None and means > medians * 1.05
    assert set(result.seconds) >= {"ingest", "features", "train", "gate", "register", "promote"}


class Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []  # noqa: RUF012 - shared with the test thread on purpose

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    Receiver.received = []
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/alerts"
    server.shutdown()


def test_a_worse_candidate_is_rejected_with_an_alert_and_rollback_restores_forecasts(
    settings: Settings, tmp_path: Path, sales_file: Path, webhook: str
) -> None:
    from salescast.data.database import open_database

    engine = open_database(f"sqlite:///{tmp_path / 'p.db'}")
    registry = ModelRegistry(engine, LocalArtifactStore(tmp_path / "artifacts"))
    first = run_pipeline(
        engine,
        registry,
        LogAlertSink(),
        PipelineConfig(models=["lgbm"], horizon=14, model_params=FAST),
        settings,
        new_files=[sales_file],
    )
    v1_forecasts = stored(engine, first.version.id)
    second = run_pipeline(
        engine, registry, LogAlertSink(), PipelineConfig(models=["lgbm"], horizon=14, model_params=FAST), settings
    )
    assert second.promoted and registry.alias("demand", PRODUCTION).version == 2

    # A candidate with a crippled model: one small step of one tree away from the mean of all series.
    # (One tree of the default L1 loss on standardised series already lands near each series' median,
    # which MASE scores well: cripple the learning rate and the loss instead.)
    crippled = {"n_estimators": 1, "learning_rate": 0.01, "objective": "tweedie", "scaler": "minmax"}
    weak = PipelineConfig(models=["lgbm"], horizon=14, model_params={"lgbm": crippled})
    rejected = run_pipeline(
        engine, registry, WebhookAlertSink(webhook, retries=1, backoff_seconds=0.01), weak, settings
    )

    assert not rejected.verdict.passed and not rejected.promoted
    assert rejected.version.status == "rejected" and rejected.version.reason
    assert registry.alias("demand", PRODUCTION).version == 2
    assert [a["event"] for a in Receiver.received] == ["model.rejected"]
    assert Receiver.received[0]["details"]["version"] == 3

    registry.rollback("demand", actor="test")

    assert registry.alias("demand", PRODUCTION).version == 1
    assert stored(engine, first.version.id) == v1_forecasts
    with Session(engine) as session:
        versions_with_forecasts = session.scalar(select(func.count(func.distinct(StoredForecast.version_id))))
    assert versions_with_forecasts == 2


def test_stored_horizon_covers_the_serving_days_in_periods_of_the_frame() -> None:
    assert stored_horizon("D", 28, 91) == 91
    assert stored_horizon("D", 120, 91) == 120
    assert stored_horizon("W-SUN", 4, 91) == 13
    assert stored_horizon("MS", 3, 91) == 4


def test_a_versions_forecasts_are_stored_for_serving_once(
    engine: Engine, settings: Settings, tmp_path: Path, sales_file: Path
) -> None:
    registry = ModelRegistry(engine, LocalArtifactStore(tmp_path / "artifacts"))
    config = PipelineConfig(models=["lgbm"], horizon=14, windows=2, model_params=FAST, promote=False)
    version = run_pipeline(engine, registry, LogAlertSink(), config, settings, new_files=[sales_file]).version
    assert stored(engine, version.id) == []

    written = ensure_stored_forecasts(engine, registry, version, settings)
    again = ensure_stored_forecasts(engine, registry, version, settings)

    # A daily model stores a quarter of days for serving, more than its 14-day training horizon.
    assert written == 16 * settings.stored_forecast_days == len(stored(engine, version.id))
    assert again == 0
