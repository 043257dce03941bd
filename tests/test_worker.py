"""The worker: job locks across processes and databases, daily ingestion of a drop (folder and S3), weekly
retraining under the lock, the cron schedule, and `salescast worker --once` as a user runs it.

The training pipeline itself is tested in test_pipeline.py; here a light stand-in counts its calls."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text

from salescast.config import Settings
from salescast.data.database import make_engine, open_database
from salescast.data.ingest import ingest_file
from salescast.data.presets import resolve_spec
from salescast.data.schema import IngestionRun, SalesFact
from salescast.data.synthetic import SyntheticConfig, generate_sales, write_sales
from salescast.errors import ConfigurationError, DataValidationError
from salescast.registry.artifacts import LocalArtifactStore, s3_client
from salescast.registry.versions import ModelRegistry
from salescast.worker import (
    TRAINING_LOCK,
    LockBusyError,
    PostgresJobLock,
    advisory_key,
    build_scheduler,
    cron_trigger,
    ingest_drop,
    job_lock,
    next_run_times,
    retrain,
    run_worker,
)
from salescast.worker.scheduler import run_scheduled_job
from tests.registry.conftest import running_moto_server

MONDAY = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def sales_csv(path: Path, product: str, days: int = 10) -> Path:
    """`days` days of sales of one product in salescast's long format."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = "".join(f"{dt.date(2024, 1, 1) + dt.timedelta(days=i)},{product},{i + 1}\n" for i in range(days))
    path.write_text("date,product,units\n" + rows)
    return path


def worker_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"home": tmp_path / "home", "drop_uri": str(tmp_path / "drop"), **overrides}
    return Settings(_env_file=None, **values)


class StubPipeline:
    """Stands in for run_pipeline: records each call, then fails or returns a minimal result."""

    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.error = error

    def __call__(self, engine, registry, alerts, config, settings, new_files=(), progress=None) -> Any:
        self.calls.append(
            {"engine": engine, "registry": registry, "alerts": alerts, "config": config, "settings": settings}
        )
        if self.error is not None:
            raise self.error
        return SimpleNamespace(version=SimpleNamespace(version=len(self.calls), status="registered"), promoted=True)


# -- locks -------------------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def lock_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """A worker's settings on each backend: lock files under home on SQLite, advisory locks on PostgreSQL."""
    if request.param == "sqlite":
        return worker_settings(tmp_path)
    return worker_settings(tmp_path, database_url=request.getfixturevalue("postgres_database"))


@pytest.fixture
def lock_engine(lock_settings: Settings) -> Iterator[Engine]:
    # Not migrated: the stand-in pipeline never queries it, and the lock tests stay light.
    engine = make_engine(lock_settings.resolved_database_url)
    yield engine
    engine.dispose()


HOLD_LOCK = """
import sys
from salescast.config import Settings
from salescast.worker import job_lock
with job_lock(Settings(_env_file=None)).acquire(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.readline()
"""


@contextlib.contextmanager
def lock_held_by_another_process(settings: Settings, name: str) -> Iterator[None]:
    """Another worker process holds lock `name` for the block."""
    env = {**os.environ, "SALESCAST_HOME": str(settings.home), "SALESCAST_DATABASE_URL": settings.database_url}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, name], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    assert holder.stdin is not None and holder.stdout is not None
    try:
        assert holder.stdout.readline().strip() == "held", "the other process could not take the lock"
        yield
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
        holder.stdout.close()


def test_a_second_worker_does_not_train_while_another_holds_the_lock(
    lock_settings: Settings, lock_engine: Engine
) -> None:
    pipeline = StubPipeline()

    with lock_held_by_another_process(lock_settings, TRAINING_LOCK):
        skipped = retrain(lock_settings, lock_engine, pipeline=pipeline)
        assert skipped is None
        assert pipeline.calls == []
    trained = retrain(lock_settings, lock_engine, pipeline=pipeline)

    assert trained is not None and trained.version.version == 1
    assert len(pipeline.calls) == 1


