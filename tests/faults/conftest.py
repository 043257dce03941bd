"""Fault-test fixtures: a PostgreSQL cluster of this module's own, a trained store on it (built once and
copied per test with CREATE DATABASE ... TEMPLATE), and the real app served by uvicorn on a free port."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from salescast.config import Settings
from salescast.data.database import make_engine
from salescast.serving.app import create_app
from tests.conftest import serving_in_thread
from tests.faults.own_services import OwnPostgres
from tests.serving.conftest import scope_keys
from tests.serving.served_store import fill_store

TEMPLATE = "faults_template"


@pytest.fixture(scope="session")
def own_postgres() -> Iterator[OwnPostgres]:
    cluster = OwnPostgres()
    cluster.start()
    yield cluster
    cluster.remove()


@dataclass(frozen=True)
class TrainedStore:
    cluster: OwnPostgres
    artifacts: Path

    def copy(self) -> str:
        """The URL of a fresh database holding the trained store (versions 1, production, and 2)."""
        if self.cluster.pid is None:  # a test that stopped the server and failed before starting it again
            self.cluster.start()
        return self.cluster.create_database(f"faults_{uuid.uuid4().hex[:10]}", template=TEMPLATE)


@pytest.fixture(scope="session")
def trained_store(own_postgres: OwnPostgres, tmp_path_factory: pytest.TempPathFactory) -> TrainedStore:
    folder = tmp_path_factory.mktemp("faults-store")
    fill_store(own_postgres.create_database(TEMPLATE), folder)
    return TrainedStore(own_postgres, folder / "artifacts")


def app_settings(store: TrainedStore, url: str, home: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "home": home,
        "database_url": url,
        "artifact_uri": f"file://{store.artifacts}",
        "cache_url": "memory://",
        "rate_limit_url": "memory://",
        "rate_limit_per_second": 10_000.0,
        "rate_limit_burst": 10_000,
        "deployment_check_seconds": 3600.0,
        "log_format": "text",
        "access_log": False,
        "prediction_log_flush_seconds": 0.05,
        "prediction_log_process": False,
        **overrides,
    }
    return Settings(**values)


@dataclass
class RunningApp:
    url: str
    settings: Settings
    keys: dict[str, str]
    app: Any

    def headers(self, key: str = "read") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[key]}"}

    @property
    def state(self) -> Any:
        return self.app.state.salescast


@contextmanager
def running_app(settings: Settings, keys: dict[str, str]) -> Iterator[RunningApp]:
    """The real app on 127.0.0.1 (uvicorn in a thread of this process), stopped at the end."""
    app = create_app(settings)
    with serving_in_thread(app, start_seconds=60) as url:
        yield RunningApp(url, settings, keys, app)


AppFactory = Callable[..., Any]


@pytest.fixture
def store_copy(trained_store: TrainedStore) -> tuple[str, dict[str, str]]:
    """A fresh copy of the trained store and one API key per scope on it."""
    url = trained_store.copy()
    engine = make_engine(url)
    try:
        keys = scope_keys(engine)
    finally:
        engine.dispose()
    return url, keys


# The HTTP receiver of the alert-sink tests, as the webhook an alert goes to.
from tests.monitoring.conftest import receiver  # noqa: E402, F401
