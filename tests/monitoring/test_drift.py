"""Drift, freshness and volume checks against a version's saved training profile, and alerts that go out
once per episode (firing once, resolved once), also as PagerDuty trigger and resolve with one dedup key."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, select

from salescast.config import Settings
from salescast.data.ingest import ingest_file
from salescast.data.presets import resolve_spec
from salescast.data.schema import DriftMeasure, MonitorEpisode
from salescast.data.synthetic import SyntheticConfig, generate_sales, write_sales
from salescast.features.frame import load_series
from salescast.monitoring.alert import Alert
from salescast.monitoring.drift import check_all, psi
from salescast.monitoring.episodes import Condition, Episodes
from salescast.monitoring.http_delivery import RetryPolicy
from salescast.monitoring.pagerduty import PagerDutyAlertSink
from salescast.monitoring.profiles import save_training_profile
from salescast.registry.artifacts import LocalArtifactStore
from salescast.registry.versions import PRODUCTION, Candidate, ModelRegistry
from tests.monitoring.conftest import Receiver

TRAIN_DAYS = 200
WEEKS = 4


@dataclass
class Recorded:
    """An alert sink that keeps what it was sent (the log sink's contract, kept in memory)."""

    alerts: list[Alert] = field(default_factory=list)

    def send(self, alert: Alert) -> None:
        self.alerts.append(alert)


@dataclass
class Store:
    engine: Engine
    settings: Settings
    sales: pd.DataFrame
    tmp: Path
    files: int = 0

    def ingest(self, frame: pd.DataFrame) -> None:
        self.files += 1
        path = self.tmp / f"part-{self.files}.csv"
        write_sales(frame, path)
        assert ingest_file(self.engine, path, resolve_spec(None), self.settings).status == "succeeded"

    def week(self, index: int) -> pd.DataFrame:
        dates = pd.to_datetime(self.sales["date"])
        first = dates.min() + pd.Timedelta(days=TRAIN_DAYS + 7 * index)
        return self.sales[(dates >= first) & (dates < first + pd.Timedelta(days=7))]

    def clock(self) -> dt.datetime:
        newest = pd.to_datetime(self.sales["date"]).max()
        return dt.datetime.combine(newest.date() + dt.timedelta(days=1), dt.time(12), tzinfo=dt.UTC)


@pytest.fixture
def trained(engine: Engine, tmp_path: Path) -> Store:
    """A production version whose profile is the first TRAIN_DAYS days, as the pipeline saves it."""
    settings = Settings(home=tmp_path / "home", drift_window_days=28, drift_min_rows=50, volume_runs=2)
    sales = generate_sales(
        SyntheticConfig(
            stores=2, products=20, days=TRAIN_DAYS + 7 * WEEKS, seed=3, price_changes_per_year=0.0, promo_share=0.0
        )
    )
    store = Store(engine, settings, sales, tmp_path)
    store.ingest(
        sales[pd.to_datetime(sales["date"]) < pd.to_datetime(sales["date"]).min() + pd.Timedelta(days=TRAIN_DAYS)]
    )
    frame = load_series(engine)
    registry = ModelRegistry(engine, LocalArtifactStore(tmp_path / "artifacts"))
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.json").write_text("{}")
    version = registry.register(
        Candidate(
            "demand",
            ["lgbm"],
            {"lgbm": 1.0},
            {},
            frame.exog,
            "D",
            14,
            "0" * 64,
            frame.data["ds"].min().date(),
            frame.data["ds"].max().date(),
            24,
            "test",
            None,
            {},
        ),
        tmp_path / "model",
    )
    save_training_profile(engine, version.id, frame, reference_days=56)
    registry.set_alias("demand", PRODUCTION, version.version, "test")
    return store


def drifted(frame: pd.DataFrame) -> pd.DataFrame:
    """Three times the units at 1.6 times the price: the level and a feature both moved."""
    return frame.assign(
        units=frame["units"] * 3, unit_price=(frame["unit_price"] * 1.6).round(2), revenue=frame["revenue"] * 4.8
    )


def episodes(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(select(MonitorEpisode.key, MonitorEpisode.status)).all())


def test_psi_is_zero_for_the_same_shares_and_grows_with_the_shift() -> None:
    assert psi([0.25, 0.25, 0.5], [0.25, 0.25, 0.5]) == 0.0
    small, large = psi([0.5, 0.5], [0.45, 0.55]), psi([0.5, 0.5], [0.1, 0.9])
    assert 0 < small < 0.05 < 0.5 < large
    assert psi([1.0, 0.0], [0.0, 1.0]) == pytest.approx((1 - 1e-4) * 2 * 9.2103, rel=1e-3)  # floored, finite


def test_data_like_the_training_window_does_not_drift(trained: Store) -> None:
    sink = Recorded()
    for week in range(WEEKS):
        trained.ingest(trained.week(week))

    report = check_all(trained.engine, "demand", trained.settings, sink, clock=trained.clock)

    assert report.version == 1 and report.drift
    assert {m.feature for m in report.drift} == {"units", "price", "on_promotion"}
    assert max(m.psi for m in report.drift) < trained.settings.drift_psi_threshold, [
        (m.category, m.feature, round(m.psi, 3), m.recent_rows) for m in report.drift
    ]
    assert set(report.freshness_days) == {"S001", "S002"} or len(report.freshness_days) == 2
    assert all(days < 1 for days in report.freshness_days.values())
    assert report.volume is not None and report.volume[0] == pytest.approx(report.volume[1])
    assert sink.alerts == [] and report.breached() == []
    with trained.engine.connect() as conn:
        stored = conn.execute(select(DriftMeasure.category, DriftMeasure.feature, DriftMeasure.psi)).all()
    assert len(stored) == len(report.drift)


def test_drifting_data_alerts_once_per_episode_and_resolves_once(trained: Store) -> None:
    sink = Recorded()
    for week in range(WEEKS - 2):
        trained.ingest(trained.week(week))
    for week in range(WEEKS - 2, WEEKS):
        trained.ingest(drifted(trained.week(week)))

    first = check_all(trained.engine, "demand", trained.settings, sink, clock=trained.clock)
    second = check_all(trained.engine, "demand", trained.settings, sink, clock=trained.clock)

    fired = [a for a in sink.alerts if a.status == "firing"]
    keys = {a.dedup_key for a in fired}
    assert any(k.endswith("/units") for k in keys) and any(k.endswith("/price") for k in keys)
    assert all(a.event == "drift.detected" and a.dedup_key.startswith("drift/demand/") for a in fired)
    assert len(fired) == len(keys)  # one alert per episode, though two checks saw it
    assert set(first.breached()) == set(second.breached()) == keys
    assert {second.transitions[k] for k in keys} == {"ongoing"}
    assert all(episodes(trained.engine)[k] == "firing" for k in keys)

    # The same days corrected back to normal: every episode resolves, once.
    for week in range(WEEKS - 2, WEEKS):
        trained.ingest(trained.week(week))
    check_all(trained.engine, "demand", trained.settings, sink, clock=trained.clock)
    check_all(trained.engine, "demand", trained.settings, sink, clock=trained.clock)
    resolved = [a for a in sink.alerts if a.status == "resolved"]
    assert sorted(a.dedup_key for a in resolved) == sorted(keys)
    assert all(episodes(trained.engine)[k] == "resolved" for k in keys)


def test_stale_stores_and_a_drop_in_volume_alert(trained: Store) -> None:
    sink = Recorded()
    for week in range(WEEKS - 1):
        trained.ingest(trained.week(week))
    trained.ingest(trained.week(WEEKS - 1).head(40))  # a file with a sliver of the usual rows

    later = trained.clock() + dt.timedelta(days=5)
    report = check_all(trained.engine, "demand", trained.settings, sink, clock=lambda: later)

    events = sorted((a.event, a.dedup_key) for a in sink.alerts)
    assert ("ingestion.volume_dropped", "ingestion/volume") in events
    stale = [key for event, key in events if event == "data.stale"]
    assert len(stale) == len(report.freshness_days) == 2
    assert all(days > trained.settings.freshness_max_days for days in report.freshness_days.values())
    assert report.volume is not None and report.volume[0] == 40


def test_pagerduty_gets_a_trigger_and_then_a_resolve_with_the_same_dedup_key(
    engine: Engine, receiver: Receiver
) -> None:
    receiver.answer(202)
    sink = PagerDutyAlertSink("routing-key-123", receiver.url, RetryPolicy(0, 0.0, 5.0))
    checker = Episodes(engine, sink)
    breach = Condition("drift/demand/snacks/units", "drift.detected", True, 0.4, 0.25, "units of snacks drifted")

    assert [checker.observe(breach) for _ in range(3)] == ["started", "ongoing", "ongoing"]
    calm = Condition("drift/demand/snacks/units", "drift.detected", False, 0.05, 0.25, "units of snacks drifted")
    assert [checker.observe(calm) for _ in range(2)] == ["resolved", "quiet"]
    assert checker.observe(breach) == "started"  # a new episode

    bodies = [json.loads(body) for _, body in receiver.received]
    assert [b["event_action"] for b in bodies] == ["trigger", "resolve", "trigger"]
    assert {b["dedup_key"] for b in bodies} == {"drift/demand/snacks/units"}