def test_the_lock_is_released_when_the_pipeline_raises(lock_settings: Settings, lock_engine: Engine) -> None:
    worker_locks = job_lock(lock_settings)  # kept alive, as a running worker keeps its own

    with pytest.raises(RuntimeError, match="training blew up"):
        retrain(lock_settings, lock_engine, locks=worker_locks, pipeline=StubPipeline(RuntimeError("training blew up")))

    # Another worker (its own connection or lock file) can take it at once, and training runs again.
    with job_lock(lock_settings).acquire(TRAINING_LOCK):
        pass
    pipeline = StubPipeline()
    assert retrain(lock_settings, lock_engine, locks=worker_locks, pipeline=pipeline) is not None
    assert len(pipeline.calls) == 1


def test_a_lock_timeout_waits_for_the_holder_to_release(lock_settings: Settings) -> None:
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with job_lock(lock_settings).acquire(TRAINING_LOCK):
            taken.set()
            release.wait(timeout=30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert taken.wait(timeout=30)
        with pytest.raises(LockBusyError), job_lock(lock_settings).acquire(TRAINING_LOCK, timeout=0.3):
            pass
        threading.Timer(0.5, release.set).start()
        started = time.monotonic()
        with job_lock(lock_settings).acquire(TRAINING_LOCK, timeout=30):
            waited = time.monotonic() - started
    finally:
        release.set()
        holder.join(timeout=30)

    assert 0.3 <= waited < 30


@pytest.mark.postgres
def test_the_postgres_lock_is_an_advisory_lock_held_on_the_server(postgres_database: str) -> None:
    observer = make_engine(postgres_database)
    query = text(
        "SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks "
        "WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )

    def held_keys() -> set[int]:
        with observer.connect() as conn:
            return {int(key) for (key,) in conn.execute(query)}

    try:
        with PostgresJobLock(postgres_database).acquire(TRAINING_LOCK):
            during = held_keys()
        after = held_keys()
    finally:
        observer.dispose()

    # pg_locks shows the key as two unsigned 32-bit halves.
    assert during == {advisory_key(TRAINING_LOCK) % 2**64}
    assert after == set()


def test_lock_keys_never_change_between_releases() -> None:
    # Workers of two releases run side by side during a deploy; a new key would let both train at once.
    assert advisory_key("training") == 3806856901845750734
    assert advisory_key("ingest") == 4416185553447212012


def test_bad_lock_names_and_database_schemes_are_configuration_errors(tmp_path: Path) -> None:
    with (
        pytest.raises(ConfigurationError, match="invalid lock name"),
        job_lock(worker_settings(tmp_path)).acquire("../training"),
    ):
        pass
    with pytest.raises(ConfigurationError, match="mysql"):
        job_lock(worker_settings(tmp_path, database_url="mysql://db/sales"))


# -- retraining ----------------------------------------------------------------------------------------


def test_retrain_runs_the_pipeline_configured_from_the_settings(tmp_path: Path) -> None:
    settings = worker_settings(
        tmp_path,
        model_name="weekly",
        pipeline_models="ets,lgbm",
        pipeline_horizon=14,
        pipeline_windows=3,
        holiday_country="de",
    )
    engine = make_engine(settings.resolved_database_url)
    pipeline = StubPipeline()

    retrain(settings, engine, pipeline=pipeline)

    call = pipeline.calls[0]
    config = call["config"]
    assert (config.name, config.models, config.horizon, config.windows) == ("weekly", ["ets", "lgbm"], 14, 3)
    # The holiday country reaches the families through the settings, once the pipeline knows them (auto).
    assert config.model_params == {} and call["settings"].holiday_country == "DE"
    assert config.actor == "worker" and config.promote
    assert call["engine"] is engine
    registry = call["registry"]
    assert isinstance(registry, ModelRegistry) and isinstance(registry.store, LocalArtifactStore)
    assert registry.store.root == (settings.home / "artifacts").resolve()
    engine.dispose()


def test_retrain_runs_run_pipeline_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = StubPipeline()
    monkeypatch.setattr("salescast.pipeline.run_pipeline", pipeline)
    settings = worker_settings(tmp_path)

    assert retrain(settings) is not None
    assert len(pipeline.calls) == 1


def test_unknown_model_families_fail_before_anything_runs(tmp_path: Path) -> None:
    pipeline = StubPipeline()

    with pytest.raises(ConfigurationError, match="nope"):
        retrain(worker_settings(tmp_path, pipeline_models="ets,nope"), pipeline=pipeline)
    assert pipeline.calls == []


# -- daily ingestion -------------------------------------------------------------------------------------


def loaded(engine: Engine) -> tuple[int, list[tuple[str, str]]]:
    """Sales rows in the store and (file name, status) of every ingestion run."""
    with engine.connect() as conn:
        facts = conn.execute(select(func.count()).select_from(SalesFact)).scalar_one()
        runs = conn.execute(select(IngestionRun.source, IngestionRun.status).order_by(IngestionRun.id)).all()
    return facts, [(Path(source).name, status) for source, status in runs]


def test_ingest_drop_loads_each_new_file_once_and_reports_refused_ones(engine: Engine, tmp_path: Path) -> None:
    settings = worker_settings(tmp_path)
    drop = tmp_path / "drop"
    sales_csv(drop / "2024-01-02.csv", "B")
    sales_csv(drop / "2024-01-01.csv", "A")
    (drop / "README.md").write_text("files land here every night\n")

    first = ingest_drop(settings, engine)
    second = ingest_drop(settings, engine)
    (drop / "copy-of-a.csv").write_bytes((drop / "2024-01-01.csv").read_bytes())
    sales_csv(drop / "2024-01-03.csv", "C")
    (drop / "2024-01-02-broken.csv").write_text("this is not a sales file\n")
    third = ingest_drop(settings, engine)

    assert [(Path(r.source).name, r.status, r.facts_inserted) for r in first] == [
        ("2024-01-01.csv", "succeeded", 10),
        ("2024-01-02.csv", "succeeded", 10),
    ]
    assert second == []
    # The copy's content already loaded under another name; the broken file does not stop the next one.
    assert [(Path(r.source).name, r.status) for r in third] == [
        ("2024-01-02-broken.csv", "refused"),
        ("2024-01-03.csv", "succeeded"),
    ]
    refused = third[0]
    assert "missing column" in refused.message and refused.run_id is not None and refused.file_sha256
    facts, runs = loaded(engine)
    assert facts == 30
    assert runs == [
        ("2024-01-01.csv", "succeeded"),
        ("2024-01-02.csv", "succeeded"),
        ("2024-01-02-broken.csv", "refused"),
        ("2024-01-03.csv", "succeeded"),
    ]
    with engine.connect() as conn:
        run = conn.execute(select(IngestionRun).where(IngestionRun.id == refused.run_id)).one()
    assert (run.status, run.source) == ("refused", refused.source)  # its rejects can be looked up


def test_ingest_drop_skips_while_another_worker_ingests(tmp_path: Path) -> None:
    settings = worker_settings(tmp_path)
    sales_csv(tmp_path / "drop" / "a.csv", "A")
    engine = open_database(settings.resolved_database_url)

    with job_lock(settings).acquire("ingest"):
        busy = ingest_drop(settings, engine)
    free = ingest_drop(settings, engine)

    assert busy == []
    assert [r.status for r in free] == ["succeeded"]
    engine.dispose()


def test_a_missing_drop_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="drop_uri is not set"):
        ingest_drop(worker_settings(tmp_path, drop_uri=""))
    with pytest.raises(ConfigurationError, match="does not exist"):
        ingest_drop(worker_settings(tmp_path))


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with running_moto_server() as endpoint:
        yield endpoint


def test_ingest_drop_reads_an_s3_prefix(s3_endpoint: str, tmp_path: Path) -> None:
    bucket = f"drops-{uuid.uuid4().hex[:8]}"
    settings = worker_settings(tmp_path, drop_uri=f"s3://{bucket}/daily", s3_endpoint_url=s3_endpoint)
    s3 = s3_client(settings)
    s3.create_bucket(Bucket=bucket)
    for key, product in [
        ("daily/2024-01-02.csv", "B"),
        ("daily/store-7/2024-01-01.csv", "A"),
        ("daily-old/2023-12-31.csv", "X"),  # beside the prefix, not under it
        ("other/2024-01-01.csv", "Y"),
    ]:
        s3.put_object(Bucket=bucket, Key=key, Body=sales_csv(tmp_path / "upload.csv", product).read_bytes())
    engine = open_database(f"sqlite:///{tmp_path / 's3.db'}")

    first = ingest_drop(settings, engine)
    second = ingest_drop(settings, engine)

    expected = [f"s3://{bucket}/daily/2024-01-02.csv", f"s3://{bucket}/daily/store-7/2024-01-01.csv"]
    assert [(r.source, r.status, r.facts_inserted) for r in first] == [(uri, "succeeded", 10) for uri in expected]
    assert second == []
    with engine.connect() as conn:
        assert list(conn.execute(select(IngestionRun.source).order_by(IngestionRun.id)).scalars()) == expected
    engine.dispose()


# -- the schedule ----------------------------------------------------------------------------------------


def fire_days(expr: str) -> set[str]:
    """The weekdays on which `expr` fires during the week from Monday 2024-01-01."""
    trigger, days, at = cron_trigger(expr), set(), MONDAY - dt.timedelta(microseconds=1)
    while (at := trigger.get_next_fire_time(None, at + dt.timedelta(microseconds=1))) < MONDAY + dt.timedelta(7):
        days.add(f"{at:%a}")
    return days


@pytest.mark.parametrize(
    ("expr", "days"),
    [
        ("0 3 * * 1", {"Mon"}),
        ("0 3 * * 0", {"Sun"}),
        ("0 3 * * 7", {"Sun"}),
        ("0 3 * * 1-5", {"Mon", "Tue", "Wed", "Thu", "Fri"}),
        ("0 3 * * */2", {"Sun", "Tue", "Thu", "Sat"}),
        ("0 3 * * sat,SUN", {"Sat", "Sun"}),
        ("@weekly", {"Sun"}),
    ],
)
def test_weekdays_are_numbered_as_cron_and_airflow_number_them(expr: str, days: set[str]) -> None:
    assert fire_days(expr) == days


def test_the_worker_schedules_its_jobs_on_the_configured_crons(tmp_path: Path) -> None:
    settings = worker_settings(tmp_path, ingest_cron="15 6 * * *", retrain_cron="30 4 * * 0", monitor_cron="5 * * * *")
    scheduler = build_scheduler(settings)
    scheduler.start(paused=True)  # computes the next run times without running anything
    try:
        jobs = {job.id: job for job in scheduler.get_jobs()}
        times = next_run_times(scheduler)
    finally:
        scheduler.shutdown(wait=False)

    assert set(jobs) == set(times) == {"ingest", "retrain", "monitor"}
    assert jobs["monitor"].trigger.get_next_fire_time(None, MONDAY) == MONDAY.replace(minute=5)
    assert jobs["ingest"].trigger.get_next_fire_time(None, MONDAY) == MONDAY.replace(hour=6, minute=15)
    assert jobs["retrain"].trigger.get_next_fire_time(None, MONDAY) == dt.datetime(2024, 1, 7, 4, 30, tzinfo=dt.UTC)
    assert all(job.max_instances == 1 and job.coalesce for job in jobs.values())
    now = dt.datetime.now(dt.UTC)
    assert now < times["ingest"] <= now + dt.timedelta(days=1)
    assert (times["ingest"].hour, times["ingest"].minute) == (6, 15)
    assert now < times["retrain"] <= now + dt.timedelta(days=7)
    assert (times["retrain"].weekday(), times["retrain"].hour, times["retrain"].minute) == (6, 4, 30)


@pytest.mark.parametrize("setting", ["ingest_cron", "retrain_cron", "monitor_cron"])
@pytest.mark.parametrize("expr", ["61 * * * *", "0 3 * *", "every monday", "0 3 * * 8", "0 3 1 * 1"])
def test_a_bad_cron_expression_is_a_configuration_error_naming_it(tmp_path: Path, setting: str, expr: str) -> None:
    settings = worker_settings(tmp_path, **{setting: expr})

    with pytest.raises(ConfigurationError) as error:
        build_scheduler(settings)
    assert setting in str(error.value) and repr(expr) in str(error.value)


def test_run_worker_runs_the_schedule_until_stopped(tmp_path: Path) -> None:
    stop = threading.Event()
    started: queue.Queue[dict[str, dt.datetime]] = queue.Queue()
    worker = threading.Thread(
        target=run_worker, args=(worker_settings(tmp_path), stop), kwargs={"on_start": started.put}
    )

    worker.start()
    try:
        times = started.get(timeout=30)
        assert worker.is_alive()
    finally:
        stop.set()
        worker.join(timeout=30)

    assert not worker.is_alive()
    assert set(times) == {"ingest", "retrain", "monitor"}


def test_a_failing_scheduled_run_is_logged_and_alerted_and_the_worker_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)

    run_scheduled_job("ingest", worker_settings(tmp_path, drop_uri=""))  # does not raise

    failed = [r for r in caplog.records if r.getMessage().startswith("worker.job.failed job=ingest")]
    alerts = [r for r in caplog.records if r.name == "salescast.alerts"]
    assert len(failed) == 1 and failed[0].exc_info is not None
    assert len(alerts) == 1 and alerts[0].levelno == logging.CRITICAL
    assert '"event": "worker.job_failed"' in alerts[0].getMessage()


