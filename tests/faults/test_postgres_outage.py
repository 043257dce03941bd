"""The database server stopped by pid under a running app: /ready turns false, cached answers keep being
served, writes get a clear 503 problem, and every prediction-log row of the outage is written once
after the restart (none lost, none doubled)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from salescast.data.database import make_engine
from salescast.data.schema import PredictionLogEntry
from tests.faults.conftest import TrainedStore, app_settings, running_app

TOP = "/api/v1/forecast/top-products"
WHAT_IF = "/api/v1/forecast/what-if"
ALIASES = "/api/v1/models/demand/aliases"

pytestmark = pytest.mark.faults


def logged_rows(url: str) -> tuple[int, set[str]]:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            count = session.scalar(select(func.count()).select_from(PredictionLogEntry)) or 0
            ids = set(session.scalars(select(PredictionLogEntry.request_id)).all())
        return count, ids
    finally:
        engine.dispose()


def wait_for_rows(url: str, expected: int, seconds: float) -> tuple[int, set[str]]:
    deadline = time.monotonic() + seconds
    while True:
        try:
            found = logged_rows(url)
        except Exception:  # the server is still starting
            found = (-1, set())
        if found[0] >= expected or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_postgresql_stopped_reads_stay_cached_writes_get_503_and_log_rows_wait_for_it(
    trained_store: TrainedStore, store_copy: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    url, keys = store_copy
    cluster = trained_store.cluster
    settings = app_settings(
        trained_store,
        url,
        tmp_path / "home",
        prediction_log_process=True,  # the production writer: a child process inserts
        prediction_log_max_retry_seconds=1.0,  # bounded: rows go out within a second of the restart
    )
    forecast_ids: list[str] = []  # request ids of every answer that logs a prediction

    def forecast(client: httpx.Client, method: str, path: str, key: str, **kwargs: object) -> httpx.Response:
        response = client.request(method, path, headers={"Authorization": f"Bearer {keys[key]}"}, **kwargs)  # type: ignore[arg-type]
        forecast_ids.append(response.headers["X-Request-Id"])
        return response

    with running_app(settings, keys) as app, httpx.Client(base_url=app.url, timeout=15) as client:
        sku = client.get("/api/v1/products", params={"page_size": 1}, headers=app.headers()).json()["items"][0][
            "product_id"
        ]
        scenario = {"product": sku, "horizon": 3, "price_change_pct": -10}
        warm = [forecast(client, "GET", TOP, "read", params={"limit": n}) for n in (1, 2, 3)]
        warm.append(forecast(client, "GET", f"/api/v1/forecast/products/{sku}", "read"))
        loaded = forecast(client, "POST", WHAT_IF, "predict", json=scenario)
        assert client.get("/api/v1/models", headers=app.headers("admin")).status_code == 200  # admin key verified
        assert [r.status_code for r in (*warm, loaded)] == [200] * 5
        assert wait_for_rows(url, len(forecast_ids), 10)[0] == len(forecast_ids)

        cluster.stop()
        assert cluster.pid is None
        not_ready = client.get("/api/v1/ready")
        cached = [forecast(client, "GET", TOP, "read", params={"limit": n}) for n in (1, 2, 3) * 10]
        cached.append(forecast(client, "GET", f"/api/v1/forecast/products/{sku}", "read"))
        what_if = forecast(client, "POST", WHAT_IF, "predict", json=scenario)
        write = client.post(ALIASES, json={"alias": "production", "version": 2}, headers=app.headers("admin"))
        stats_down = app.state.predictions.stats()

        cluster.start()
        deadline = time.monotonic() + 30
        while (ready := client.get("/api/v1/ready")).status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        after = forecast(client, "GET", TOP, "read", params={"limit": 4})
        count, ids = wait_for_rows(url, len(forecast_ids), 20)
        time.sleep(1.5)  # a doubled batch would land within the writer's next retry
        count_later, _ = logged_rows(url)
        stats = app.state.predictions.stats()

    assert not_ready.status_code == 503 and not_ready.headers["Retry-After"] == "5"
    assert "database is unreachable" in not_ready.json()["detail"]
    assert [r.status_code for r in cached] == [200] * len(cached)
    assert all(r.headers["X-Cache"] == "hit" for r in cached)
    assert [r.content for r in cached[:3]] == [r.content for r in warm[:3]]
    # The what-if needs the product's history from the database: a 503 that says so, like every write.
    for refused in (what_if, write):
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "5", refused.text
        assert refused.headers["Content-Type"] == "application/problem+json"
        assert refused.json()["detail"] == "the database is unavailable; try again shortly"
    assert stats_down.pending >= len(cached)  # the outage's rows waited in memory
    assert ready.status_code == 200 and after.status_code == 200
    assert count == count_later == len(forecast_ids)  # none lost, none doubled
    assert ids == set(forecast_ids)
    assert stats.dropped == 0
