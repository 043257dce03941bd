"""The SQL schema of the sales store (SQLAlchemy 2 typed ORM); Alembic migrations create it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Stable constraint names so that migrations diff the same way on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Category(Base):
    """A product category; `parent_id` makes a hierarchy (category > sub-category or department)."""

    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"))

    parent: Mapped[Category | None] = relationship(remote_side="Category.id")


class Product(Base):
    __tablename__ = "products"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sku: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[str | None] = mapped_column(String(500))
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"), index=True)
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    launch_date: Mapped[dt.date | None] = mapped_column(Date)

    category: Mapped[Category | None] = relationship()


class Store(Base):
    __tablename__ = "stores"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[str | None] = mapped_column(String(500))
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class SalesFact(Base):
    """Net sales of one product in one store over one period (a day, or the period's first day).

    No foreign keys and no index beyond the primary key, as usual for a fact table: the loader only
    inserts ids it has just joined from products and stores, PostgreSQL's per-row FK triggers cost more
    than half of a bulk load, and every reader goes by series (the primary key's order).
    """

    __tablename__ = "sales"

    product_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    units: Mapped[float] = mapped_column(Float)
    revenue: Mapped[float | None] = mapped_column(Float)
    unit_price: Mapped[float | None] = mapped_column(Float)
    on_promotion: Mapped[bool] = mapped_column(Boolean, default=False)
    ingestion_run_id: Mapped[int | None] = mapped_column(Integer)  # the run that last wrote the row


# running: recorded before the load starts (salescast.data.runs); interrupted: its process died while running.
RUN_STATUSES = ("running", "succeeded", "refused", "failed", "interrupted")


class IngestionRun(Base):
    """One attempt to load one file, whatever its outcome."""

    __tablename__ = "ingestion_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    preset: Mapped[str | None] = mapped_column(String(100))
    file_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(20))  # one of RUN_STATUSES
    message: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    seconds: Mapped[float | None] = mapped_column(Float)
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    rows_accepted: Mapped[int] = mapped_column(Integer, default=0)
    rows_rejected: Mapped[int] = mapped_column(Integer, default=0)
    facts_inserted: Mapped[int] = mapped_column(Integer, default=0)
    facts_updated: Mapped[int] = mapped_column(Integer, default=0)
    facts_unchanged: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (CheckConstraint(f"status IN ({', '.join(map(repr, RUN_STATUSES))})", name="status"),)


class RejectedRow(Base):
    __tablename__ = "rejected_rows"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("ingestion_runs.id", ondelete="CASCADE"), index=True)
    line: Mapped[int] = mapped_column(Integer)
    column: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[str | None] = mapped_column(Text)


class ModelVersion(Base):
    """One registered (or rejected) model: immutable once written, apart from nothing at all."""

    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
    status: Mapped[str] = mapped_column(String(20))  # registered | rejected
    reason: Mapped[str | None] = mapped_column(Text)
    families: Mapped[list[str]] = mapped_column(JSON)
    weights: Mapped[dict[str, float]] = mapped_column(JSON)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    features: Mapped[list[str]] = mapped_column(JSON)
    freq: Mapped[str] = mapped_column(String(20))
    horizon: Mapped[int] = mapped_column(Integer)
    data_fingerprint: Mapped[str] = mapped_column(String(64))
    data_start: Mapped[dt.date | None] = mapped_column(Date)
    data_end: Mapped[dt.date | None] = mapped_column(Date)
    series: Mapped[int] = mapped_column(Integer)
    package_version: Mapped[str] = mapped_column(String(50))
    git_commit: Mapped[str | None] = mapped_column(String(64))
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    gate: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    artifact_uri: Mapped[str | None] = mapped_column(Text)
    artifact_sha256: Mapped[str | None] = mapped_column(String(64))
    artifact_size: Mapped[int | None] = mapped_column(Integer)
    artifact_version_id: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (UniqueConstraint("name", "version"),)


class ModelAlias(Base):
    """A mutable pointer such as `production` or `challenger`; every change is an AliasEvent."""

    __tablename__ = "model_aliases"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    alias: Mapped[str] = mapped_column(String(100), primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)


class AliasEvent(Base):
    """The audit trail of aliases: which version an alias pointed to from when, set by whom and why."""

    __tablename__ = "alias_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    alias: Mapped[str] = mapped_column(String(100))
    from_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    to_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)

    __table_args__ = (Index("ix_alias_events_name_alias_at", "name", "alias", "at"),)


class StoredForecast(Base):
    """Forecasts computed once per promoted version, for serving to read; kept per version."""

    __tablename__ = "forecasts"

    version_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    p10: Mapped[float] = mapped_column(Float)
    p50: Mapped[float] = mapped_column(Float)
    p90: Mapped[float] = mapped_column(Float)
    # The mean forecast (p50 plus the series' mean backtest residual): what period totals add up. Null
    # for versions stored before it existed, which are summed by their p50.
    mean: Mapped[float | None] = mapped_column(Float)
    method: Mapped[str] = mapped_column(String(20), default="model")  # model | cold_start


ALL_STORES = 0  # the store_id of a ranking summed over all stores (store ids start at 1)


class ForecastRanking(Base):
    """A version's forecast of one product over one serving period, summed over its days (and over all
    stores when `store_id` is ALL_STORES), with what ranking it needs: written with the version's
    forecasts, so that a ranked query reads one small row per product instead of its stored days.

    `low_squares` and `high_squares` are the sums of (p50 - p10)^2 and (p90 - p50)^2 over the terms, from
    which the interval of the sum follows (salescast.serving.queries); `history_units` are the actual units
    in as many days before the forecast start, `latest_price` the product's latest known unit price
    before it (null when never priced). Kept per version like the forecasts, so a rollback reads at once.
    """

    __tablename__ = "forecast_rankings"

    version_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    period: Mapped[str] = mapped_column(String(10), primary_key=True)  # week | month | quarter
    store_id: Mapped[int] = mapped_column(Integer, primary_key=True)  # ALL_STORES: a key column is never null
    product_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    p50: Mapped[float] = mapped_column(Float)
    low_squares: Mapped[float] = mapped_column(Float)
    high_squares: Mapped[float] = mapped_column(Float)
    min_p10: Mapped[float] = mapped_column(Float)
    history_units: Mapped[float] = mapped_column(Float)
    latest_price: Mapped[float | None] = mapped_column(Float)
    cold_start: Mapped[bool] = mapped_column(Boolean)


class ApiKey(Base):
    """An API key, stored as the sha256 of the secret: the secret itself is shown once, at creation.

    Keys are 32 random bytes, so a fast hash is enough (no dictionary to guess from); `prefix` is the
    non-secret start of the key, shown in listings and logs to tell keys apart.
    """

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(32), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class PredictionLogEntry(Base):
    """One served (or shadow-computed) forecast: written in batches, off the request path."""

    __tablename__ = "prediction_log"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    # Not indexed alone: every read names a model (the composite index below), and each index costs every
    # logged request an insert.
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    request_id: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[int | None] = mapped_column(Integer)
    model_name: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[int | None] = mapped_column(Integer)
    variant: Mapped[str] = mapped_column(String(20))  # production | challenger | shadow
    served: Mapped[bool] = mapped_column(Boolean)  # False for shadow results, which are never returned
    route: Mapped[str] = mapped_column(String(100))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    status_code: Mapped[int] = mapped_column(Integer)
    latency_ms: Mapped[float] = mapped_column(Float)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # what a shadow computed, for comparison

    __table_args__ = (Index("ix_prediction_log_model_variant_at", "model_name", "model_version", "at"),)


class Deployment(Base):
    """Traffic between a model's production version and a candidate: a static split, a shadow, or a
    rollout (all at once, canary, linear) whose steps each bake before the next; at most one active
    deployment per model name."""

    __tablename__ = "deployments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    strategy: Mapped[str] = mapped_column(String(20))  # all_at_once | canary | linear | split | shadow
    baseline_version: Mapped[int] = mapped_column(Integer)
    candidate_version: Mapped[int] = mapped_column(Integer)
    steps: Mapped[list[float]] = mapped_column(JSON)  # the candidate's share of traffic at each step
    step: Mapped[int] = mapped_column(Integer, default=0)
    share: Mapped[float] = mapped_column(Float)  # the candidate's share now (0 once rolled back)
    bake_seconds: Mapped[float] = mapped_column(Float)
    step_started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
    max_error_rate_increase: Mapped[float] = mapped_column(Float)
    max_latency_ratio: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(20))  # active | completed | rolled_back | stopped
    reason: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)

    __table_args__ = (
        Index(
            "uq_deployments_active_name",
            "name",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )


class VersionSeriesScale(Base):
    """The MASE scale of one series as its version was trained: the in-sample MAE of the seasonal naive
    forecast over the version's training window (salescast.training.metrics.series_scales), saved at
    training time so that live accuracy scales realised errors the way the hold-out did."""

    __tablename__ = "version_series_scales"

    version_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scale: Mapped[float | None] = mapped_column(Float)  # null: the series never changed in training


class VersionProfile(Base):
    """What drift checks compare recent data with: per category and feature, the bins and shares of the
    last days of the version's training window (salescast.monitoring.profiles), saved at training time."""

    __tablename__ = "version_profiles"

    version_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    window_start: Mapped[dt.date] = mapped_column(Date)
    window_end: Mapped[dt.date] = mapped_column(Date)
    profile: Mapped[dict[str, Any]] = mapped_column(JSON)  # {category: {feature: {"edges": [...], "shares": [...]}}}
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)


