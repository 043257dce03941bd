"""Metrics whose truth is in the database, exported on /metrics: what the worker and the CLI did (training
runs, ingestion runs), how fresh the data is, live accuracy and drift per version.

Those happen in other processes than the server's, so they cannot be counted in its memory; every server
process reads them from the one database instead, and all of them report the same values (a multiprocess
sum would multiply them). A read is reused for `ttl_seconds`, so scrapes cost the database little; when
the database does not answer, the families are declared without samples (a scrape never fails for it).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Connection, Engine, func, select

from salescast.data.schema import (
    DriftMeasure,
    IngestionRun,
    ModelAlias,
    ModelVersion,
    SalesFact,
    Store,
    TrainingRun,
)
from salescast.monitoring.live_accuracy import SCORED_ALIASES, pooled_accuracy

log = logging.getLogger(__name__)


def _families() -> dict[str, Metric]:
    """Every family this collector exports, empty, in the order they are listed."""
    gauge, counter = GaugeMetricFamily, CounterMetricFamily
    return {
        "freshness": gauge(
            "salescast_data_freshness_seconds",
            "Age of the newest sales date of a store, from the end of that day.",
            labels=["store"],
        ),
        "live_wape": gauge(
            "salescast_live_wape",
            "Realised WAPE (%) of a version's stored forecasts against the actuals so far, per category.",
            labels=["model", "version", "category"],
        ),
        "live_mae": gauge(
            "salescast_live_mae",
            "Realised MAE (units) per version and category.",
            labels=["model", "version", "category"],
        ),
        "live_mase": gauge(
            "salescast_live_mase",
            "Realised MASE per version and category (scale: the series' in-sample seasonal naive MAE in training).",
            labels=["model", "version", "category"],
        ),
        "live_bias": gauge(
            "salescast_live_bias",
            "Realised bias (%; positive = over-forecast) per version and category.",
            labels=["model", "version", "category"],
        ),
        "live_actuals": gauge(
            "salescast_live_actuals",
            "Actuals (series-days) live accuracy is computed from, per version and category.",
            labels=["model", "version", "category"],
        ),
        "holdout_wape": gauge(
            "salescast_holdout_wape",
            "Hold-out WAPE (%) a version was registered with, for the versions production or challenger point at.",
            labels=["model", "version"],
        ),
        "drift_psi": gauge(
            "salescast_drift_psi",
            "Population stability index of recent data against the version's training window.",
            labels=["model", "version", "category", "feature"],
        ),
        "training_runs": counter(
            "salescast_training_runs", "Training pipeline runs by outcome.", labels=["model", "outcome"]
        ),
        "training_seconds": gauge(
            "salescast_training_last_duration_seconds",
            "Duration of the latest training run of a model.",
            labels=["model", "outcome"],
        ),
        "training_gate": gauge(
            "salescast_training_last_gate_passed",
            "1 when the latest training run's candidate passed the gate, 0 when it did not.",
            labels=["model"],
        ),
        "training_at": gauge(
            "salescast_training_last_run_timestamp_seconds",
            "When the latest training run of a model started (Unix time).",
            labels=["model"],
        ),
        "ingestion_rows": counter(
            "salescast_ingestion_rows",
            "Rows of ingested files by outcome (accepted, rejected), over every run.",
            labels=["outcome"],
        ),
        "ingestion_runs": counter("salescast_ingestion_runs", "Ingestion runs by status.", labels=["status"]),
        "ingestion_last_rows": gauge(
            "salescast_ingestion_last_run_rows",
            "Rows the latest finished ingestion run accepted and rejected.",
            labels=["outcome"],
        ),
        "ingestion_at": gauge(
            "salescast_ingestion_last_run_timestamp_seconds",
            "When the latest finished ingestion run ended (Unix time).",
        ),
    }


class DatabaseCollector(Collector):
    """A prometheus-client collector over the database (see the module docstring)."""

    def __init__(self, engine: Engine, ttl_seconds: float = 30.0) -> None:
        self.engine = engine
        self.ttl_seconds = ttl_seconds
        self._lock = threading.Lock()
        self._read_at = -float("inf")
        self._cached: list[Metric] = list(_families().values())

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            if time.monotonic() - self._read_at >= self.ttl_seconds:
                try:
                    self._cached = read_metrics(self.engine, dt.datetime.now(dt.UTC))
                except Exception as exc:  # a scrape answers whatever the database does
                    log.warning("metrics.database_read_failed", extra={"error": str(exc).splitlines()[0]})
                    self._cached = list(_families().values())
                self._read_at = time.monotonic()
            return list(self._cached)

    def describe(self) -> Iterator[Metric]:
        return iter(_families().values())


def read_metrics(engine: Engine, now: dt.datetime) -> list[Metric]:
    families = _families()
    with engine.connect() as conn:
        _freshness(conn, families, now)
        _live(conn, families)
        _training(conn, families)
        _ingestion(conn, families)
    return list(families.values())


def _add(family: Metric, labels: list[str], value: Any) -> None:
    if value is not None:
        family.add_metric(labels, float(value))  # type: ignore[attr-defined]


def _freshness(conn: Connection, families: dict[str, Metric], now: dt.datetime) -> None:
    newest = conn.execute(
        select(Store.code, func.max(SalesFact.date)).join(Store, Store.id == SalesFact.store_id).group_by(Store.code)
    ).all()
    for code, day in newest:
        day = day if isinstance(day, dt.date) else dt.date.fromisoformat(str(day))
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
        _add(families["freshness"], [str(code)], max(0.0, (now - end).total_seconds()))


def _live(conn: Connection, families: dict[str, Metric]) -> None:
    for row in pooled_accuracy(conn, None, level="category"):
        labels = [row.model, str(row.version), str(row.category)]
        _add(families["live_actuals"], labels, row.points)
        _add(families["live_mae"], labels, row.mae)
        _add(families["live_wape"], labels, row.wape)
        _add(families["live_bias"], labels, row.bias)
        _add(families["live_mase"], labels, row.mase)
    # No DISTINCT: PostgreSQL cannot compare JSON values; a version both aliases point at is one series.
    aliased = conn.execute(
        select(ModelVersion.name, ModelVersion.version, ModelVersion.metrics)
        .join(ModelAlias, ModelAlias.version_id == ModelVersion.id)
        .where(ModelAlias.alias.in_(SCORED_ALIASES))
    ).all()
    unique = {(name, version): metrics for name, version, metrics in aliased}
    for (name, version), metrics in unique.items():
        candidate = (metrics or {}).get("candidate") or {}
        _add(families["holdout_wape"], [str(name), str(version)], candidate.get("wape"))
    dm = DriftMeasure
    for model, version, category, feature, psi in conn.execute(
        select(dm.model_name, dm.version, dm.category, dm.feature, dm.psi)
    ).all():
        _add(families["drift_psi"], [str(model), str(version), str(category), str(feature)], psi)


def _training(conn: Connection, families: dict[str, Metric]) -> None:
    tr = TrainingRun
    for model, outcome, runs in conn.execute(
        select(tr.model_name, tr.outcome, func.count()).group_by(tr.model_name, tr.outcome)
    ).all():
        _add(families["training_runs"], [str(model), str(outcome)], runs)
    latest = select(tr.model_name, func.max(tr.id).label("id")).group_by(tr.model_name).subquery()
    for model, outcome, seconds, gate_passed, started in conn.execute(
        select(tr.model_name, tr.outcome, tr.seconds, tr.gate_passed, tr.started_at).join(latest, latest.c.id == tr.id)
    ).all():
        _add(families["training_seconds"], [str(model), str(outcome)], seconds)
        _add(families["training_gate"], [str(model)], None if gate_passed is None else int(bool(gate_passed)))
        started = started if started.tzinfo else started.replace(tzinfo=dt.UTC)
        _add(families["training_at"], [str(model)], started.timestamp())


def _ingestion(conn: Connection, families: dict[str, Metric]) -> None:
    run = IngestionRun
    accepted, rejected = conn.execute(
        select(func.coalesce(func.sum(run.rows_accepted), 0), func.coalesce(func.sum(run.rows_rejected), 0))
    ).one()
    _add(families["ingestion_rows"], ["accepted"], accepted)
    _add(families["ingestion_rows"], ["rejected"], rejected)
    for status, runs in conn.execute(select(run.status, func.count()).group_by(run.status)).all():
        _add(families["ingestion_runs"], [str(status)], runs)
    last = conn.execute(
        select(run.rows_accepted, run.rows_rejected, run.finished_at)
        .where(run.finished_at.is_not(None))
        .order_by(run.id.desc())
        .limit(1)
    ).first()
    if last is not None:
        _add(families["ingestion_last_rows"], ["accepted"], last.rows_accepted)
        _add(families["ingestion_last_rows"], ["rejected"], last.rows_rejected)
        finished = last.finished_at if last.finished_at.tzinfo else last.finished_at.replace(tzinfo=dt.UTC)
        _add(families["ingestion_at"], [], finished.timestamp())
