"""`salescast backup` / `restore` on real stores: a trained, promoted installation (the serving tests' template:
the pipeline really ran) backed up and restored on SQLite and on PostgreSQL, to a folder and to S3 on moto.
A restore serves the same production version and forecasts; a bad backup or a busy target changes nothing."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from salescast.cli import app
from salescast.config import Settings, get_settings
from salescast.data.database import make_engine
from salescast.data.table_dump import reflect_tables
from salescast.errors import ArtifactIntegrityError, ConflictError, DataValidationError, NotFoundError
from salescast.models.ensemble import EnsembleModel
from salescast.registry.artifacts import LocalArtifactStore, artifact_store
from salescast.registry.backup import backup
from salescast.registry.backup_location import MANIFEST, FolderBackup, backup_location
from salescast.registry.restore import restore
from salescast.registry.versions import PRODUCTION, ModelRegistry
from salescast.serving import queries
from salescast.serving.auth import KeyStore
from tests.conftest import POSTGRES_ADMIN_URL
from tests.registry.conftest import make_versioned_bucket
from tests.serving.served_store import StoreTemplate, build_template, copy_store, drop_database, drop_template

VERSIONS_TABLE = "model_versions"


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def template(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreTemplate]:
    built = build_template(request.param, tmp_path_factory.mktemp(f"backup-{request.param}"))
    yield built
    drop_template(built)


class Installation:
    """A database and an artifact store, dropped when the test ends."""

    def __init__(self, url: str, artifacts: Path) -> None:
        self.url, self.artifacts = url, artifacts
        self.engine = make_engine(url)
        self.store = LocalArtifactStore(artifacts)
        self.registry = ModelRegistry(self.engine, self.store)


@pytest.fixture
def installations(template: StoreTemplate, tmp_path: Path) -> Iterator[Any]:
    made: list[Installation] = []

    def source() -> Installation:
        installation = Installation(copy_store(template, tmp_path), template.artifacts)
        KeyStore(installation.engine, cache_seconds=0).create("dashboard", ["read"])  # keys travel too
        made.append(installation)
        return installation

    def empty() -> Installation:
        if template.backend == "sqlite":
            url = f"sqlite:///{tmp_path / f'restored-{uuid.uuid4().hex[:6]}.db'}"
        else:
            name = f"salescast_restore_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{name}"')
            url = POSTGRES_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://").rsplit("/", 1)[0] + f"/{name}"
        installation = Installation(url, tmp_path / f"artifacts-{uuid.uuid4().hex[:6]}")
        made.append(installation)
        return installation

    yield source, empty
    for installation in made:
        installation.engine.dispose()
        if installation.url.startswith("postgresql"):
            drop_database(installation.url.rsplit("/", 1)[1])


def table_rows(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table in primary-key order, artifact locations aside (a restore rewrites them)."""
    found = {}
    with engine.connect() as conn:
        for table in reflect_tables(conn):
            order = list(table.primary_key.columns) or list(table.columns)
            rows = [dict(row._mapping) for row in conn.execute(select(table).order_by(*order))]
            if table.name == VERSIONS_TABLE:
                for row in rows:
                    row.pop("artifact_uri"), row.pop("artifact_version_id")
            found[table.name] = rows
    return found


def test_a_restore_serves_the_same_production_version_and_forecasts(installations: Any, tmp_path: Path) -> None:
    source_of, empty = installations
    source, target = source_of(), empty()
    out = FolderBackup(tmp_path / "backup")

    taken = backup(source.engine, source.store, out)
    manifest = json.loads((tmp_path / "backup" / MANIFEST).read_text())
    before = table_rows(source.engine)
    assert taken.tables == {name: len(rows) for name, rows in before.items()}
    assert taken.tables["sales"] > 1000 and taken.tables["forecasts"] > 0 and taken.tables["api_keys"] == 1
    assert taken.production == {"demand": 1} and taken.artifacts == 2
    assert sorted(a["sha256"] for a in manifest["artifacts"]) == sorted(
        v.artifact_sha256 for v in source.registry.versions()
    )

    restored = restore(out, target.engine, target.store)

    assert restored.tables == taken.tables
    assert table_rows(target.engine) == before
    production = target.registry.alias("demand", PRODUCTION)
    assert production.version == 1 and production.artifact_uri.startswith(target.artifacts.as_uri())
    model = EnsembleModel.load(target.registry.fetch(production, tmp_path / "model"))  # checksum checked
    assert model is not None
    served_before = queries.top_products(source.engine, production.id, "month", None, None, 5, "units")
    assert queries.top_products(target.engine, production.id, "month", None, None, 5, "units") == served_before
    # Ids continue after the restored ones (PostgreSQL's sequences were moved past them).
    assert KeyStore(target.engine, cache_seconds=0).create("after-restore", ["read"]).id == 2


