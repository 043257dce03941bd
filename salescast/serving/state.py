"""Everything a server process holds for its lifetime, built once at start-up and closed at shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from salescast.config import Settings
from salescast.data.database import open_database
from salescast.data.schema import ModelVersion
from salescast.monitoring.alerts import alert_sink
from salescast.pipeline import ensure_stored_forecasts
from salescast.registry.deployments import DeploymentService
from salescast.registry.versions import ModelRegistry
from salescast.serving.auth import KeyStore
from salescast.serving.cache import ResponseCache, make_cache
from salescast.serving.models import LoadedModels
from salescast.serving.prediction_log import PredictionLogWriter, make_prediction_log
from salescast.serving.rate_limit import RateLimiter, make_rate_limiter
from salescast.serving.routing import PlanHolder

log = logging.getLogger("salescast.serving")


@dataclass
class ServingState:
    settings: Settings
    engine: Engine
    registry: ModelRegistry
    keys: KeyStore
    cache: ResponseCache
    limiter: RateLimiter
    predictions: PredictionLogWriter
    plans: PlanHolder
    models: LoadedModels
    deployments: DeploymentService
    ensure_forecasts: Callable[[ModelVersion], None]
    model_dir: tempfile.TemporaryDirectory[str]
    background: set[asyncio.Task[Any]] = field(default_factory=set)

    def spawn(self, job: Coroutine[Any, Any, Any]) -> None:
        """Run `job` off the request path, keeping a reference so it is not collected mid-flight."""
        task = asyncio.get_running_loop().create_task(job)
        self.background.add(task)
        task.add_done_callback(self.background.discard)


def build_state(settings: Settings, engine: Engine | None = None) -> ServingState:
    engine = engine or open_database(settings.resolved_database_url)
    registry = ModelRegistry.from_settings(settings, engine)

    def ensure_forecasts(row: ModelVersion) -> None:
        ensure_stored_forecasts(engine, registry, row, settings)

    deployments = DeploymentService(engine, registry, alert_sink(settings.alert_url, settings), ensure_forecasts)
    model_dir = tempfile.TemporaryDirectory(prefix="salescast-serving-")
    predictions = make_prediction_log(engine, settings)
    predictions.start()
    plans = PlanHolder(engine, registry, settings.model_name, deployments)
    plans.refresh()
    return ServingState(
        settings=settings,
        engine=engine,
        registry=registry,
        keys=KeyStore(engine, settings.auth_cache_seconds),
        cache=make_cache(settings),
        limiter=make_rate_limiter(settings),
        predictions=predictions,
        plans=plans,
        models=LoadedModels(registry, Path(model_dir.name)),
        deployments=deployments,
        ensure_forecasts=ensure_forecasts,
        model_dir=model_dir,
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
