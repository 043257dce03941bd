"""Restore of a backup written by `salescast.registry.backup`, all or nothing.

A restore verifies every file against the manifest before it writes anything, refuses a target that holds
rows (or an artifact under a key it would write) unless forced, stores the artifacts in the target's
artifact store (re-packed deterministically, so their sha256 is the recorded one) and loads the tables in
one transaction; when that fails, the artifacts it stored are removed again. The restored installation
serves the same production version and the same stored forecasts.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, delete

from salescast.config import Settings
from salescast.data.database import alembic_config, make_engine, migrate
from salescast.data.table_dump import count_rows, load_table, read_rows, reflect_tables, reset_sequences
from salescast.errors import ArtifactIntegrityError, ConfigurationError, ConflictError, DataValidationError
from salescast.registry.artifacts import ArtifactRef, ArtifactStore, LocalArtifactStore, artifact_store
from salescast.registry.backup import (
    FORMAT,
    VERSIONS_TABLE,
    BackupSummary,
    production_versions,
    revision,
    sha256_of,
    summary,
)
from salescast.registry.backup_location import MANIFEST, BackupLocation, backup_location


def _head(engine: Engine) -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def _read_manifest(source: BackupLocation, staging: Path) -> dict[str, Any]:
    path = staging / MANIFEST
    source.read(MANIFEST, path)
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except ValueError:
        raise DataValidationError(f"{source.uri}/{MANIFEST} is not JSON: not a salescast backup") from None
    if manifest.get("format") != FORMAT:
        raise DataValidationError(f"{source.uri} is not a {FORMAT} backup (format {manifest.get('format')!r})")
    return manifest


def _fetch_and_verify(source: BackupLocation, manifest: dict[str, Any], staging: Path) -> None:
    """Every file the manifest names, fetched and checked before anything is written anywhere."""
    for entry in [*manifest["tables"], *manifest["artifacts"]]:
        path = staging / entry["file"]
        if not path.resolve().is_relative_to(staging.resolve()):
            raise DataValidationError(f"the manifest names {entry['file']!r}, outside the backup")
        source.read(entry["file"], path)
        actual = sha256_of(path)
        if actual != entry["sha256"] or path.stat().st_size != entry["bytes"]:
            raise ArtifactIntegrityError(
                f"{source.uri}/{entry['file']} does not match the manifest (sha256 {actual}, expected "
                f"{entry['sha256']}); nothing was restored"
            )


def _prepare_schema(engine: Engine, wanted: str | None) -> None:
    """Bring the target's schema to the backup's revision (a new database) or check it is there already."""
    with engine.connect() as conn:
        current = revision(conn)
    if current is None:
        migrate(engine, wanted or "head")
    elif current != wanted:
        raise ConflictError(
            f"the target database is at schema revision {current}, the backup at {wanted}: restore into a new "
            "database, or with the salescast version that wrote the backup"
        )


def _check_empty(conn: Connection, tables: list[Table]) -> None:
    filled = [f"{t.name} ({count_rows(conn, t)} rows)" for t in tables if count_rows(conn, t)]
    if filled:
        raise ConflictError(
            f"the target database is not empty: {', '.join(filled[:4])}{' ...' if len(filled) > 4 else ''}; "
            "restore into an empty one, or add --force to replace its contents"
        )


def _artifact_key(entry: dict[str, Any]) -> str:
    return f"models/{entry['model']}/v{entry['version']}-{entry['sha256'][:12]}.tar"


def restore(source: BackupLocation, engine: Engine, store: ArtifactStore, force: bool = False) -> BackupSummary:
    """Restore the backup at `source` into the database behind `engine` and the artifact store `store`; all
    or nothing (see the module docstring).

    Args:
        source: the backup's folder or S3 prefix.
        engine: the target database: new (it is migrated to the backup's schema revision), or at that
            revision and empty unless `force`.
        store: the target artifact store; the versions' artifact URIs are rewritten to point into it.
        force: replace the rows of a database that holds some, and artifacts under the keys the backup's use.
    """
    with tempfile.TemporaryDirectory(prefix="salescast-restore-") as scratch:
        staging = Path(scratch)
        manifest = _read_manifest(source, staging)
        _fetch_and_verify(source, manifest, staging)
        _prepare_schema(engine, manifest["schema_revision"])
        tables = {table.name: table for table in reflect_tables(engine)}
        if unknown := [t["name"] for t in manifest["tables"] if t["name"] not in tables]:
            raise ConflictError(f"the target database has no table {', '.join(unknown)}: not the backup's schema")
        if not force:
            with engine.connect() as conn:
                _check_empty(conn, list(tables.values()))
            taken = [key for key in map(_artifact_key, manifest["artifacts"]) if store.exists(key)]
            if taken:
                raise ConflictError(f"the artifact store already holds {taken[0]}; add --force to overwrite")
        refs, written = _store_artifacts(manifest["artifacts"], staging, store)
        try:
            _load_tables(engine, manifest, tables, staging, refs, force)
        except BaseException:
            for key in written:
                store.delete(key)
            raise
        if manifest["schema_revision"] != _head(engine):
            migrate(engine)  # a backup of an older schema, loaded at its revision, is brought up to date
    return summary(source.uri, manifest["tables"], manifest["artifacts"], manifest["production"], manifest)


def _store_artifacts(
    entries: list[dict[str, Any]], staging: Path, store: ArtifactStore
) -> tuple[dict[int, ArtifactRef], list[str]]:
    """Each artifact unpacked (safely, its checksum checked once more) and put into `store`; returns the new
    ref per version id and the keys this restore created (a key that existed already, overwritten under
    --force with the same content, is never removed again: the target's old rows may point at it)."""
    backup_store = LocalArtifactStore(staging / "artifacts")
    refs: dict[int, ArtifactRef] = {}
    written: list[str] = []
    try:
        for entry in entries:
            ref = ArtifactRef(backup_store.uri_for(f"{entry['version_id']}.tar"), entry["sha256"], entry["bytes"])
            key = _artifact_key(entry)
            existed = store.exists(key)
            with tempfile.TemporaryDirectory(dir=staging) as unpacked:
                folder = backup_store.get(ref, Path(unpacked) / "model")
                stored = store.put(folder, key)
            if not existed:
                written.append(key)
            if stored.sha256 != entry["sha256"]:
                raise ArtifactIntegrityError(
                    f"{entry['model']} v{entry['version']}: stored as sha256 {stored.sha256}, "
                    f"expected {entry['sha256']}"
                )
            refs[int(entry["version_id"])] = stored
    except BaseException:
        for key in written:
            store.delete(key)
        raise
    return refs, written


def _load_tables(
    engine: Engine,
    manifest: dict[str, Any],
    tables: dict[str, Table],
    staging: Path,
    refs: dict[int, ArtifactRef],
    force: bool,
) -> None:
    def rows_of(entry: dict[str, Any]) -> Any:
        table = tables[entry["name"]]
        for row in read_rows(staging / entry["file"], table):
            if entry["name"] == VERSIONS_TABLE and row["id"] in refs:
                ref = refs[row["id"]]
                row.update(artifact_uri=ref.uri, artifact_size=ref.size, artifact_version_id=ref.version_id)
            yield row

    with engine.begin() as conn:
        if force:
            for table in reversed(list(tables.values())):
                conn.execute(delete(table))
        for entry in manifest["tables"]:  # in the backup's dependency order
            loaded = load_table(conn, tables[entry["name"]], rows_of(entry))
            if loaded != entry["rows"]:
                raise DataValidationError(
                    f"table {entry['name']}: {loaded} rows read from the backup, the manifest says {entry['rows']}"
                )
        reset_sequences(conn, list(tables.values()))
        restored = production_versions(conn, tables)
        if restored != {k: int(v) for k, v in manifest["production"].items()}:
            raise DataValidationError(f"the restored production versions {restored} differ from the backup's")


def restore_from(uri: str, settings: Settings, force: bool = False) -> BackupSummary:
    """`restore` of the backup at `uri` into the database and artifact store `settings` name."""
    if not uri:
        raise ConfigurationError("name the backup to restore: a folder or s3://bucket/prefix")
    source = backup_location(uri, settings)
    engine = make_engine(settings.resolved_database_url)
    try:
        return restore(source, engine, artifact_store(settings.resolved_artifact_uri, settings), force=force)
    finally:
        engine.dispose()