def test_a_busy_target_is_refused_unless_forced(installations: Any, tmp_path: Path) -> None:
    source_of, empty = installations
    source, target = source_of(), empty()
    out = FolderBackup(tmp_path / "backup")
    backup(source.engine, source.store, out)
    restore(out, target.engine, target.store)
    KeyStore(target.engine, cache_seconds=0).create("only-in-target", ["read"])

    with pytest.raises(ConflictError, match=r"the target database is not empty: .*add --force"):
        restore(out, target.engine, target.store)
    assert len(table_rows(target.engine)["api_keys"]) == 2  # nothing replaced

    restore(out, target.engine, target.store, force=True)
    assert table_rows(target.engine) == table_rows(source.engine)


def test_a_corrupt_backup_file_is_refused_before_anything_is_written(installations: Any, tmp_path: Path) -> None:
    source_of, empty = installations
    source, target = source_of(), empty()
    backup(source.engine, source.store, FolderBackup(tmp_path / "backup"))
    forecasts = tmp_path / "backup" / "tables" / "forecasts.jsonl.gz"
    lines = gzip.decompress(forecasts.read_bytes()).replace(b'"p50": ', b'"p50": 1', 1)
    forecasts.write_bytes(gzip.compress(lines))

    with pytest.raises(ArtifactIntegrityError, match=r"tables/forecasts\.jsonl\.gz does not match the manifest"):
        restore(FolderBackup(tmp_path / "backup"), target.engine, target.store)
    assert not target.artifacts.exists()
    assert reflect_tables(target.engine) == []  # not even migrated


def test_a_load_that_fails_leaves_neither_rows_nor_artifacts(installations: Any, tmp_path: Path) -> None:
    source_of, empty = installations
    source, target = source_of(), empty()
    backup(source.engine, source.store, FolderBackup(tmp_path / "backup"))
    manifest_path = tmp_path / "backup" / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    sales = next(t for t in manifest["tables"] if t["name"] == "sales")
    sales["rows"] += 1  # the files match their checksums; the count does not match what they hold
    manifest_path.write_text(json.dumps(manifest))

    with pytest.raises(DataValidationError, match=r"table sales: \d+ rows read from the backup, the manifest says"):
        restore(FolderBackup(tmp_path / "backup"), target.engine, target.store)
    assert all(rows == [] for rows in table_rows(target.engine).values())
    assert [p for p in target.artifacts.rglob("*") if p.is_file()] == []


def test_backing_up_into_a_folder_that_holds_files_is_refused(installations: Any, tmp_path: Path) -> None:
    source = installations[0]()
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / "notes.txt").write_text("keep me")
    with pytest.raises(ConflictError, match="already holds files"):
        backup(source.engine, source.store, FolderBackup(tmp_path / "backup"))
    assert [p.name for p in (tmp_path / "backup").iterdir()] == ["notes.txt"]


def test_a_folder_without_a_manifest_is_not_a_backup(installations: Any, tmp_path: Path) -> None:
    target = installations[1]()
    (tmp_path / "half").mkdir()
    with pytest.raises(NotFoundError, match=r"manifest\.json is missing from the backup"):
        restore(FolderBackup(tmp_path / "half"), target.engine, target.store)


