"""The service objects a command hands off to, opened from the settings (the same ones the API uses)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from salescast.config import Settings

# Each opens its libraries when called: `salescast --help` imports none of them.


def open_engine(settings: Settings) -> Engine:
    from salescast.data.database import open_database

    return open_database(settings.resolved_database_url)


def open_registry(settings: Settings) -> Any:
    from salescast.registry.versions import ModelRegistry

    return ModelRegistry.from_settings(settings, open_engine(settings))


def open_deployments(settings: Settings) -> Any:
    from salescast.monitoring.alerts import alert_sink
    from salescast.registry.deployments import DeploymentService
    from salescast.serving.stored_forecasts import ensure_stored_forecasts

    models = open_registry(settings)
    return DeploymentService(
        models.engine,
        models,
        alert_sink(settings.alert_url, settings),
        lambda row: ensure_stored_forecasts(models.engine, models, row, settings),
        min_actuals=settings.live_accuracy_min_actuals,
        max_live_wape_ratio=settings.rollout_max_live_wape_ratio,
    )


def open_key_store(settings: Settings) -> Any:
    from salescast.serving.auth import KeyStore

    # No cache: a command reads the database once anyway, and must see every revocation.
    return KeyStore(open_engine(settings), cache_seconds=0)