class LiveAccuracy(Base):
    """Realised accuracy of one version's stored forecasts, per category and horizon day, as actuals
    arrive (salescast.monitoring.live_accuracy). The sums are kept besides the metrics so that any
    rollup (per version, per category) pools them exactly."""

    __tablename__ = "live_accuracy"

    version_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    category: Mapped[str] = mapped_column(String(200), primary_key=True)
    horizon_day: Mapped[int] = mapped_column(Integer, primary_key=True)  # days after the training data's end
    model_name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    points: Mapped[int] = mapped_column(Integer)  # (series, day) pairs with an actual
    abs_error: Mapped[float] = mapped_column(Float)  # sum |p50 - y|
    error: Mapped[float] = mapped_column(Float)  # sum (p50 - y)
    actual_abs: Mapped[float] = mapped_column(Float)  # sum |y|
    scaled_abs_error: Mapped[float] = mapped_column(Float)  # sum |p50 - y| / scale, over points with a scale
    scaled_points: Mapped[int] = mapped_column(Integer)
    mae: Mapped[float] = mapped_column(Float)
    wape: Mapped[float | None] = mapped_column(Float)  # percent; null when every actual is 0
    mase: Mapped[float | None] = mapped_column(Float)  # null without scales
    bias: Mapped[float | None] = mapped_column(Float)  # percent, positive = over-forecast
    first_date: Mapped[dt.date] = mapped_column(Date)
    last_date: Mapped[dt.date] = mapped_column(Date)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)

    __table_args__ = (Index("ix_live_accuracy_model_name_version", "model_name", "version"),)


