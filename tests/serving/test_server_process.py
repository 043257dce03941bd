"""`salescast serve` as an operator runs it: a real process that, on SIGTERM, stops accepting, finishes
the requests in flight, writes their prediction-log rows and exits cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from salescast.data.database import make_engine
from salescast.data.schema import PredictionLogEntry
from salescast.serving.auth import KeyStore
from tests.conftest import answers_200, free_port
from tests.serving.served_store import StoreTemplate, copy_store, database_name, drop_database

ROOT = Path(__file__).resolve().parents[2]
SHUTDOWN_MESSAGE = {"uvicorn": "Application shutdown complete", "granian": "Granian shutdown completed"}


@pytest.mark.parametrize("server_name", ["uvicorn", "granian"])
def test_sigterm_drains_requests_in_flight_and_flushes_the_prediction_log(
    store_template: StoreTemplate, tmp_path: Path, server_name: str
) -> None:
    url = copy_store(store_template, tmp_path)
    engine = make_engine(url)
    secret = KeyStore(engine, cache_seconds=0).create("drain", ["predict"]).secret
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SALESCAST_HOME": str(tmp_path / "home"),
        "SALESCAST_DATABASE_URL": url,
        "SALESCAST_ARTIFACT_URI": f"file://{store_template.artifacts}",
        "SALESCAST_LOG_FORMAT": "text",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "salescast.cli",
            "serve",
            "--port",
            str(port),
            "--drain-seconds",
            "60",
            "--server",
            server_name,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert answers_200(f"{base}/api/v1/ready", server, timeout=60), "the server did not become ready"
        products = [
            p["product_id"] for p in httpx.get(f"{base}/api/v1/products", headers={"X-API-Key": secret}).json()["items"]
        ]

        async def in_flight() -> tuple[list[tuple[int, float]], float]:
            async with httpx.AsyncClient(base_url=base, timeout=120) as client:

                async def what_if(product: str) -> tuple[int, float]:
                    body = {"product": product, "horizon": 14, "price_change_pct": -20}
                    response = await client.post("/api/v1/forecast/what-if", json=body, headers={"X-API-Key": secret})
                    return response.status_code, time.monotonic()

                tasks = [asyncio.create_task(what_if(product)) for product in products]
                await asyncio.sleep(0.3)  # the requests are accepted and being computed
                stopped_at = time.monotonic()
                server.send_signal(signal.SIGTERM)
                return list(await asyncio.gather(*tasks)), stopped_at

        results, stopped_at = asyncio.run(in_flight())
        exit_code = server.wait(timeout=90)
    finally:
        if server.poll() is None:
            server.kill()
        output = server.stdout.read().decode() if server.stdout else ""

    assert [status for status, _ in results] == [200] * len(products), output[-3000:]
    assert max(done for _, done in results) > stopped_at, "no request was in flight at SIGTERM"
    # uvicorn re-raises the signal once it has shut down cleanly, as a process killed by it would end.
    assert exit_code in (0, -signal.SIGTERM), output[-3000:]
    assert SHUTDOWN_MESSAGE[server_name] in output
    with Session(engine) as session:
        logged = session.scalar(select(func.count()).select_from(PredictionLogEntry))
    assert logged == len(products)
    engine.dispose()
    if url.startswith("postgresql"):
        drop_database(database_name(url))
