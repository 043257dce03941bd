"""The database-backed metrics: a database that does not answer gives declared families without samples,
never a failed scrape; reads are reused for the configured time."""

from __future__ import annotations

import datetime as dt
import re

from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import Engine

from salescast.data.database import make_engine
from salescast.monitoring.db_metrics import DatabaseCollector
from salescast.monitoring.training_runs import record_training_run
from tests.conftest import free_port


def scrape(collector: DatabaseCollector) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry).decode()


def test_a_database_that_does_not_answer_leaves_the_families_declared_and_empty() -> None:
    down = make_engine(
        f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing", connect_args={"connect_timeout": 2}
    )

    text = scrape(DatabaseCollector(down, ttl_seconds=0))

    assert "# TYPE salescast_data_freshness_seconds gauge" in text
    assert "# TYPE salescast_training_runs_total counter" in text
    assert [line for line in text.splitlines() if not line.startswith("#")] == []


def test_training_runs_are_counted_and_reads_are_reused_for_the_ttl(engine: Engine) -> None:
    started = dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.UTC)
    record_training_run(engine, "demand", started, 12.5, "registered", version=1, gate_passed=True)
    collector = DatabaseCollector(engine, ttl_seconds=3600)
    first = scrape(collector)
    record_training_run(
        engine, "demand", started + dt.timedelta(days=7), 30.0, "rejected", version=2, gate_passed=False
    )

    cached = scrape(collector)
    fresh = scrape(DatabaseCollector(engine, ttl_seconds=0))

    assert 'salescast_training_runs_total{model="demand",outcome="registered"} 1.0' in first
    assert cached == first
    assert 'salescast_training_runs_total{model="demand",outcome="rejected"} 1.0' in fresh
    assert 'salescast_training_last_gate_passed{model="demand"} 0.0' in fresh
    assert 'salescast_training_last_duration_seconds{model="demand",outcome="rejected"} 30.0' in fresh
    stamp = re.search(r'^salescast_training_last_run_timestamp_seconds\{model="demand"\} (\S+)$', fresh, re.MULTILINE)
    assert stamp is not None and float(stamp[1]) == (started + dt.timedelta(days=7)).timestamp()
