"""PostgreSQL going away under a running server, and a server started while it is away.

The outage is real: the app reaches the PostgreSQL server through a TCP proxy that the test closes (refused
connections, every open one cut) and opens again; the shared server itself is never stopped.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from salescast.data.database import make_engine
from salescast.data.schema import PredictionLogEntry
from salescast.serving.auth import KeyStore
from tests.conftest import free_port
from tests.serving.conftest import Api, ApiFactory
from tests.serving.served_store import StoreTemplate, copy_store, database_name, drop_database
from tests.serving.tcp_proxy import TcpProxy

TOP = "/api/v1/forecast/top-products"
WHAT_IF = "/api/v1/forecast/what-if"
ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.postgres, pytest.mark.parametrize("store_template", ["postgresql"], indirect=True)]


@pytest.fixture
def proxies() -> Iterator[list[TcpProxy]]:
    """Proxies to stop at the very end: after the apps (set up later, so torn down earlier) have closed."""
    made: list[TcpProxy] = []
    yield made
    for proxy in made:
        proxy.stop()


@pytest.fixture
def behind_proxy(proxies: list[TcpProxy], api_factory: ApiFactory) -> Iterator[tuple[Api, TcpProxy]]:
    """An API on its own store copy, reaching PostgreSQL through a proxy; the key cache lasts 0.2 s, so the
    outage is not hidden by it."""
    store = api_factory()  # makes the store copy and the keys; its own app is not used
    proxy = TcpProxy("127.0.0.1", make_url(store.settings.database_url).port or 5432)
    proxy.start()
    proxies.append(proxy)
    api = api_factory(database_url=proxy.url(store.settings.database_url), auth_cache_seconds=0.2)
    api.keys, api.engine = store.keys, store.engine  # the store the app serves, reached directly
    yield api, proxy
    if not proxy.listening:
        proxy.start()  # the app's shutdown writes its pending log rows: not a 10 s wait on a dead database
    for _ in range(5):  # a flush retries at once (the first try may meet a connection the outage cut)
        if api.state.predictions.flush(timeout=1.0):
            break


def test_cached_reads_keep_answering_200_while_postgresql_is_down(behind_proxy: tuple[Api, TcpProxy]) -> None:
    api, proxy = behind_proxy
    warm = api.get(TOP, params={"limit": 2})
    api.state.predictions.flush(timeout=5.0)

    proxy.stop()
    time.sleep(0.3)  # the key cache has expired: only the outage grace can trust the key now
    reads = [api.get(TOP, params={"limit": 2}) for _ in range(20)]
    unknown_key = api.get(
        TOP, key=None, params={"limit": 2}, headers={"Authorization": "Bearer " + "sc_00000000_" + "A" * 43}
    )

    assert warm.status_code == 200
    assert [r.status_code for r in reads] == [200] * 20
    assert all(r.headers["X-Cache"] == "hit" and r.content == warm.content for r in reads)
    assert unknown_key.status_code == 503  # never verified: nothing to trust it with
    assert unknown_key.headers["Retry-After"] == "5"


def test_every_503_of_an_outage_carries_retry_after(behind_proxy: tuple[Api, TcpProxy]) -> None:
    api, proxy = behind_proxy
    api.get(TOP, params={"limit": 2})

    proxy.stop()
    answers = {
        "uncached read": api.get(TOP, params={"limit": 3}),
        "ready": api.client.get("/api/v1/ready"),
        "unverified key": api.get(TOP, key="predict"),
        "what-if": api.post(WHAT_IF, key="read", json={"product": "x"}),  # read key: verified, lacks scope
    }

    statuses = {name: r.status_code for name, r in answers.items()}
    assert statuses == {"uncached read": 503, "ready": 503, "unverified key": 503, "what-if": 403}
    for name in ("uncached read", "ready", "unverified key"):
        assert answers[name].headers["Retry-After"] == "5", name
    assert answers["ready"].json()["detail"].startswith("the postgresql database is unreachable")


def test_a_what_if_that_loses_the_database_is_logged_with_the_status_the_client_got(
    behind_proxy: tuple[Api, TcpProxy],
) -> None:
    api, proxy = behind_proxy
    api.state.keys.cache_seconds = 60.0  # the key stays cached: this is about the log, not the key check
    sku = api.get("/api/v1/products", params={"page_size": 1}).json()["items"][0]["product_id"]
    scenario = {"product": sku, "horizon": 3, "price_change_pct": -10}
    assert api.post(WHAT_IF, key="predict", json=scenario).status_code == 200  # the key is verified

    proxy.stop()
    lost = api.post(WHAT_IF, key="predict", json=scenario)
    proxy.start()
    for _ in range(10):  # a flush retries at once (the first try may meet a connection the outage cut)
        if api.state.predictions.flush(timeout=1.0):
            break

    assert lost.status_code == 503 and lost.headers["Retry-After"] == "5"
    with Session(api.engine) as session:
        logged = session.scalars(
            select(PredictionLogEntry.status_code).where(PredictionLogEntry.request_id == lost.headers["X-Request-Id"])
        ).all()
    assert logged == [503]


def test_serve_starts_while_postgresql_is_down_and_serves_once_it_is_back(
    store_template: StoreTemplate, tmp_path: Path
) -> None:
    url = copy_store(store_template, tmp_path)
    engine = make_engine(url)
    secret = KeyStore(engine, cache_seconds=0).create("outage", ["read"]).secret
    engine.dispose()
    proxy = TcpProxy("127.0.0.1", 5432)  # made, not started: the database is down
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SALESCAST_HOME": str(tmp_path / "home"),
        "SALESCAST_DATABASE_URL": proxy.url(url),
        "SALESCAST_ARTIFACT_URI": f"file://{store_template.artifacts}",
        "SALESCAST_LOG_FORMAT": "text",
        "SALESCAST_DEPLOYMENT_CHECK_SECONDS": "0.5",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "salescast.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        health = wait_for(lambda: httpx.get(f"{base}/health", timeout=2), server)
        not_ready = httpx.get(f"{base}/ready", timeout=10)

        proxy.start()
        ready = wait_for(lambda: _ready(base), server)
        read = httpx.get(f"{base}/forecast/top-products", headers={"X-API-Key": secret}, timeout=10)
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0].decode(errors="replace")
        proxy.stop()
        drop_database(database_name(url))

    assert health.status_code == 200, output
    assert not_ready.status_code == 503 and not_ready.headers["Retry-After"] == "5"
    assert not_ready.json()["detail"].startswith("the postgresql database is unreachable")
    assert ready.json()["status"] == "ready" and ready.json()["model_version"] == 1
    assert read.status_code == 200 and read.json()["model_version"] == 1
    assert "database unavailable" in output


def _ready(base: str) -> httpx.Response:
    response = httpx.get(f"{base}/ready", timeout=10)
    if response.status_code != 200:
        raise httpx.ConnectError("not ready yet")
    return response


def wait_for(call: object, server: subprocess.Popen[bytes], seconds: float = 60) -> httpx.Response:
    deadline = time.monotonic() + seconds
    while True:
        try:
            response: httpx.Response = call()  # type: ignore[operator]
            return response
        except httpx.HTTPError:
            pass
        assert server.poll() is None, "the server exited"
        assert time.monotonic() < deadline, "the server did not answer in time"
        time.sleep(0.2)
