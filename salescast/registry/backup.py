"""Backup and restore of a salescast installation: the metadata database (every table: sales, catalogue,
ingestion runs, the registry's versions, aliases and audit trail, stored forecasts, keys, deployments, the
prediction log) and the model artifacts the registry points at, consistent with each other.

A backup reads every table in one snapshot transaction and, from the same snapshot, every registered
version's artifact (checked against its recorded sha256). `manifest.json` lists each file with its sha256
and size, each table with its row count and each artifact with the version it belongs to; it is written last.

A restore verifies every file against the manifest before it writes anything, refuses a target that holds
rows (or an artifact under a key it would write) unless forced, stores the artifacts in the target's
artifact store (re-packed deterministically, so their sha256 is the recorded one) and loads the tables in
one transaction; when that fails, the artifacts it stored are removed again. The restored installation
serves the same production version and the same stored forecasts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, delete, select

import salescast
from salescast.config import Settings
from salescast.data.database import alembic_config, make_engine, migrate
from salescast.data.table_dump import count_rows, dump_table, load_table, read_rows, reflect_tables, reset_sequences
from salescast.errors import ArtifactIntegrityError, ConfigurationError, ConflictError, DataValidationError
from salescast.registry.artifacts import ArtifactRef, ArtifactStore, LocalArtifactStore, artifact_store, pack_folder
from salescast.registry.backup_location import MANIFEST, BackupLocation, backup_location

FORMAT = "salescast-backup/1"
VERSIONS_TABLE = "model_versions"
ALIASES_TABLE = "model_aliases"


@dataclass(frozen=True)
class BackupSummary:
    """What a backup holds or a restore loaded."""

    location: str
    tables: dict[str, int]  # rows per table
    artifacts: int
    production: dict[str, int]  # model name -> the version its production alias points at
    created_at: str
    schema_revision: str | None


@dataclass
class _Manifest:
    created_at: str
    schema_revision: str | None
    source_backend: str
    tables: list[dict[str, Any]] = field(default_factory=list)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    production: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "salescast_version": salescast.__version__,
                "created_at": self.created_at,
                "schema_revision": self.schema_revision,
                "source_backend": self.source_backend,
                "tables": self.tables,
                "artifacts": self.artifacts,
                "production": self.production,
            },
            indent=1,
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _revision(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def _head(engine: Engine) -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def _snapshot(engine: Engine) -> Connection:
    """A connection whose reads all see one moment of the database."""
    if engine.dialect.name == "sqlite":
        # pysqlite begins transactions only before writes; an explicit BEGIN makes the reads one snapshot.
        conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        conn.exec_driver_sql("BEGIN")
        return conn
    conn = engine.connect().execution_options(isolation_level="REPEATABLE READ")
    conn.begin()
    return conn


def _production(conn: Connection, tables: dict[str, Table]) -> dict[str, int]:
    if ALIASES_TABLE not in tables or VERSIONS_TABLE not in tables:
        return {}
    aliases, versions = tables[ALIASES_TABLE], tables[VERSIONS_TABLE]
    rows = conn.execute(
        select(aliases.c.name, versions.c.version)
        .join(versions, versions.c.id == aliases.c.version_id)
        .where(aliases.c.alias == "production")
    )
    return {name: int(version) for name, version in rows}


def backup(engine: Engine, store: ArtifactStore, out: BackupLocation) -> BackupSummary:
    """Write a backup of the database behind `engine` and the artifacts in `store` to `out` (which must be
    empty); see the module docstring.

    Args:
        engine: the metadata database (SQLite or PostgreSQL).
        store: the artifact store the registry's versions point into.
        out: an empty folder or S3 prefix.
    """
    if not out.is_empty():
        raise ConflictError(f"{out.uri} already holds files: back up into a new folder or prefix")
    with tempfile.TemporaryDirectory(prefix="salescast-backup-") as scratch:
        staging = Path(scratch)
        (staging / "tables").mkdir()
        (staging / "artifacts").mkdir()
        conn = _snapshot(engine)
        try:
            tables = {table.name: table for table in reflect_tables(conn)}
            manifest = _Manifest(
                created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                schema_revision=_revision(conn),
                source_backend=engine.dialect.name,
                production=_production(conn, tables),
            )
            for name, table in tables.items():
                path = staging / "tables" / f"{name}.jsonl.gz"
                rows = dump_table(conn, table, path)
                manifest.tables.append({"name": name, "rows": rows, **_file_entry(staging, path)})
            if VERSIONS_TABLE in tables:
                manifest.artifacts = _copy_artifacts(conn, tables[VERSIONS_TABLE], store, staging)
        finally:
            if engine.dialect.name == "sqlite":
                conn.exec_driver_sql("ROLLBACK")
            else:
                conn.rollback()
            conn.close()
        (staging / MANIFEST).write_text(manifest.to_json())
        for entry in [*manifest.tables, *manifest.artifacts]:
            out.write(entry["file"], staging / entry["file"])
        out.write(MANIFEST, staging / MANIFEST)  # last: a backup without it was cut short
    return _summary(out.uri, manifest.tables, manifest.artifacts, manifest.production, manifest)


def _file_entry(staging: Path, path: Path) -> dict[str, Any]:
    return {"file": path.relative_to(staging).as_posix(), "sha256": _sha256(path), "bytes": path.stat().st_size}


def _copy_artifacts(conn: Connection, versions: Table, store: ArtifactStore, staging: Path) -> list[dict[str, Any]]:
    entries = []
    rows = conn.execute(select(versions).where(versions.c.artifact_uri.is_not(None)).order_by(versions.c.id))
    for row in rows:
        ref = ArtifactRef(row.artifact_uri, row.artifact_sha256 or "", row.artifact_size or 0, row.artifact_version_id)
        with tempfile.TemporaryDirectory(dir=staging) as unpacked:
            folder = store.get(ref, Path(unpacked) / "model")  # checks the recorded sha256
            path = staging / "artifacts" / f"{row.id}.tar"
            with path.open("w+b") as fh:
                sha256, _ = pack_folder(folder, fh)
        if sha256 != row.artifact_sha256:  # packing is deterministic: a difference is a changed packer
            raise ArtifactIntegrityError(
                f"{row.name} v{row.version}: its artifact re-packs to sha256 {sha256}, recorded {row.artifact_sha256}"
            )
        entries.append({"version_id": row.id, "model": row.name, "version": row.version, **_file_entry(staging, path)})
    return entries


def _summary(
    location: str,
    tables: list[dict[str, Any]],
    artifacts: list[dict[str, Any]],
    production: dict[str, int],
    manifest: _Manifest | dict[str, Any],
) -> BackupSummary:
    created = manifest.created_at if isinstance(manifest, _Manifest) else manifest["created_at"]
    revision = manifest.schema_revision if isinstance(manifest, _Manifest) else manifest["schema_revision"]
    return BackupSummary(
        location=location,
        tables={t["name"]: int(t["rows"]) for t in tables},
        artifacts=len(artifacts),
        production=dict(production),
        created_at=created,
        schema_revision=revision,
    )


# -- restore ------------------------------------------------------------------------------------------------


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
        actual = _sha256(path)
        if actual != entry["sha256"] or path.stat().st_size != entry["bytes"]:
            raise ArtifactIntegrityError(
                f"{source.uri}/{entry['file']} does not match the manifest (sha256 {actual}, expected "
                f"{entry['sha256']}); nothing was restored"
            )


def _prepare_schema(engine: Engine, wanted: str | None) -> None:
    """Bring the target's schema to the backup's revision (a new database) or check it is there already."""
    with engine.connect() as conn:
        current = _revision(conn)
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
    return _summary(source.uri, manifest["tables"], manifest["artifacts"], manifest["production"], manifest)


def _store_artifacts(
    entries: list[dict[str, Any]], staging: Path, store: ArtifactStore
) -> tuple[dict[int, ArtifactRef], list[str]]:
    """Each artifact unpacked (safely, its checksum checked once more) and put into `store`; returns the new
    ref per version id and the keys written."""
    backup_store = LocalArtifactStore(staging / "artifacts")
    refs: dict[int, ArtifactRef] = {}
    written: list[str] = []
    try:
        for entry in entries:
            ref = ArtifactRef(backup_store.uri_for(f"{entry['version_id']}.tar"), entry["sha256"], entry["bytes"])
            with tempfile.TemporaryDirectory(dir=staging) as unpacked:
                folder = backup_store.get(ref, Path(unpacked) / "model")
                key = _artifact_key(entry)
                stored = store.put(folder, key)
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
        restored = _production(conn, tables)
        if restored != {k: int(v) for k, v in manifest["production"].items()}:
            raise DataValidationError(f"the restored production versions {restored} differ from the backup's")


def backup_to(uri: str, settings: Settings, engine: Engine) -> BackupSummary:
    """`backup` of the installation `settings` describe (its artifact store) into the location `uri` names."""
    return backup(engine, artifact_store(settings.resolved_artifact_uri, settings), backup_location(uri, settings))


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
