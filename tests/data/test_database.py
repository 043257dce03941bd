"""The schema: migrations match the ORM models, on SQLite and on PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from salescast.data.database import open_database, schema_is_current
from salescast.data.schema import Base
from salescast.errors import ConfigurationError, StorageError


def test_migrations_create_exactly_the_modelled_schema(engine: Engine) -> None:
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)

    assert differences == []
    assert schema_is_current(engine)
    assert set(inspect(engine).get_table_names()) >= {"sales", "products", "stores", "categories", "ingestion_runs"}


def test_sales_are_unique_per_product_store_and_date(engine: Engine) -> None:
    primary_key = inspect(engine).get_pk_constraint("sales")["constrained_columns"]

    assert primary_key == ["product_id", "store_id", "date"]


def test_open_database_migrates_a_new_sqlite_file(tmp_path) -> None:
    engine = open_database(f"sqlite:///{tmp_path / 'nested' / 'new.db'}")

    assert schema_is_current(engine)


def test_unsupported_or_unreachable_databases_are_clear_errors() -> None:
    import pytest

    with pytest.raises(ConfigurationError, match="not supported"):
        open_database("mysql://localhost/x")
    with pytest.raises(StorageError, match="cannot reach the database"):
        open_database("postgresql+psycopg://nobody@127.0.0.1:9/none")


def test_the_latest_migrations_go_down_and_up_again_keeping_rows(engine: Engine) -> None:
    import datetime as dt

    from alembic import command
    from sqlalchemy import insert, select

    from salescast.data.database import alembic_config, migrate
    from salescast.data.schema import PredictionLogEntry

    def log_indexes() -> set[str]:
        return {index["name"] for index in inspect(engine).get_indexes("prediction_log") if index["name"]}

    row = {
        "at": dt.datetime(2026, 11, 25, 6, 0, tzinfo=dt.UTC),
        "request_id": "r1",
        "key_id": None,
        "model_name": "demand",
        "model_version": 1,
        "variant": "production",
        "served": True,
        "route": "top-products",
        "params": {"limit": 3},
        "status_code": 200,
        "latency_ms": 1.5,
    }
    with engine.begin() as conn:
        conn.execute(insert(PredictionLogEntry), [row])
    try:
        command.downgrade(alembic_config(engine), "0004")
        assert "ix_prediction_log_at" in log_indexes()
    finally:
        migrate(engine)

    assert schema_is_current(engine)
    assert log_indexes() == {"ix_prediction_log_model_variant_at"}
    with engine.connect() as conn:
        assert conn.scalars(select(PredictionLogEntry.request_id)).all() == ["r1"]


def test_ingestion_run_statuses_migrate_down_and_up(engine: Engine) -> None:
    import pytest
    from alembic import command
    from sqlalchemy import delete, insert, select
    from sqlalchemy.exc import IntegrityError

    from salescast.data.database import alembic_config, migrate
    from salescast.data.schema import IngestionRun, RejectedRow

    def statuses() -> list[str]:
        with engine.connect() as conn:
            return list(conn.scalars(select(IngestionRun.status).order_by(IngestionRun.id)))

    def add(status: str) -> None:
        with engine.begin() as conn:
            conn.execute(insert(IngestionRun).values(source="f.csv", status=status))

    for status in ("succeeded", "interrupted", "running"):
        add(status)
    with engine.begin() as conn:
        conn.execute(insert(RejectedRow).values(run_id=1, line=2, column="units", reason="units is not a number"))
    with pytest.raises(IntegrityError):
        add("bogus")
    try:
        command.downgrade(alembic_config(engine), "0006")
        # An earlier release knows neither state: its runs that never finished read as failed.
        assert statuses() == ["succeeded", "failed", "failed"]
        add("bogus")  # no constraint there
        with engine.begin() as conn:
            conn.execute(delete(IngestionRun).where(IngestionRun.status == "bogus"))
    finally:
        migrate(engine)

    assert schema_is_current(engine)
    add("interrupted")
    assert statuses() == ["succeeded", "failed", "failed", "interrupted"]
    with pytest.raises(IntegrityError):
        add("bogus")
    # SQLite rebuilds the table in each direction: the rows that refer to it must survive (not cascade away).
    with engine.connect() as conn:
        assert conn.execute(select(RejectedRow.run_id, RejectedRow.reason)).all() == [(1, "units is not a number")]