# S3 and the CLI once, on SQLite: the service below them is the same on both backends (tests above).
@pytest.mark.parametrize("template", ["sqlite"], indirect=True)
def test_backup_to_s3_and_restore_into_an_s3_artifact_store(
    installations: Any, aws_settings: Settings, s3: Any, tmp_path: Path
) -> None:
    source_of, empty = installations
    source, target = source_of(), empty()
    backups, models = make_versioned_bucket(s3), make_versioned_bucket(s3)
    location = backup_location(f"s3://{backups}/nightly/2026-12-06", aws_settings)

    backup(source.engine, source.store, location)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=backups)["Contents"]]
    tables = len(reflect_tables(source.engine))  # every table the migrations made, the ones added later too
    assert "nightly/2026-12-06/manifest.json" in keys and len(keys) == 1 + tables + 2  # manifest, tables, artifacts
    assert all(s3.head_object(Bucket=backups, Key=key)["ServerSideEncryption"] == "AES256" for key in keys)

    store = artifact_store(f"s3://{models}/salescast", aws_settings)
    restore(location, target.engine, store)
    production = ModelRegistry(target.engine, store).alias("demand", PRODUCTION)
    assert (production.artifact_uri or "").startswith(f"s3://{models}/salescast/models/demand/v1-")
    assert production.artifact_version_id  # the versioned bucket's version, recorded for the exact object
    ModelRegistry(target.engine, store).fetch(production, tmp_path / "model")
    assert table_rows(target.engine) == table_rows(source.engine)


@pytest.mark.parametrize("template", ["sqlite"], indirect=True)
def test_the_cli_backs_up_restores_and_refuses_a_second_restore_with_one_line(
    installations: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source_of, empty = installations
    source, target = source_of(), empty()

    def use(installation: Installation) -> None:
        monkeypatch.setenv("SALESCAST_HOME", str(tmp_path / "home"))
        monkeypatch.setenv("SALESCAST_DATABASE_URL", installation.url)
        monkeypatch.setenv("SALESCAST_ARTIFACT_URI", installation.artifacts.as_uri())
        get_settings.cache_clear()

    try:
        use(source)
        made = CliRunner().invoke(app, ["backup", "--out", str(tmp_path / "nightly")], terminal_width=200)
        assert made.exit_code == 0, made.output
        assert "production" in made.output and "demand v1" in made.output
        use(target)
        loaded = CliRunner().invoke(app, ["restore", "--from", str(tmp_path / "nightly")], terminal_width=200)
        assert loaded.exit_code == 0, loaded.output
    finally:
        get_settings.cache_clear()
    assert table_rows(target.engine) == table_rows(source.engine)

    # As a user runs it: a refused restore is one line and the conflict exit code, never a traceback.
    again = subprocess.run(
        [sys.executable, "-m", "salescast.cli", "restore", "--from", str(tmp_path / "nightly")],
        env={**os.environ, "COLUMNS": "200"},  # monkeypatch set the target's variables
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == ConflictError.exit_code
    assert again.stderr.strip().startswith("error: the target database is not empty")
    assert len(again.stderr.strip().splitlines()) == 1 and "Traceback" not in again.stderr


def test_a_forced_restore_that_fails_keeps_the_targets_rows_and_artifacts(installations: Any, tmp_path: Path) -> None:
    source_of, empty = installations
    source, target = source_of(), empty()
    backup(source.engine, source.store, FolderBackup(tmp_path / "backup"))
    restore(FolderBackup(tmp_path / "backup"), target.engine, target.store)
    before, files = table_rows(target.engine), sorted(p for p in target.artifacts.rglob("*") if p.is_file())
    shutil.copytree(tmp_path / "backup", tmp_path / "bad")
    manifest = json.loads((tmp_path / "bad" / MANIFEST).read_text())
    manifest["tables"][-1]["rows"] += 1
    (tmp_path / "bad" / MANIFEST).write_text(json.dumps(manifest))

    with pytest.raises(DataValidationError, match="rows read from the backup"):
        restore(FolderBackup(tmp_path / "bad"), target.engine, target.store, force=True)
    assert table_rows(target.engine) == before  # the deletes rolled back with the inserts
    assert sorted(p for p in target.artifacts.rglob("*") if p.is_file()) == files
    target.registry.fetch(target.registry.alias("demand", PRODUCTION), tmp_path / "model")  # still whole
