"""Drift, freshness and volume checks: is the data the models see still like the data they learnt from,
and is it still arriving?

- Drift: per category and per feature the model reads (units sold, price, promotion), the population
  stability index of the last `drift_window_days` of sales against the profile the production version
  saved of its training window (salescast.monitoring.profiles): PSI = sum over the profile's bins of
  (recent share - reference share) * ln(recent share / reference share), shares floored at 1e-4.
  A category with fewer than `drift_min_rows` rows on either side is not judged.
- Freshness: per store, the age of its newest sales date (from the end of that day), against
  `freshness_max_days`.
- Volume: the rows the latest succeeded ingestion run accepted against the median of the
  `volume_runs` succeeded runs before it; a drop by more than `volume_drop_share` is breached.

Each reading goes through `Episodes`: one alert when a condition starts and one when it resolves.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sqlalchemy import Engine, delete, func, insert, select
from sqlalchemy.orm import Session

from salescast.config import Settings
from salescast.data.schema import (
    DriftMeasure,
    IngestionRun,
    ModelAlias,
    ModelVersion,
    SalesFact,
    Store,
    VersionProfile,
)
from salescast.errors import DataValidationError
from salescast.features.frame import DS, load_series
from salescast.monitoring.alerts import AlertSink
from salescast.monitoring.episodes import Condition, Episodes, Transition
from salescast.monitoring.profiles import bin_shares, categories_of, feature_columns

SHARE_FLOOR = 1e-4
DAY = dt.timedelta(days=1)

Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def psi(reference: list[float], recent: list[float]) -> float:
    """Population stability index of two share vectors over the same bins."""
    expected = np.maximum(np.asarray(reference, dtype="float64"), SHARE_FLOOR)
    actual = np.maximum(np.asarray(recent, dtype="float64"), SHARE_FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


@dataclass(frozen=True)
class FeatureDrift:
    category: str
    feature: str
    psi: float
    recent_rows: int
    reference_rows: int


@dataclass
class MonitorReport:
    """What one round of checks read and which episodes moved."""

    model: str
    version: int | None
    drift: list[FeatureDrift] = field(default_factory=list)
    freshness_days: dict[str, float] = field(default_factory=dict)
    volume: tuple[int, float] | None = None  # (latest run's accepted rows, median of the runs before)
    transitions: dict[str, Transition] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def breached(self) -> list[str]:
        return [key for key, moved in self.transitions.items() if moved in ("started", "ongoing")]


def production_version(engine: Engine, name: str) -> ModelVersion | None:
    with Session(engine, expire_on_commit=False) as session:
        return session.scalar(
            select(ModelVersion)
            .join(ModelAlias, ModelAlias.version_id == ModelVersion.id)
            .where(ModelAlias.name == name, ModelAlias.alias == "production")
        )


def feature_drift(engine: Engine, version: ModelVersion, settings: Settings) -> list[FeatureDrift] | None:
    """PSI per category and feature of the newest `drift_window_days` of sales against `version`'s saved
    profile; None when the version saved none (trained before profiles existed)."""
    with engine.connect() as conn:
        profile = conn.scalar(select(VersionProfile.profile).where(VersionProfile.version_id == version.id))
        newest = conn.scalar(select(func.max(SalesFact.date)))
    if profile is None:
        return None
    if newest is None:
        return []
    start = newest - dt.timedelta(days=settings.drift_window_days - 1)
    try:
        frame = load_series(engine, freq=version.freq, min_date=start.isoformat())
    except DataValidationError:
        return []
    recent = frame.data[DS] >= pd.Timestamp(start)
    data = frame.data.loc[recent]
    categories = categories_of(frame).loc[recent]
    columns = feature_columns(data, frame.exog)
    out: list[FeatureDrift] = []
    for category, rows in data.groupby(categories, sort=True):
        reference = profile.get(str(category))
        if reference is None:
            continue  # a category the version never saw: nothing to compare with
        for feature, column in columns.items():
            saved = reference.get(feature)
            if saved is None:
                continue
            values = rows[column].to_numpy(dtype="float64")
            if len(values) < settings.drift_min_rows or int(saved["rows"]) < settings.drift_min_rows:
                continue
            shares = bin_shares(values, list(saved["edges"]))
            out.append(
                FeatureDrift(str(category), feature, psi(saved["shares"], shares), len(values), int(saved["rows"]))
            )
    return out


def store_freshness(engine: Engine, now: dt.datetime) -> dict[str, float]:
    """Per store code, the days since the end of its newest sales date."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(Store.code, func.max(SalesFact.date))
            .join(Store, Store.id == SalesFact.store_id)
            .group_by(Store.code)
        ).all()
    ages = {}
    for code, newest in rows:
        day = newest if isinstance(newest, dt.date) else dt.date.fromisoformat(str(newest))
        end = dt.datetime.combine(day + DAY, dt.time(), tzinfo=dt.UTC)
        ages[str(code)] = max(0.0, (now - end).total_seconds() / 86400)
    return ages


