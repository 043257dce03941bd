"""Daily ingestion of the drop: the sales files that arrive in a folder or under an S3 prefix.

A file is identified by its content (sha256), not its name: one whose bytes already loaded successfully is
skipped, so the drop can keep its history and a corrected file under an old name is loaded again. Files
go in name order (dated names load oldest first) and one bad file never keeps the others out.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote, urlsplit

from salescast.config import Settings, get_settings
from salescast.data.locks import INGEST_LOCK, JobLock, LockBusyError, job_lock
from salescast.errors import ConfigurationError, FileRefusedError, StorageError

# pandas, pyarrow and boto3 load when a job runs, not on import: Airflow imports this module to parse the DAG.
if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
    from sqlalchemy import Engine

    from salescast.data.ingest import IngestReport
    from salescast.data.presets import SourceSpec

log = logging.getLogger(__name__)


class DropSource(Protocol):
    def names(self) -> list[str]:
        """Every file in the drop, sorted by name (relative to the folder or prefix)."""
        ...

    def uri(self, name: str) -> str:
        """Where the file lives, as recorded in its ingestion run."""
        ...

    def fetch(self, name: str, scratch: Path) -> Path:
        """A local path to the file's bytes; remote files are downloaded under `scratch`."""
        ...


class LocalDrop:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def names(self) -> list[str]:
        if not self.folder.is_dir():
            raise ConfigurationError(f"the drop folder {self.folder} does not exist")
        return sorted(path.name for path in self.folder.iterdir() if path.is_file())

    def uri(self, name: str) -> str:
        return str(self.folder / name)

    def fetch(self, name: str, scratch: Path) -> Path:
        return self.folder / name


class S3Drop:
    """Every object under `s3://bucket/prefix/`, sub-prefixes included."""

    def __init__(self, bucket: str, prefix: str, client: S3Client) -> None:
        self.bucket = bucket
        # A folder, not a string prefix: s3://b/drop must not pick up s3://b/drop-old/....
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.client = client

    def names(self) -> list[str]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
            keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"cannot list {self.uri('')}: {exc}") from exc
        return sorted(key.removeprefix(self.prefix) for key in keys if not key.endswith("/"))

    def uri(self, name: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{name}"

    def fetch(self, name: str, scratch: Path) -> Path:
        from botocore.exceptions import BotoCoreError, ClientError

        # Only the base name under a fresh folder: a key such as `a/../../x.csv` must not write outside
        # `scratch`, and the base name keeps the extension that tells the file's format.
        dest = Path(tempfile.mkdtemp(dir=scratch)) / PurePosixPath(name).name
        try:
            self.client.download_file(self.bucket, self.prefix + name, str(dest))
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"cannot download {self.uri(name)}: {exc}") from exc
        return dest


def drop_source(uri: str, settings: Settings) -> DropSource:
    """The drop a URI names: a folder path, `file://folder` or `s3://bucket/prefix`."""
    if not uri:
        raise ConfigurationError("drop_uri is not set: name the folder or s3://bucket/prefix where sales files arrive")
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    if not scheme:
        return LocalDrop(Path(uri).expanduser().resolve())
    if scheme == "file":
        return LocalDrop(Path(unquote(urlsplit(uri).path)).resolve())
    if scheme == "s3":
        from salescast.registry.artifacts import s3_client

        parts = urlsplit(uri)
        if not parts.netloc:
            raise ConfigurationError(f"drop_uri {uri!r} names no bucket: use s3://bucket/prefix")
        return S3Drop(parts.netloc, parts.path, s3_client(settings))
    raise ConfigurationError(f"unsupported drop_uri {uri!r}: use a folder, file://folder or s3://bucket/prefix")


def ingest_drop(
    settings: Settings | None = None,
    engine: Engine | None = None,
    *,
    locks: JobLock | None = None,
    lock_timeout: float = 0.0,
) -> list[IngestReport]:
    """Load every new file of `settings.drop_uri`; one report per file attempted, in name order.

    Files whose sha256 already has a succeeded ingestion run are skipped. A refused or failed file is
    reported (status `refused` or `failed`, with the message) and the others still load. When another
    worker is ingesting, nothing is done and the list is empty. Called without arguments (as Airflow
    does), settings come from the environment and the database from the settings.
    """
    if settings is None:
        settings = get_settings()
    source = drop_source(settings.drop_uri, settings)
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context((locks or job_lock(settings)).acquire(INGEST_LOCK, lock_timeout))
        except LockBusyError:
            log.info("worker.ingest.skipped reason=another worker is ingesting")
            return []
        if engine is None:
            from salescast.data.database import open_database

            engine = open_database(settings.resolved_database_url)
            stack.callback(engine.dispose)
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="salescast-drop-")))
        return _ingest_new_files(engine, source, scratch, settings)