class DriftMeasure(Base):
    """The latest drift of one feature of one category of a model against its production version's
    training window (population stability index)."""

    __tablename__ = "drift_measures"

    model_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    category: Mapped[str] = mapped_column(String(200), primary_key=True)
    feature: Mapped[str] = mapped_column(String(100), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    psi: Mapped[float] = mapped_column(Float)
    recent_rows: Mapped[int] = mapped_column(Integer)
    checked_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)


EPISODE_STATUSES = ("firing", "resolved")


class MonitorEpisode(Base):
    """One monitored condition (a drift, stale data, a drop in volume) and whether it is breached now: an
    alert goes out when it starts firing and when it resolves, never on the checks in between."""

    __tablename__ = "monitor_episodes"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)  # the alerts' dedup key
    status: Mapped[str] = mapped_column(String(20))
    value: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float | None] = mapped_column(Float)
    summary: Mapped[str] = mapped_column(Text)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (CheckConstraint(f"status IN ({', '.join(map(repr, EPISODE_STATUSES))})", name="status"),)


class TrainingRun(Base):
    """One training pipeline run, whatever its outcome: registered, rejected by the gate, or failed."""

    __tablename__ = "training_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_name: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    seconds: Mapped[float] = mapped_column(Float)
    outcome: Mapped[str] = mapped_column(String(20))  # registered | rejected | failed
    version: Mapped[int | None] = mapped_column(Integer)
    gate_passed: Mapped[bool | None] = mapped_column(Boolean)
    message: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_training_runs_model_name_started_at", "model_name", "started_at"),)
