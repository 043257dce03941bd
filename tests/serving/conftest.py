"""API fixtures: a trained store per backend (built once), copied for each test, served by the real app."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from salescast.config import Settings
from salescast.data.database import make_engine
from salescast.serving.app import create_app
from salescast.serving.auth import KeyStore
from tests.conftest import serving_in_thread
from tests.serving.served_store import (
    StoreTemplate,
    build_template,
    copy_store,
    database_name,
    drop_database,
    drop_template,
)


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_template(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreTemplate]:
    template = build_template(request.param, tmp_path_factory.mktemp(f"served-{request.param}"))
    yield template
    drop_template(template)


@dataclass
class Api:
    """A running app on its own copy of the store, with one key per scope."""

    client: TestClient
    settings: Settings
    engine: Engine
    keys: dict[str, str]

    def get(self, path: str, key: str | None = "read", **kwargs: Any) -> httpx.Response:
        response: httpx.Response = self.client.get(path, headers=self._auth(key, kwargs.pop("headers", {})), **kwargs)
        return response

    def post(self, path: str, key: str | None = "admin", **kwargs: Any) -> httpx.Response:
        response: httpx.Response = self.client.post(path, headers=self._auth(key, kwargs.pop("headers", {})), **kwargs)
        return response

    def _auth(self, key: str | None, headers: dict[str, str]) -> dict[str, str]:
        return {**headers, "Authorization": f"Bearer {self.keys[key]}"} if key else headers

    @property
    def state(self) -> Any:
        return self.client.app.state.salescast  # type: ignore[attr-defined]


ApiFactory = Callable[..., Api]


def scope_keys(engine: Engine) -> dict[str, str]:
    """One new API key per scope, by scope name."""
    store = KeyStore(engine, cache_seconds=0)
    return {scope: store.create(f"{scope}-key", [scope]).secret for scope in ("read", "predict", "admin")}


def api_settings(template: StoreTemplate, url: str, home: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "home": home,
        "database_url": url,
        "artifact_uri": f"file://{template.artifacts}",
        "cache_url": "memory://",
        "rate_limit_url": "memory://",
        "rate_limit_per_second": 10_000.0,
        "rate_limit_burst": 10_000,
        "auth_cache_seconds": 0.0,
        "deployment_check_seconds": 3600.0,
        "log_format": "text",
        "access_log": False,
        "prediction_log_flush_seconds": 0.05,
        # A writer process per app would add a process start to each of these tests; the process mode
        # has tests of its own (test_prediction_log, the logging test of test_api, test_server_process).
        "prediction_log_process": False,
        **overrides,
    }
    return Settings(**values)


@pytest.fixture
def api_factory(store_template: StoreTemplate, tmp_path: Path) -> Iterator[ApiFactory]:
    opened: list[tuple[TestClient, Engine, str]] = []

    def make(**overrides: Any) -> Api:
        url = copy_store(store_template, tmp_path)
        settings = api_settings(store_template, url, tmp_path / "home", **overrides)
        engine = make_engine(url)
        keys = scope_keys(engine)
        client = TestClient(create_app(settings), raise_server_exceptions=False)
        client.__enter__()
        opened.append((client, engine, url))
        return Api(client, settings, engine, keys)

    yield make
    for client, engine, url in opened:
        client.__exit__(None, None, None)
        engine.dispose()
        if url.startswith("postgresql"):
            drop_database(database_name(url))


@pytest.fixture
def api(api_factory: ApiFactory) -> Api:
    return api_factory()


@dataclass
class LiveServer:
    """The real app on a real socket (uvicorn in a thread), for concurrency and contract tests."""

    url: str
    settings: Settings
    engine: Engine
    keys: dict[str, str]
    app: Any

    def headers(self, key: str = "read") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[key]}"}


@contextmanager
def live_server(template: StoreTemplate, folder: Path, **overrides: Any) -> Iterator[LiveServer]:
    url = copy_store(template, folder)
    settings = api_settings(template, url, folder / "home", **overrides)
    engine = make_engine(url)
    keys = scope_keys(engine)
    app = create_app(settings)
    try:
        with serving_in_thread(app) as base_url:
            yield LiveServer(base_url, settings, engine, keys, app)
    finally:
        engine.dispose()
        if url.startswith("postgresql"):
            drop_database(database_name(url))
