"""Backup and restore of a salescast installation: the metadata database (every table: sales, catalogue,
ingestion runs, the registry's versions, aliases and audit trail, stored forecasts, keys, deployments, the
prediction log) and the model artifacts the registry points at, consistent with each other.

A backup reads every table in one snapshot transaction and, from the same snapshot, every registered
version's artifact (checked against its recorded sha256). `manifest.json` lists each file with its sha256
and size, each table with its row count and each artifact with the version it belongs to; it is written last.

`salescast.registry.restore` reads it back.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, select

import salescast
from salescast.config import Settings
from salescast.data.table_dump import dump_table, reflect_tables
from salescast.errors import ArtifactIntegrityError, ConflictError
from salescast.registry.artifacts import ArtifactRef, ArtifactStore, artifact_store, pack_folder
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


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def revision(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


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


def production_versions(conn: Connection, tables: dict[str, Table]) -> dict[str, int]:
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
                schema_revision=revision(conn),
                source_backend=engine.dialect.name,
                production=production_versions(conn, tables),
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
    return summary(out.uri, manifest.tables, manifest.artifacts, manifest.production, manifest)


def _file_entry(staging: Path, path: Path) -> dict[str, Any]:
    return {"file": path.relative_to(staging).as_posix(), "sha256": sha256_of(path), "bytes": path.stat().st_size}


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


def summary(
    location: str,
    tables: list[dict[str, Any]],
    artifacts: list[dict[str, Any]],
    production: dict[str, int],
    manifest: _Manifest | dict[str, Any],
) -> BackupSummary:
    created = manifest.created_at if isinstance(manifest, _Manifest) else manifest["created_at"]
    schema = manifest.schema_revision if isinstance(manifest, _Manifest) else manifest["schema_revision"]
    return BackupSummary(
        location=location,
        tables={t["name"]: int(t["rows"]) for t in tables},
        artifacts=len(artifacts),
        production=dict(production),
        created_at=created,
        schema_revision=schema,
    )


def backup_to(uri: str, settings: Settings, engine: Engine) -> BackupSummary:
    """`backup` of the installation `settings` describe (its artifact store) into the location `uri` names."""
    return backup(engine, artifact_store(settings.resolved_artifact_uri, settings), backup_location(uri, settings))