def ingested_volume(engine: Engine, runs: int) -> tuple[int, float] | None:
    """(rows the latest succeeded run accepted, median of the `runs` succeeded runs before it); None
    without enough history."""
    with engine.connect() as conn:
        accepted = conn.scalars(
            select(IngestionRun.rows_accepted)
            .where(IngestionRun.status == "succeeded")
            .order_by(IngestionRun.id.desc())
            .limit(runs + 1)
        ).all()
    if len(accepted) < 2:
        return None
    return int(accepted[0]), float(statistics.median(accepted[1:]))


def save_drift(engine: Engine, name: str, version: int, measures: list[FeatureDrift], now: dt.datetime) -> None:
    """Replace the stored drift measures of `name` (what /metrics exports)."""
    with engine.begin() as conn:
        conn.execute(delete(DriftMeasure).where(DriftMeasure.model_name == name))
        for m in measures:
            conn.execute(
                insert(DriftMeasure).values(
                    model_name=name,
                    category=m.category,
                    feature=m.feature,
                    version=version,
                    psi=m.psi,
                    recent_rows=m.recent_rows,
                    checked_at=now,
                )
            )


def check_all(engine: Engine, name: str, settings: Settings, alerts: AlertSink, clock: Clock = utcnow) -> MonitorReport:
    """One round of drift, freshness and volume checks for model `name`, alerting once per episode."""
    now = clock()
    episodes = Episodes(engine, alerts, clock)
    version = production_version(engine, name)
    report = MonitorReport(model=name, version=version.version if version else None)

    def observe(condition: Condition) -> None:
        report.transitions[condition.key] = episodes.observe(condition)

    if version is None:
        report.notes.append(f"model {name!r} has no production version: drift not checked")
    else:
        measures = feature_drift(engine, version, settings)
        if measures is None:
            report.notes.append(f"{name} v{version.version} saved no training profile (trained before 0.8): retrain")
        else:
            report.drift = measures
            save_drift(engine, name, version.version, measures, now)
            limit = settings.drift_psi_threshold
            for m in measures:
                observe(
                    Condition(
                        key=f"drift/{name}/{m.category}/{m.feature}",
                        event="drift.detected",
                        breached=m.psi > limit,
                        value=round(m.psi, 4),
                        threshold=limit,
                        summary=f"{m.feature} of {m.category} drifted from {name} v{version.version}'s training "
                        f"window: PSI {m.psi:.3f} > {limit:g}",
                        details={
                            "model": name,
                            "version": version.version,
                            "category": m.category,
                            "feature": m.feature,
                            "recent_rows": m.recent_rows,
                        },
                    )
                )
    report.freshness_days = store_freshness(engine, now)
    for store, days in report.freshness_days.items():
        observe(
            Condition(
                key=f"freshness/{store}",
                event="data.stale",
                breached=days > settings.freshness_max_days,
                value=round(days, 3),
                threshold=settings.freshness_max_days,
                summary=f"the newest sales of store {store} are {days:.1f} days old (limit "
                f"{settings.freshness_max_days:g})",
                details={"store": store},
            )
        )
    report.volume = ingested_volume(engine, settings.volume_runs)
    if report.volume is not None:
        latest, median = report.volume
        floor = (1 - settings.volume_drop_share) * median
        observe(
            Condition(
                key="ingestion/volume",
                event="ingestion.volume_dropped",
                breached=latest < floor,
                value=float(latest),
                threshold=floor,
                summary=f"the latest ingestion accepted {latest:,} rows, below {floor:,.0f} "
                f"({1 - settings.volume_drop_share:.0%} of the median {median:,.0f} of the runs before)",
                details={"latest_rows": latest, "median_rows": median},
            )
        )
    return report
