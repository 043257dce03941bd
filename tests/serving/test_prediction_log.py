"""The prediction log writer: batches off the request path, survives a database outage, bounds its buffer;
and variant_stats, which rollouts read from the log."""

from __future__ import annotations

import datetime as dt
import gc
import os
import pickle
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Engine, event, insert, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool, StaticPool

from salescast.config import Settings
from salescast.data.database import as_utc, make_engine, migrate
from salescast.data.schema import PredictionLogEntry
from salescast.errors import ConfigurationError
from salescast.monitoring.live_stats import VariantStats, variant_stats
from salescast.serving.prediction_log.inserters import CHUNK_RECORDS, COLUMNS, ProcessInserter, _send_in_chunks
from salescast.serving.prediction_log.writer import PredictionLogWriter, PredictionRecord, make_prediction_log
from tests.conftest import POSTGRES_ADMIN_URL

T0 = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)


def record(number: int, **changes: Any) -> PredictionRecord:
    values: dict[str, Any] = {
        "at": T0 + dt.timedelta(seconds=number),
        "request_id": f"r-{number:04d}",
        "key_id": 3,
        "model_name": "demand",
        "model_version": 2,
        "variant": "production",
        "served": True,
        "route": "/forecast/what-if",
        "params": {"i": number, "product": "A"},
        "status_code": 200,
        "latency_ms": 12.5,
        "result": None,
    }
    return PredictionRecord(**{**values, **changes})


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def eventually(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Wait for something a background thread does; the deadline only guards against hanging forever."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.01)


@pytest.fixture(params=[False, True], ids=["thread", "process"])
def separate_process(request: pytest.FixtureRequest) -> bool:
    """Whether the writer inserts from a child process (serve's default) or from its own thread."""
    return bool(request.param)


def request_ids(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.scalars(select(PredictionLogEntry.request_id)))


def test_records_logged_from_many_threads_are_all_written_in_few_batches(
    engine: Engine, separate_process: bool
) -> None:
    commits: list[int] = []

    def count_commit(_conn: Any) -> None:
        commits.append(1)

    writer = PredictionLogWriter(
        engine, batch_size=100, flush_seconds=60, max_pending=10_000, separate_process=separate_process
    )
    writer.start()
    event.listen(engine, "commit", count_commit)
    try:

        def log_every_eighth(first: int) -> None:
            for n in range(first, 1234, 8):
                writer.log(record(n))

        threads = [threading.Thread(target=log_every_eighth, args=(first,)) for first in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        flushed = writer.flush(timeout=30)
    finally:
        event.remove(engine, "commit", count_commit)
        writer.close(timeout=5)

    stats = writer.stats()
    assert flushed
    assert (stats.logged, stats.written, stats.dropped, stats.pending) == (1234, 1234, 0, 0)
    # Only full batches of 100 are written until flush() writes the remaining 34: 13 transactions, which
    # the child process commits on an engine of its own when there is one.
    assert stats.batches == 13 and len(commits) == (0 if separate_process else 13)
    assert request_ids(engine) == [f"r-{n:04d}" for n in range(1234)]
    with Session(engine) as session:
        row = session.scalars(select(PredictionLogEntry).where(PredictionLogEntry.request_id == "r-0777")).one()
    assert row.params == {"i": 777, "product": "A"}
    stored_at = row.at.replace(tzinfo=dt.UTC) if row.at.tzinfo is None else row.at  # SQLite stores UTC, naive
    assert stored_at == T0 + dt.timedelta(seconds=777)
    assert (row.key_id, row.model_name, row.model_version, row.variant) == (3, "demand", 2, "production")
    assert (row.served, row.route, row.status_code, row.latency_ms, row.result) == (
        True,
        "/forecast/what-if",
        200,
        12.5,
        None,
    )


def test_a_backlog_is_written_in_batches_of_up_to_max_batch(engine: Engine, separate_process: bool) -> None:
    writer = PredictionLogWriter(
        engine, batch_size=100, max_batch=1000, flush_seconds=60, max_pending=10_000, separate_process=separate_process
    )
    for n in range(2500):  # logged before the writer runs: a log that has fallen behind
        writer.log(record(n))
    with writer:
        assert writer.flush(timeout=30)
        for n in range(2500, 2550):  # then less than a batch: written by the flush, alone
            writer.log(record(n))
        assert writer.flush(timeout=30)

    assert (writer.stats().written, writer.stats().batches) == (2550, 4)  # 1000 + 1000 + 500, then 50
    assert request_ids(engine) == [f"r-{n:04d}" for n in range(2550)]


def test_a_backlog_of_records_leaves_the_garbage_collector_nothing_to_walk(engine: Engine) -> None:
    # A full collection walks every tracked object; records waiting by the ten thousand must not be any.
    writer = PredictionLogWriter(engine, batch_size=100, flush_seconds=60, max_pending=100_000)
    writer.log(record(0, params={"product": "A", "plan": ["2025-03-01"]}))  # what a first call imports
    gc.collect()
    tracked_before = len(gc.get_objects())
    for n in range(1, 10_001):
        params = {"product": "A", "plan": ["2025-03-01"]} if n % 2 else {"i": n}
        writer.log(record(n, params=params, result={"p50": [1.0, 2.0]} if n % 3 == 0 else None))
    gc.collect()

    assert writer.stats().pending == 10_001
    assert len(gc.get_objects()) - tracked_before < 500  # two a record, 20,000, as (sequence, named tuple)


def test_the_largest_batch_cannot_be_below_the_batch_size(engine: Engine) -> None:
    with pytest.raises(ConfigurationError, match=r"largest batch \(50\) is below the batch size \(100\)"):
        PredictionLogWriter(engine, batch_size=100, max_batch=50, flush_seconds=1, max_pending=1000)


def test_close_writes_what_is_pending_and_later_records_are_dropped(engine: Engine, separate_process: bool) -> None:
    pending_before, logged_before = (
        metric("salescast_prediction_log_pending"),
        metric("salescast_prediction_log_written_total"),
    )
    writer = PredictionLogWriter(
        engine, batch_size=1000, flush_seconds=60, max_pending=10_000, separate_process=separate_process
    )
    writer.start()
    for n in range(10):
        writer.log(record(n))

    drained = writer.close(timeout=10)
    writer.log(record(99))  # after shutdown: never raises, never written

    assert drained
    assert request_ids(engine) == [f"r-{n:04d}" for n in range(10)]
    assert (writer.stats().written, writer.stats().dropped) == (10, 1)
    assert metric("salescast_prediction_log_written_total") == logged_before + 10
    assert metric("salescast_prediction_log_pending") == pending_before


def test_records_wait_for_the_flush_interval_when_no_batch_fills(engine: Engine) -> None:
    with PredictionLogWriter(engine, batch_size=1000, flush_seconds=0.05, max_pending=10_000) as writer:
        writer.log(record(1))
        eventually(lambda: writer.stats().written == 1, "the lone record is written after flush_seconds")

    assert request_ids(engine) == ["r-0001"]


@pytest.mark.parametrize(
    "bad_params",
    [{"not json": object()}, {"cannot even be pickled": threading.Lock()}],
    ids=["not-json", "not-picklable"],
)
def test_a_row_the_database_refuses_is_dropped_alone(
    engine: Engine, separate_process: bool, bad_params: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    with PredictionLogWriter(
        engine, batch_size=10, flush_seconds=60, max_pending=100, separate_process=separate_process
    ) as writer:
        for n in range(10):
            writer.log(record(n, params=bad_params) if n == 4 else record(n))
        assert writer.flush(timeout=30)

    assert request_ids(engine) == [f"r-{n:04d}" for n in range(10) if n != 4]
    assert (writer.stats().written, writer.stats().dropped, writer.stats().failures) == (9, 1, 0)
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 1 and "not JSON serializable" in refusals[0]


def test_a_value_the_database_cannot_store_drops_its_row_alone(engine: Engine, separate_process: bool) -> None:
    # Beyond a 64-bit integer: SQLite's driver cannot bind it, PostgreSQL refuses it in the batch's COPY.
    with PredictionLogWriter(
        engine, batch_size=20, flush_seconds=60, max_pending=100, separate_process=separate_process
    ) as writer:
        for n in range(20):
            writer.log(record(n, key_id=2**63) if n == 7 else record(n))
        assert writer.flush(timeout=30)

    assert request_ids(engine) == [f"r-{n:04d}" for n in range(20) if n != 7]
    assert (writer.stats().written, writer.stats().dropped, writer.stats().failures) == (19, 1, 0)


def test_stored_rows_read_back_as_the_records_were_logged(engine: Engine) -> None:
    naive_utc = dt.datetime(2025, 3, 1, 12, 0, 0)  # no microseconds, no zone: taken as UTC
    in_paris = dt.datetime(2025, 3, 1, 14, 30, 0, 250, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    records = [
        record(1, at=naive_utc, result={"p50": [1.5, 2.0]}, served=False, variant="shadow"),
        record(2, at=in_paris, params={"plan": [{"price": 9.5}]}, key_id=None, model_version=None),
        record(3, params={"store": "S1", "product": "A"}),
        record(4, params={"store": "S1", "product": "A"}),  # the same params: encoded once, stored twice
    ]
    with PredictionLogWriter(engine, batch_size=10, flush_seconds=60, max_pending=100) as writer:
        for one in records:
            writer.log(one)
        assert writer.flush(timeout=30)

    with Session(engine) as session:
        rows = session.scalars(select(PredictionLogEntry).order_by(PredictionLogEntry.request_id)).all()
    stored = [
        (as_utc(row.at), row.key_id, row.model_version, row.variant, row.served, row.params, row.result) for row in rows
    ]
    assert stored == [
        (naive_utc.replace(tzinfo=dt.UTC), 3, 2, "shadow", False, {"i": 1, "product": "A"}, {"p50": [1.5, 2.0]}),
        (
            dt.datetime(2025, 3, 1, 13, 30, 0, 250, tzinfo=dt.UTC),
            None,
            None,
            "production",
            True,
            {"plan": [{"price": 9.5}]},
            None,
        ),
        (T0 + dt.timedelta(seconds=3), 3, 2, "production", True, {"store": "S1", "product": "A"}, None),
        (T0 + dt.timedelta(seconds=4), 3, 2, "production", True, {"store": "S1", "product": "A"}, None),
    ]
    # A time's text on SQLite is what SQLAlchemy itself writes (microseconds always), so that comparing
    # times in queries holds: "12:00:00" would sort before "12:00:00.000000".
    with Session(engine) as session:
        since = select(PredictionLogEntry.request_id).where(PredictionLogEntry.at >= naive_utc.replace(tzinfo=dt.UTC))
        assert sorted(session.scalars(since)) == ["r-0001", "r-0002", "r-0003", "r-0004"]


def test_record_fields_are_the_inserted_columns_in_order() -> None:
    # The inserter knows a record's values by position (it receives plain tuples).
    assert PredictionRecord._fields == COLUMNS


def test_records_travel_to_the_writer_process_as_plain_tuples() -> None:
    sent: list[bytes] = []

    class Recorder:
        def send_bytes(self, payload: bytes) -> None:
            sent.append(payload)

    assert _send_in_chunks(Recorder(), [record(n) for n in range(CHUNK_RECORDS + 1)])  # type: ignore[arg-type]

    assert len(sent) == 2
    # Unpickling them imports nothing of salescast's in the writer process, which never loads the server.
    assert all(b"salescast" not in payload for payload in sent)
    last, chunk = pickle.loads(sent[1])
    assert last is True and type(chunk[0]) is tuple and chunk[0] == tuple(record(CHUNK_RECORDS))


def test_a_writer_process_that_dies_is_replaced_and_its_batch_written_again(engine: Engine) -> None:
    with PredictionLogWriter(
        engine, batch_size=10, flush_seconds=60, max_pending=1000, separate_process=True
    ) as writer:
        for n in range(10):
            writer.log(record(n))
        assert writer.flush(timeout=30)
        inserter = writer._inserter
        assert isinstance(inserter, ProcessInserter)
        first_child = inserter.pid
        assert first_child is not None and first_child != os.getpid()

        os.kill(first_child, signal.SIGKILL)  # as the OOM killer would
        for n in range(10, 30):
            writer.log(record(n))
        flushed = writer.flush(timeout=60)
        second_child = inserter.pid

    assert flushed
    assert second_child is not None and second_child != first_child
    assert request_ids(engine) == [f"r-{n:04d}" for n in range(30)]
    assert (writer.stats().written, writer.stats().dropped) == (30, 0)


def test_a_record_that_cannot_travel_in_a_later_chunk_drops_alone(engine: Engine) -> None:
    # The batch goes to the child in chunks of CHUNK_RECORDS; the bad record sits in the third, after two
    # were sent: the child forgets those, and the batch is inserted in this process, the bad row dropped.
    bad = 2 * CHUNK_RECORDS + 5
    writer = PredictionLogWriter(engine, batch_size=150, flush_seconds=60, max_pending=1000, separate_process=True)
    with writer:
        for n in range(150):
            writer.log(record(n, params={"lock": threading.Lock()}) if n == bad else record(n))
        assert writer.flush(timeout=60)
        for n in range(150, 160):  # the child still takes the next batch, with nothing left over
            writer.log(record(n))
        assert writer.flush(timeout=60)

    assert request_ids(engine) == [f"r-{n:04d}" for n in range(160) if n != bad]
    assert (writer.stats().written, writer.stats().dropped, writer.stats().failures) == (159, 1, 0)


def test_an_in_memory_database_is_written_from_the_thread(tmp_path: Path) -> None:
    memory = make_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    migrate(memory)

    writer = PredictionLogWriter(memory, batch_size=10, flush_seconds=60, max_pending=100, separate_process=True)
    with writer:
        writer.log(record(1))
        assert writer.flush(timeout=30)

    assert not writer.separate_process
    assert request_ids(memory) == ["r-0001"]


def test_make_prediction_log_takes_its_sizes_from_the_settings(engine: Engine) -> None:
    settings = Settings(
        prediction_log_batch=7,
        prediction_log_max_batch=700,
        prediction_log_flush_seconds=0.5,
        prediction_log_max_pending=70,
    )

    writer = make_prediction_log(engine, settings)

    assert (writer.batch_size, writer.max_batch, writer.flush_seconds, writer.max_pending) == (7, 700, 0.5, 70)
    # A largest batch set below the batch size is taken as the batch size, not refused at start-up.
    small = make_prediction_log(engine, Settings(prediction_log_batch=500, prediction_log_max_batch=100))
    assert (small.batch_size, small.max_batch) == (500, 500)


@dataclass
class Outage:
    """A database that can really go away and come back."""

    engine: Engine
    down: Callable[[], None]
    up: Callable[[], None]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def outage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Outage]:
    if request.param == "sqlite":
        # The database's folder is moved away and back; without a pool every write opens the file anew.
        folder, away = tmp_path / "store", tmp_path / "store-away"
        engine = make_engine(f"sqlite:///{folder / 'salescast.db'}", poolclass=NullPool)
        migrate(engine)
        yield Outage(engine, down=lambda: _rename(folder, away), up=lambda: _rename(away, folder))
        engine.dispose()
        return
    # A database of its own on the real server, dropped (connections cut) and created again.
    name = f"salescast_outage_{uuid.uuid4().hex[:10]}"
    url = POSTGRES_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://").rsplit("/", 1)[0] + f"/{name}"

    def admin(sql: str) -> None:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(sql)

    admin(f'CREATE DATABASE "{name}"')
    engine = make_engine(url)
    migrate(engine)

    def up() -> None:
        admin(f'CREATE DATABASE "{name}"')
        migrate(engine)

    yield Outage(engine, down=lambda: admin(f'DROP DATABASE "{name}" WITH (FORCE)'), up=up)
    engine.dispose()
    admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _rename(source: Path, target: Path) -> None:
    source.rename(target)


def fast_retrying_writer(engine: Engine, max_pending: int, separate_process: bool) -> PredictionLogWriter:
    return PredictionLogWriter(
        engine,
        batch_size=10,
        flush_seconds=0.05,
        max_pending=max_pending,
        retry_seconds=0.02,
        max_retry_seconds=0.1,
        warn_every_seconds=3600,
        separate_process=separate_process,
    )


def test_records_logged_while_the_database_is_down_are_written_after_it_returns(
    outage: Outage, separate_process: bool, caplog: pytest.LogCaptureFixture
) -> None:
    with fast_retrying_writer(outage.engine, 1000, separate_process) as writer:
        outage.down()
        for n in range(50):
            writer.log(record(n))  # neither raises nor waits for the database
        eventually(lambda: writer.stats().failures >= 3, "the writer failed and retried")
        during = writer.stats()
        warnings = [r.getMessage() for r in caplog.records if r.name == "salescast.serving.prediction_log"]
        outage.up()
        flushed = writer.flush(timeout=30)

    assert (during.written, during.pending, during.dropped) == (0, 50, 0)
    assert len(warnings) == 1 and warnings[0].startswith("prediction log: write failed (OperationalError")
    assert flushed
    assert request_ids(outage.engine) == [f"r-{n:04d}" for n in range(50)]
    assert (writer.stats().written, writer.stats().dropped) == (50, 0)


def test_beyond_max_pending_the_oldest_records_are_dropped_and_counted(outage: Outage, separate_process: bool) -> None:
    dropped_before = metric("salescast_prediction_log_dropped_total")
    with fast_retrying_writer(outage.engine, 100, separate_process) as writer:
        outage.down()
        for n in range(250):
            writer.log(record(n))
        failures = writer.stats().failures
        # A failed attempt after the last log() has put its rows back and trimmed the buffer to the newest.
        eventually(
            lambda: writer.stats().failures > failures and writer.stats().in_flight == 0, "a failed write attempt"
        )
        during = writer.stats()
        outage.up()
        flushed = writer.flush(timeout=30)

    assert (during.pending, during.dropped, during.written) == (100, 150, 0)
    assert metric("salescast_prediction_log_dropped_total") == dropped_before + 150
    assert flushed
    assert request_ids(outage.engine) == [f"r-{n:04d}" for n in range(150, 250)]


def test_close_gives_up_on_a_database_that_stays_down(outage: Outage, separate_process: bool) -> None:
    dropped_before = metric("salescast_prediction_log_dropped_total")
    pending_before = metric("salescast_prediction_log_pending")
    writer = fast_retrying_writer(outage.engine, 100, separate_process)
    writer.start()
    outage.down()
    for n in range(5):
        writer.log(record(n))

    drained = writer.close(timeout=0.5)
    outage.up()

    assert not drained
    assert (writer.stats().dropped, writer.stats().pending) == (5, 0)
    assert metric("salescast_prediction_log_dropped_total") == dropped_before + 5
    assert metric("salescast_prediction_log_pending") == pending_before


def test_variant_stats_counts_served_requests_per_version_since_a_time(engine: Engine) -> None:
    since = T0
    minus_five = dt.timezone(dt.timedelta(hours=-5))
    plus_five = dt.timezone(dt.timedelta(hours=5))
    rows = [
        # version 1: 4 requests, one server error
        *(record(i, model_version=1, latency_ms=lat, status_code=code)
          for i, (lat, code) in enumerate([(10, 200), (20, 500), (30, 200), (40, 200)])),
        # version 2: latencies 1..100 ms; three 503s; 404s are the caller's fault, not errors
        *(record(100 + i, model_version=2, variant="challenger", latency_ms=float(i + 1),
                 status_code=503 if i in (5, 6, 7) else 404 if i in (8, 9) else 200)
          for i in range(100)),
        # at `since` exactly, written in another zone: counted
        record(300, at=since.astimezone(minus_five), model_version=1, latency_ms=50.0),
        # not counted: before the window (in a zone whose local time is after it), shadow, other model, version
        record(301, at=(since - dt.timedelta(minutes=1)).astimezone(plus_five), model_version=1, status_code=500),
        record(302, model_version=2, variant="shadow", served=False, status_code=500, latency_ms=10_000.0),
        record(303, model_name="returns", model_version=1, status_code=500),
        record(304, model_version=3, status_code=500),
    ]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(PredictionLogEntry), [r.row() for r in rows])

    stats = variant_stats(engine, "demand", since, [1, 2, 4])

    # Five requests give no p99 (it would only be their maximum); a hundred do.
    assert stats == {
        1: VariantStats(requests=5, errors=1, error_rate=0.2, mean_latency_ms=30.0, p99_latency_ms=None),
        2: VariantStats(requests=100, errors=3, error_rate=0.03, mean_latency_ms=50.5, p99_latency_ms=99.0),
        4: VariantStats(requests=0, errors=0, error_rate=0.0, mean_latency_ms=0.0, p99_latency_ms=None),
    }
    assert variant_stats(engine, "demand", since, []) == {}
