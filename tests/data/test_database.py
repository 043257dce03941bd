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
