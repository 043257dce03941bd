"""A corrupt or missing model artifact, met when an alias is moved to it and when a server starts with
production on it: the previous version keeps serving, and an alert naming the version and the checksum
reaches the webhook."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from salescast.data.database import make_engine
from salescast.registry.versions import ModelRegistry
from tests.faults.conftest import TrainedStore, app_settings, running_app
from tests.monitoring.conftest import Receiver

TOP = "/api/v1/forecast/top-products"
WHAT_IF = "/api/v1/forecast/what-if"
ALIASES = "/api/v1/models/demand/aliases"

pytestmark = pytest.mark.faults


def own_artifacts(store: TrainedStore, url: str, folder: Path) -> Path:
    """A copy of the artifacts that only this test breaks, pointed to by its store."""
    shutil.copytree(store.artifacts, folder)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE model_versions SET artifact_uri = replace(artifact_uri, :old, :new)"),
            {"old": f"file://{store.artifacts}", "new": f"file://{folder}"},
        )
    engine.dispose()
    return folder


def break_artifact(url: str, version: int, how: str) -> str:
    """Corrupt (truncate) or delete `version`'s artifact; its recorded sha256."""
    engine = make_engine(url)
    with engine.connect() as conn:
        uri, sha = conn.execute(
            text("SELECT artifact_uri, artifact_sha256 FROM model_versions WHERE version = :v"), {"v": version}
        ).one()
    engine.dispose()
    path = Path(uri.removeprefix("file://"))
    if how == "corrupt":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        path.unlink()
    return str(sha)


def alerts_received(receiver: Receiver, event: str, seconds: float = 15.0) -> list[dict[str, object]]:
    deadline = time.monotonic() + seconds
    while True:
        found = [json.loads(body) for _, body in receiver.received]
        found = [alert for alert in found if alert["event"] == event]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


@pytest.mark.parametrize("how", ["corrupt", "missing"])
def test_promoting_a_broken_artifact_is_refused_production_stays_and_an_alert_names_it(
    trained_store: TrainedStore, store_copy: tuple[str, dict[str, str]], tmp_path: Path, receiver: Receiver, how: str
) -> None:
    url, keys = store_copy
    artifacts = own_artifacts(trained_store, url, tmp_path / "artifacts")
    settings = app_settings(
        trained_store, url, tmp_path / "home", artifact_uri=f"file://{artifacts}", alert_url=receiver.url
    )
    sha = break_artifact(url, 2, how)

    with running_app(settings, keys) as app, httpx.Client(base_url=app.url, timeout=15) as client:
        refused = client.post(ALIASES, json={"alias": "production", "version": 2}, headers=app.headers("admin"))
        read = client.get(TOP, headers=app.headers())
        sku = client.get("/api/v1/products", params={"page_size": 1}, headers=app.headers()).json()["items"][0]
        what_if = client.post(
            WHAT_IF, json={"product": sku["product_id"], "horizon": 3}, headers=app.headers("predict")
        )
        alerts = alerts_received(receiver, "model.artifact_refused")

    assert refused.status_code == (409 if how == "corrupt" else 404), refused.text
    assert "production was not moved" in refused.json()["detail"] and sha not in refused.text
    assert read.status_code == 200 and read.json()["model_version"] == 1
    assert what_if.status_code == 200 and what_if.headers["X-Model-Version"] == "demand:v1"
    assert len(alerts) == 1
    (alert,) = alerts
    assert alert["severity"] == "critical"
    summary = str(alert["summary"])
    assert "demand v2 cannot be production" in summary and sha in summary
    assert ("corrupt" if how == "corrupt" else "missing") in summary


@pytest.mark.parametrize("how", ["corrupt", "missing"])
def test_a_server_starting_on_a_broken_production_artifact_serves_the_previous_version_and_alerts(
    trained_store: TrainedStore, store_copy: tuple[str, dict[str, str]], tmp_path: Path, receiver: Receiver, how: str
) -> None:
    url, keys = store_copy
    artifacts = own_artifacts(trained_store, url, tmp_path / "artifacts")
    settings = app_settings(
        trained_store, url, tmp_path / "home", artifact_uri=f"file://{artifacts}", alert_url=receiver.url
    )
    engine = make_engine(url)
    ModelRegistry.from_settings(settings, engine).promote("demand", 2, "test", "v2 to production")
    engine.dispose()
    sha = break_artifact(url, 2, how)  # broken while no server runs: met at start

    with running_app(settings, keys) as app, httpx.Client(base_url=app.url, timeout=15) as client:
        ready = client.get("/api/v1/ready")  # what an orchestrator asks first
        sku = client.get("/api/v1/products", params={"page_size": 1}, headers=app.headers()).json()["items"][0]
        what_if = client.post(
            WHAT_IF, json={"product": sku["product_id"], "horizon": 3}, headers=app.headers("predict")
        )
        read = client.get(TOP, headers=app.headers())
        alerts = alerts_received(receiver, "model.artifact_unusable")

    assert ready.status_code == 200 and ready.json()["status"] == "degraded", ready.text
    assert "what-ifs are computed by v1" in ready.json()["detail"] and sha not in ready.text
    assert what_if.status_code == 200 and what_if.headers["X-Model-Version"] == "demand:v1"
    assert read.status_code == 200  # stored forecasts need no artifact
    assert len(alerts) == 1
    summary = str(alerts[0]["summary"])
    assert "demand v2 cannot serve" in summary and sha in summary