def _ingest_new_files(engine: Engine, source: DropSource, scratch: Path, settings: Settings) -> list[IngestReport]:
    from salescast.data.ingest import IngestReport
    from salescast.data.presets import resolve_spec

    spec = resolve_spec(settings.drop_preset)
    reports: list[IngestReport] = []
    already = 0
    for name in source.names():
        if not _is_sales_file(name, spec):
            log.info("worker.ingest.ignored file=%s reason=not a sales file", source.uri(name))
            continue
        try:
            report = _ingest_one(engine, source, name, scratch, spec, settings)
        except Exception as exc:  # an unexpected error in one file must not keep the others out
            log.exception("worker.ingest.file_failed file=%s", source.uri(name))
            report = IngestReport(
                run_id=None, source=source.uri(name), status="failed", preset=settings.drop_preset, message=str(exc)
            )
        if report is None:
            already += 1
            continue
        reports.append(report)
        if report.status == "succeeded":
            log.info(
                "worker.ingest.file file=%s run=%s rows=%d rejected=%d new=%d updated=%d",
                report.source,
                report.run_id,
                report.rows_read,
                report.rows_rejected,
                report.facts_inserted,
                report.facts_updated,
            )
        else:
            log.warning(
                "worker.ingest.file file=%s run=%s status=%s message=%s",
                report.source,
                report.run_id,
                report.status,
                report.message,
            )
    log.info("worker.ingest.done attempted=%d already_loaded=%d", len(reports), already)
    if any(r.status == "succeeded" and (r.facts_inserted or r.facts_updated) for r in reports):
        _refresh_live_accuracy(engine, settings.model_name)
    return reports


def _refresh_live_accuracy(engine: Engine, model: str) -> None:
    """New actuals arrived: score the versions that served those days. The files are loaded whatever
    happens here; a failure is logged (and the next drop, or `salescast monitor accuracy --refresh`,
    catches up)."""
    from salescast.monitoring.live_accuracy import update_live_accuracy

    try:
        cells = update_live_accuracy(engine, model)
    except Exception:
        log.exception("worker.live_accuracy.failed model=%s", model)
        return
    log.info("worker.live_accuracy.updated model=%s cells=%d", model, cells)


def _is_sales_file(name: str, spec: SourceSpec) -> bool:
    from salescast.data.sources import file_format

    # Hidden names are uploads in progress (and `.`/`..` tricks); the extension test is ingestion's own.
    if PurePosixPath(name).name.startswith("."):
        return False
    try:
        file_format(Path(name), spec)
    except FileRefusedError:
        return False
    return True


def _ingest_one(
    engine: Engine, source: DropSource, name: str, scratch: Path, spec: SourceSpec, settings: Settings
) -> IngestReport | None:
    """The report of loading one file, or None when its content already loaded successfully."""
    from salescast.data.ingest import IngestReport, file_sha256, ingest_file

    uri = source.uri(name)
    local = source.fetch(name, scratch)
    is_copy = str(local) != uri  # downloaded: a temporary copy, recorded under its real URI and deleted
    try:
        sha = file_sha256(local)
        if _already_loaded(engine, sha):
            return None
        try:
            report = ingest_file(engine, local, spec, settings, preset=settings.drop_preset)
        except (FileRefusedError, StorageError) as exc:
            # ingest_file recorded the attempt (when the database was reachable) but raised instead of
            # returning its report; find the run so that its rejected rows can be looked up.
            status = "refused" if isinstance(exc, FileRefusedError) else "failed"
            report = IngestReport(
                run_id=_latest_run(engine, str(local)),
                source=uri,
                status=status,
                preset=settings.drop_preset,
                file_sha256=sha,
                message=str(exc),
            )
        if is_copy:
            _relabel_runs(engine, str(local), uri)
        report.source = uri
        return report
    finally:
        if is_copy:
            local.unlink(missing_ok=True)


def _already_loaded(engine: Engine, sha: str) -> bool:
    from sqlalchemy import select

    from salescast.data.schema import IngestionRun

    query = select(IngestionRun.id).where(IngestionRun.file_sha256 == sha, IngestionRun.status == "succeeded")
    with engine.connect() as conn:
        return conn.execute(query.limit(1)).first() is not None


def _latest_run(engine: Engine, source: str) -> int | None:
    from sqlalchemy import func, select
    from sqlalchemy.exc import SQLAlchemyError

    from salescast.data.schema import IngestionRun

    try:
        with engine.connect() as conn:
            return conn.execute(select(func.max(IngestionRun.id)).where(IngestionRun.source == source)).scalar()
    except SQLAlchemyError:
        return None  # the database is down; the report still carries the error


def _relabel_runs(engine: Engine, local: str, uri: str) -> None:
    """Record where a downloaded file came from instead of its temporary copy. ingest_file records the
    path it read; the copy's folder is unique to this run, so only this file's runs match."""
    from sqlalchemy import update
    from sqlalchemy.exc import SQLAlchemyError

    from salescast.data.schema import IngestionRun

    try:
        with engine.begin() as conn:
            conn.execute(update(IngestionRun).where(IngestionRun.source == local).values(source=uri))
    except SQLAlchemyError as exc:
        log.warning("worker.ingest.relabel_failed file=%s error=%s", uri, exc)
