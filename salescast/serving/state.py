"""Everything a server process holds for its lifetime, built once at start-up and closed at shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from salescast.config import Settings
from salescast.data.database import make_engine, migrate, open_database, read_engine, schema_is_current
from salescast.data.schema import ModelVersion
from salescast.errors import SalescastError, StorageError
from salescast.monitoring.alerts import Alert, AlertSink, alert_sink
from salescast.registry.deployments import DeploymentService
from salescast.registry.versions import ModelRegistry
from salescast.serving.auth import KeyStore
from salescast.serving.cache import ResponseCache, make_cache
from salescast.serving.models import LoadedModels
from salescast.serving.prediction_log.writer import PredictionLogWriter, make_prediction_log
from salescast.serving.rate_limit import RateLimiter, make_rate_limiter
from salescast.serving.routing import PlanHolder
from salescast.serving.stored_forecasts import ensure_stored_forecasts

log = logging.getLogger("salescast.serving")


@dataclass
class ServingState:
    settings: Settings
    engine: Engine  # the primary: every write, the traffic plan, keys, the prediction log
    read_engine: Engine  # read routes' queries: the replica when database_read_url is set, else `engine`
    registry: ModelRegistry
    read_registry: ModelRegistry  # the registry's listings for read routes, on read_engine
    keys: KeyStore
    cache: ResponseCache
    limiter: RateLimiter
    predictions: PredictionLogWriter
    plans: PlanHolder
    models: LoadedModels
    deployments: DeploymentService
    ensure_forecasts: Callable[[ModelVersion], None]
    model_dir: tempfile.TemporaryDirectory[str]
    alerts: AlertSink
    schema_ready: bool = True  # False while the database has been unreachable since start-up
    background: set[asyncio.Task[Any]] = field(default_factory=set)

    def spawn(self, job: Coroutine[Any, Any, Any]) -> None:
        """Run `job` off the request path, keeping a reference so it is not collected mid-flight."""
        task = asyncio.get_running_loop().create_task(job)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    def refresh(self) -> None:
        """Once the database answers: bring its schema up to date if start-up could not, then reload the
        traffic plan (PlanHolder.refresh keeps the last plan on any error)."""
        if not self.schema_ready:
            try:
                _ensure_schema(self.engine)
            except Exception as exc:
                log.warning("database.still_unavailable", extra={"error": str(exc).splitlines()[0]})
                return
            self.schema_ready = True
            log.info("database.available")
        self.plans.refresh()

    async def refresh_forever(self, interval: float) -> None:
        """`refresh` every `interval` seconds until cancelled, in a worker thread (the event loop keeps
        answering meanwhile)."""
        while True:
            try:
                await asyncio.to_thread(self.refresh)
            except Exception:  # refresh catches its own; this is the last line that keeps the loop alive
                log.exception("serving.refresh_failed")
            await asyncio.sleep(interval)


def _report_unusable(alerts: AlertSink) -> Callable[[ModelVersion, SalescastError], None]:
    def report(version: ModelVersion, error: SalescastError) -> None:
        # The details (the artifact's location, both checksums) are for operators: never in a response.
        summary = (
            f"model {version.name} v{version.version} cannot serve: its artifact (recorded sha256 "
            f"{version.artifact_sha256}) is corrupt or missing; what-ifs fall back to an earlier version that loads"
        )
        log.error("model.artifact_unusable", extra={"model_version": version.version, "error": str(error)})
        alert = Alert(
            "model.artifact_unusable",
            "critical",
            summary,
            {"model": version.name, "version": version.version, "sha256": version.artifact_sha256, "error": str(error)},
        )

        def deliver() -> None:
            try:
                alerts.send(alert)
            except Exception:
                log.exception("alert.delivery_failed")

        # A webhook may retry for seconds: not on a request's time.
        threading.Thread(target=deliver, name="salescast-alert", daemon=True).start()

    return report


def _ensure_schema(engine: Engine) -> None:
    if not schema_is_current(engine):
        migrate(engine)


def _open(settings: Settings) -> tuple[Engine, bool]:
    """The engine, and whether its schema is known to be current. A server starts while the database is
    down (an orchestrator then sees a live, not-ready service rather than a crash loop): /ready says
    why, and the background refresh migrates and loads the plan once the database answers."""
    try:
        return open_database(settings.resolved_database_url), True
    except StorageError as exc:
        log.warning("database.unavailable_at_start", extra={"error": str(exc).splitlines()[0]})
        return make_engine(settings.resolved_database_url), False


def build_state(settings: Settings, engine: Engine | None = None) -> ServingState:
    engine, schema_ready = (engine, True) if engine is not None else _open(settings)
    registry = ModelRegistry.from_settings(settings, engine)
    replica = read_engine(settings.database_read_url, engine)
    read_registry = registry if replica is engine else ModelRegistry.from_settings(settings, replica)

    def ensure_forecasts(row: ModelVersion) -> None:
        ensure_stored_forecasts(engine, registry, row, settings)

    alerts = alert_sink(settings.alert_url, settings)
    deployments = DeploymentService(
        engine,
        registry,
        alerts,
        ensure_forecasts,
        min_actuals=settings.live_accuracy_min_actuals,
        max_live_wape_ratio=settings.rollout_max_live_wape_ratio,
    )
    model_dir = tempfile.TemporaryDirectory(prefix="salescast-serving-")
    predictions = make_prediction_log(engine, settings)
    predictions.start()
    plans = PlanHolder(engine, registry, settings.model_name, deployments)
    if schema_ready:
        plans.refresh()
    return ServingState(
        settings=settings,
        engine=engine,
        read_engine=replica,
        registry=registry,
        read_registry=read_registry,
        keys=KeyStore(engine, settings.auth_cache_seconds, outage_grace_seconds=settings.auth_outage_grace_seconds),
        cache=make_cache(settings),
        limiter=make_rate_limiter(settings),
        predictions=predictions,
        plans=plans,
        models=LoadedModels(registry, Path(model_dir.name), on_unusable=_report_unusable(alerts)),
        deployments=deployments,
        ensure_forecasts=ensure_forecasts,
        model_dir=model_dir,
        alerts=alerts,
        schema_ready=schema_ready,
    )


async def close_state(state: ServingState) -> None:
    for task in list(state.background):
        task.cancel()
    for task in list(state.background):
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    await state.cache.close()
    await state.limiter.close()
    # In-flight requests have drained by now (the server stops accepting first); their log rows go out.
    state.predictions.close(timeout=10.0)
    state.model_dir.cleanup()
    if state.read_engine is not state.engine:
        state.read_engine.dispose()
