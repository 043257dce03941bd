"""A sales store with a trained, promoted model, built once per backend and copied for each API test.

The pipeline really runs (ingest, lgbm, gate, register, promote, store forecasts); version 2 is the same
configuration trained again, registered without promotion and with its forecasts stored, so tests can
flip, split and shadow between two real versions. SQLite copies are file copies; PostgreSQL copies are
`CREATE DATABASE ... TEMPLATE`, so each test gets its own store in a fraction of a second.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg

from salescast.config import Settings
from salescast.data.database import make_engine, migrate
from salescast.data.synthetic import SyntheticConfig, generate_sales, write_sales
from salescast.monitoring.alerts import LogAlertSink
from salescast.pipeline import PipelineConfig, run_pipeline
from salescast.registry.artifacts import LocalArtifactStore
from salescast.registry.versions import ModelRegistry
from salescast.serving.stored_forecasts import ensure_stored_forecasts
from tests.conftest import POSTGRES_ADMIN_URL

FAST = {"lgbm": {"n_estimators": 40}}
HORIZON = 14  # periods the template's model versions forecast


@dataclass(frozen=True)
class StoreTemplate:
    backend: str
    source: str  # a SQLite file path or a PostgreSQL template database name
    artifacts: Path


def build_template(backend: str, folder: Path) -> StoreTemplate:
    folder.mkdir(parents=True, exist_ok=True)
    if backend == "sqlite":
        source = str(folder / "template.db")
        url = f"sqlite:///{source}"
    else:
        source = f"salescast_tpl_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{source}"')
        url = _pg_url(source)
    fill_store(url, folder)
    return StoreTemplate(backend, source, folder / "artifacts")


def fill_store(url: str, folder: Path) -> None:
    """Migrate the empty database at `url` and run the pipeline into it (versions 1 and 2, artifacts
    under `folder / "artifacts"`)."""
    engine = make_engine(url)
    migrate(engine)
    sales = folder / "sales.csv"
    write_sales(generate_sales(SyntheticConfig(stores=2, products=8, days=420, seed=5)), sales)
    settings = Settings(home=folder / "home")
    registry = ModelRegistry(engine, LocalArtifactStore(folder / "artifacts"))
    config = PipelineConfig(models=["lgbm"], horizon=HORIZON, windows=2, model_params=FAST)
    run_pipeline(engine, registry, LogAlertSink(), config, settings, new_files=[sales])
    second = PipelineConfig(models=["lgbm"], horizon=HORIZON, windows=2, model_params=FAST, promote=False)
    version = run_pipeline(engine, registry, LogAlertSink(), second, settings).version
    assert version.status == "registered", version.reason
    ensure_stored_forecasts(engine, registry, version, settings)
    engine.dispose()


def drop_template(template: StoreTemplate) -> None:
    if template.backend == "postgresql":
        drop_database(template.source)


def copy_store(template: StoreTemplate, folder: Path) -> str:
    """A database URL of a fresh copy of the template."""
    if template.backend == "sqlite":
        target = folder / f"store-{uuid.uuid4().hex[:8]}.db"
        shutil.copyfile(template.source, target)
        return f"sqlite:///{target}"
    name = f"salescast_api_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template.source}"')
    return _pg_url(name)


def drop_database(name: str) -> None:
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_name(url: str) -> str:
    return url.rsplit("/", 1)[1]


def _pg_url(name: str) -> str:
    return POSTGRES_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://").rsplit("/", 1)[0] + f"/{name}"