# -- the CLI ---------------------------------------------------------------------------------------------


def salescast_worker(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SALESCAST_HOME": str(tmp_path / "home"),
        "SALESCAST_DROP_URI": str(tmp_path / "drop"),
        "COLUMNS": "200",
    }
    env.pop("SALESCAST_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "salescast.cli", "worker", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_worker_once_ingest_loads_the_drop_and_fails_when_a_file_is_refused(tmp_path: Path) -> None:
    sales_csv(tmp_path / "drop" / "a.csv", "A")
    sales_csv(tmp_path / "drop" / "b.csv", "B")

    ok = salescast_worker(tmp_path, "--once", "ingest")
    (tmp_path / "drop" / "c.csv").write_text("not,a,sales,file\n")
    refused = salescast_worker(tmp_path, "--once", "ingest")

    assert ok.returncode == 0, ok.stderr
    assert "a.csv" in ok.stdout and "b.csv" in ok.stdout and "succeeded" in ok.stdout
    engine = make_engine(f"sqlite:///{tmp_path / 'home' / 'salescast.db'}")
    facts, runs = loaded(engine)
    engine.dispose()
    assert runs == [("a.csv", "succeeded"), ("b.csv", "succeeded"), ("c.csv", "refused")]
    assert facts == 20
    assert refused.returncode == DataValidationError.exit_code
    assert "1 of 1 file(s) not loaded: c.csv" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_the_scheduled_monitor_run_checks_freshness_and_alerts_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Sales from 2023 are stale: the first run alerts per store, the second sees the same episodes."""
    caplog.set_level(logging.INFO)
    settings = worker_settings(tmp_path)
    path = tmp_path / "sales.csv"
    write_sales(generate_sales(SyntheticConfig(stores=2, products=3, days=30, seed=1)), path)
    engine = open_database(settings.resolved_database_url)
    assert ingest_file(engine, path, resolve_spec(None), settings).status == "succeeded"
    engine.dispose()

    run_scheduled_job("monitor", settings)
    run_scheduled_job("monitor", settings)

    finished = [r.getMessage() for r in caplog.records if r.getMessage().startswith("worker.job.finished job=monitor")]
    alerts = [r.getMessage() for r in caplog.records if r.name == "salescast.alerts"]
    assert len(finished) == 2 and all("breached=2" in line for line in finished)
    assert len(alerts) == 2 and all('"event": "data.stale"' in alert for alert in alerts)
