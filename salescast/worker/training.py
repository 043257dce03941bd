"""Weekly retraining: the training pipeline under the training lock, configured from the settings."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from salescast.config import Settings, get_settings
from salescast.data.locks import TRAINING_LOCK, JobLock, LockBusyError, job_lock

# The pipeline (pandas, LightGBM, statsforecast, ...) loads when a job runs, not on import: Airflow
# imports this module to parse the DAG.
if TYPE_CHECKING:
    from sqlalchemy import Engine

    from salescast.monitoring.alerts import AlertSink
    from salescast.pipeline import PipelineConfig, PipelineResult, Progress
    from salescast.registry.versions import ModelRegistry

log = logging.getLogger(__name__)


class Pipeline(Protocol):
    """What `retrain` runs: `salescast.pipeline.run_pipeline`, or a light stand-in in tests."""

    def __call__(
        self,
        engine: Engine,
        registry: ModelRegistry,
        alerts: AlertSink,
        config: PipelineConfig,
        settings: Settings,
        new_files: Sequence[Path] = (),
        progress: Progress | None = None,
    ) -> PipelineResult: ...


def pipeline_config(settings: Settings) -> PipelineConfig:
    """The pipeline configuration the worker trains with; ConfigurationError for unknown model families."""
    from salescast.models.catalog import parse_models
    from salescast.pipeline import PipelineConfig

    models = parse_models(settings.pipeline_models)
    return PipelineConfig(
        name=settings.model_name,
        models=models,
        horizon=settings.pipeline_horizon,
        windows=settings.pipeline_windows,
        actor="worker",
    )


def retrain(
    settings: Settings | None = None,
    engine: Engine | None = None,
    *,
    locks: JobLock | None = None,
    pipeline: Pipeline | None = None,
    lock_timeout: float = 0.0,
    progress: Progress | None = None,
) -> PipelineResult | None:
    """Run the training pipeline (`pipeline`, default `run_pipeline`) under the training lock.

    Returns None, without training, when another worker holds the lock. The registry and the alert sink
    are built from the settings. Called without arguments (as Airflow does), settings come from the
    environment and the database from the settings.
    """
    if settings is None:
        settings = get_settings()
    config = pipeline_config(settings)  # a bad setting fails here, before any lock or connection
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context((locks or job_lock(settings)).acquire(TRAINING_LOCK, lock_timeout))
        except LockBusyError:
            log.info("worker.retrain.skipped reason=another worker is training")
            return None
        from salescast.monitoring.alerts import alert_sink
        from salescast.registry.versions import ModelRegistry

        if engine is None:
            from salescast.data.database import open_database

            engine = open_database(settings.resolved_database_url)
            stack.callback(engine.dispose)
        if pipeline is None:
            from salescast.pipeline import run_pipeline

            pipeline = run_pipeline
        registry = ModelRegistry.from_settings(settings, engine)
        alerts = alert_sink(settings.alert_url, settings)
        log.info("worker.retrain.started name=%s models=%s", config.name, ",".join(config.models))
        result = pipeline(engine, registry, alerts, config, settings, progress=progress)
        log.info(
            "worker.retrain.finished name=%s version=%s status=%s promoted=%s",
            config.name,
            result.version.version,
            result.version.status,
            result.promoted,
        )
        return result
