"""`salescast ingest` killed with SIGKILL midway through a file of a million rows, on SQLite and on
PostgreSQL: nothing of the file is in the store; then two ingestions of the same file at once load it
exactly once between them (no duplicates, no partial rows)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from salescast.data.database import make_engine, migrate
from salescast.data.schema import IngestionRun, Product, SalesFact
from tests.faults.own_services import OwnPostgres

ROOT = Path(__file__).resolve().parents[2]
ROWS = 1_000_000
DAYS = 1_000  # a thousand products x a thousand days x one store
KILL_AFTER_SECONDS = 4.0  # after the run is recorded: well inside a load of ~20 s on 2 busy cores

pytestmark = pytest.mark.faults


@pytest.fixture(scope="module")
def million_rows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A narrow CSV of a million valid rows (date, store, product, units)."""
    path = tmp_path_factory.mktemp("ingest-kill") / "million.csv"
    line = np.arange(ROWS)
    dates = (np.datetime64("2020-01-01") + (line % DAYS).astype("timedelta64[D]")).astype("datetime64[D]")
    table = pa.table(
        {
            "date": pa.array(dates),
            "store": pa.array(np.full(ROWS, "S1")),
            "product": pa.array(np.char.add("P", (line // DAYS).astype(str))),
            "units": pa.array((line * 7) % 13),
        }
    )
    pa_csv.write_csv(table, path)
    return path


def ingest(file: Path, url: str, home: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SALESCAST_HOME": str(home),
        "SALESCAST_DATABASE_URL": url,
        "SALESCAST_LOG_FORMAT": "text",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "salescast.cli", "ingest", str(file)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def counts(engine: Engine) -> tuple[int, int, list[tuple[str, int, int]]]:
    with Session(engine) as session:
        sales = session.scalar(select(func.count()).select_from(SalesFact)) or 0
        products = session.scalar(select(func.count()).select_from(Product)) or 0
        runs = session.execute(
            select(IngestionRun.status, IngestionRun.facts_inserted, IngestionRun.facts_unchanged).order_by(
                IngestionRun.id
            )
        ).all()
    return sales, products, [tuple(run) for run in runs]  # type: ignore[misc]


def wait_for_run(engine: Engine, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with Session(engine) as session:
            if session.scalar(select(func.count()).select_from(IngestionRun)):
                return
        time.sleep(0.1)
    raise AssertionError("the ingestion run was never recorded")


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    cluster: OwnPostgres = request.getfixturevalue("own_postgres")
    return cluster.create_database(f"faults_ingest_{uuid.uuid4().hex[:8]}")


def test_a_killed_ingest_leaves_nothing_and_two_concurrent_reruns_load_the_file_once(
    million_rows: Path, database: str, tmp_path: Path
) -> None:
    engine = make_engine(database)
    migrate(engine)
    home = tmp_path / "home"

    killed = ingest(million_rows, database, home)
    wait_for_run(engine, 60)
    time.sleep(KILL_AFTER_SECONDS)
    assert killed.poll() is None, "the ingest finished before it could be killed"
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait(timeout=30)
    after_kill = counts(engine)

    started = time.monotonic()
    pair = [ingest(million_rows, database, home) for _ in range(2)]
    outputs = [process.communicate(timeout=240)[0].decode() for process in pair]
    pair_seconds = time.monotonic() - started
    sales, products, runs = counts(engine)
    engine.dispose()

    assert killed.returncode == -signal.SIGKILL
    assert after_kill[:2] == (0, 0)  # no partial rows: neither facts nor dimensions
    assert after_kill[2] == [("running", 0, 0)]  # the dead run's record, until the next ingest looks
    assert [process.returncode for process in pair] == [0, 0], outputs
    assert sales == ROWS and products == ROWS // DAYS  # loaded exactly once
    assert runs[0] == ("interrupted", 0, 0)
    # One of the pair inserted every row; the other found them all there (in whichever order they ran).
    assert sorted(runs[1:]) == [("succeeded", 0, ROWS), ("succeeded", ROWS, 0)], runs
    print(f"two concurrent ingests of {ROWS:,} rows on {engine.dialect.name}: {pair_seconds:.1f} s")
