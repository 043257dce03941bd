"""Loading one file into the sales store: stream, validate, stage, upsert, all in one transaction (the run's
record is written before it, see salescast.data.runs)."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, insert, update
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from salescast.config import Settings
from salescast.data import staging
from salescast.data.presets import SourceSpec
from salescast.data.runs import mark_interrupted, run_locks, running_run
from salescast.data.schema import IngestionRun, RejectedRow
from salescast.data.sources import LineProblem, iter_raw_chunks, printable
from salescast.data.validation import validate_chunk
from salescast.errors import FileRefusedError, StorageError

T = TypeVar("T")
CARDINALITY_VIOLATION = "21000"  # PostgreSQL: ON CONFLICT DO UPDATE would affect a row twice
ProgressCallback = Callable[[int], None]  # called with the rows read so far, after each chunk


@dataclass
class IngestReport:
    run_id: int | None
    source: str
    status: str  # running, then succeeded | refused | failed | interrupted
    preset: str | None = None
    file_sha256: str | None = None
    rows_read: int = 0
    rows_accepted: int = 0
    rows_rejected: int = 0
    facts_inserted: int = 0
    facts_updated: int = 0
    facts_unchanged: int = 0
    seconds: float = 0.0
    message: str = ""
    problems: list[LineProblem] = field(default_factory=list)  # the first `ingest_max_stored_rejects`

    @property
    def bad_share(self) -> float:
        return self.rows_rejected / self.rows_read if self.rows_read else 0.0

    def reasons_summary(self) -> dict[str, int]:
        """Problem counts by the reason's first words (e.g. 'unparseable date'), over the kept problems."""
        counts: dict[str, int] = {}
        for problem in self.problems:
            key = problem.reason.split(":")[0].split("'")[0].strip()
            counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def prefetch(items: Iterator[T], depth: int) -> Iterator[T]:
    """Yield `items`, producing up to `depth` ahead in a thread: reading and validating the next chunk
    overlaps with the database writing this one (Arrow, pandas and the drivers release the GIL)."""
    slots: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                slots.put(("item", item))
            slots.put(("done", None))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            slots.put(("error", exc))

    worker = threading.Thread(target=produce, name="salescast-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = slots.get()
            if kind == "done":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(queue.Empty):
                slots.get(timeout=0.05)
        worker.join()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def ingest_file(
    engine: Engine,
    path: Path,
    spec: SourceSpec,
    settings: Settings,
    *,
    preset: str | None = None,
    progress: ProgressCallback | None = None,
) -> IngestReport:
    """Load `path` as one transaction and return what happened.

    The run is recorded as `running` first, in a transaction of its own, and its outcome when it ends (a
    process killed on the way shows as `interrupted` later, see salescast.data.runs). Raises
    FileRefusedError when the file cannot be used (unreadable, missing columns, too many bad rows) and
    StorageError when the database fails; in both cases no sales data was written, and the attempt is
    recorded when the database can still be reached.
    """
    started = time.perf_counter()
    source = str(path)
    if not path.is_file():
        raise FileRefusedError(f"{path}: no such file")
    sha = file_sha256(path)
    report = IngestReport(run_id=None, source=source, status="running", preset=preset, file_sha256=sha)
    try:
        locks = run_locks(engine)
        mark_interrupted(engine, locks)
        with running_run(engine, locks, source=source, preset=preset, file_sha256=sha) as run_id:
            report.run_id = run_id
            _load_recording_outcome(engine, path, spec, settings, report, progress, started)
    except (DBAPIError, SQLAlchemyError) as exc:  # the run could not even be recorded
        raise StorageError(f"{path}: database error, nothing was loaded: {getattr(exc, 'orig', None) or exc}") from exc
    return report


def _load_recording_outcome(
    engine: Engine,
    path: Path,
    spec: SourceSpec,
    settings: Settings,
    report: IngestReport,
    progress: ProgressCallback | None,
    started: float,
) -> None:
    try:
        _load(engine, path, spec, settings, report, progress, started)
    except FileRefusedError as exc:
        report.status, report.message = "refused", str(exc)
        _record_outcome(engine, report, started)
        raise
    except (DBAPIError, SQLAlchemyError) as exc:
        detail = getattr(exc, "orig", None) or exc
        report.status, report.message = "failed", f"database error, nothing was loaded: {detail}"
        _record_outcome(engine, report, started)
        raise StorageError(f"{path}: {report.message}") from exc
    except BaseException as exc:  # Ctrl-C, or a defect: the run still gets an outcome
        stopped = isinstance(exc, KeyboardInterrupt)
        report.status = "interrupted" if stopped else "failed"
        report.message = f"{'interrupted' if stopped else f'unexpected error: {exc!r}'}; nothing was loaded"
        _record_outcome(engine, report, started)
        raise


def _load(
    engine: Engine,
    path: Path,
    spec: SourceSpec,
    settings: Settings,
    report: IngestReport,
    progress: ProgressCallback | None,
    started: float,
) -> None:
    """Stream, validate, stage and upsert `path`, and record the run's success, in one transaction."""
    assert report.run_id is not None, "the run is recorded before the load"
    run_id = report.run_id
    kept = settings.ingest_max_stored_rejects
    with engine.begin() as conn:
        staging.create_staging(conn)
        dims = staging.Dimensions()
        checked_chunks = (
            validate_chunk(raw, spec, settings.negative_sales)
            for raw in iter_raw_chunks(path, spec, settings.ingest_chunk_rows)
        )
        for checked in prefetch(checked_chunks, depth=2):
            staging.stage_rows(conn, checked.rows)
            dims.add(checked.rows)
            report.rows_read += checked.rows_read
            report.rows_rejected += checked.rejected_rows
            if len(report.problems) < kept:
                report.problems.extend(sorted(checked.problems, key=lambda p: p.line)[: kept - len(report.problems)])
            if progress:
                progress(report.rows_read)
        if report.rows_read == 0:
            raise FileRefusedError(f"{path}: the file has no data rows")
        # Duplicate keys only matter when rows are not summed. PostgreSQL reports them from the
        # upsert itself (a row affected twice), so the common clean file needs no extra pass.
        check_first = not spec.aggregate and conn.dialect.name != "postgresql"
        if check_first:
            _reject_duplicates(conn, report, kept)
        _check_bad_share(path, report, settings.ingest_max_bad_share)
        staging.upsert_dimensions(conn, dims)
        try:
            with conn.begin_nested():
                counts = staging.upsert_facts(conn, run_id, spec.aggregate)
        except DBAPIError as exc:
            if check_first or spec.aggregate or getattr(exc.orig, "sqlstate", None) != CARDINALITY_VIOLATION:
                raise
            _reject_duplicates(conn, report, kept)
            _check_bad_share(path, report, settings.ingest_max_bad_share)
            counts = staging.upsert_facts(conn, run_id, spec.aggregate)
        report.rows_accepted = report.rows_read - report.rows_rejected
        staging.drop_staging(conn)
        report.facts_inserted, report.facts_updated = counts.inserted, counts.updated
        report.facts_unchanged = counts.unchanged
        report.status = "succeeded"
        report.seconds = time.perf_counter() - started
        _store_problems(conn, run_id, report.problems)
        conn.execute(update(IngestionRun).where(IngestionRun.id == run_id).values(**_run_values(report)))


def _reject_duplicates(conn: Connection, report: IngestReport, kept: int) -> None:
    duplicates = staging.pop_duplicates(conn)
    report.rows_rejected += len(duplicates)
    report.problems.extend(
        LineProblem(
            d.line,
            "key",
            f"duplicate key (product={d.product}, store={d.store}, date={d.date}) first seen on line {d.first_line}",
        )
        for d in duplicates[: max(0, kept - len(report.problems))]
    )


def _check_bad_share(path: Path, report: IngestReport, limit: float) -> None:
    if report.bad_share > limit:
        raise FileRefusedError(
            f"{path}: refused, {report.rows_rejected:,} of {report.rows_read:,} rows "
            f"({report.bad_share:.0%}) are bad, above the limit of {limit:.0%}; nothing was loaded"
        )


def _run_values(report: IngestReport) -> dict[str, object]:
    return {
        "status": report.status,
        "message": report.message or None,
        "finished_at": dt.datetime.now(dt.UTC),
        "seconds": report.seconds,
        "rows_read": report.rows_read,
        "rows_accepted": report.rows_accepted if report.status == "succeeded" else 0,
        "rows_rejected": report.rows_rejected,
        "facts_inserted": report.facts_inserted,
        "facts_updated": report.facts_updated,
        "facts_unchanged": report.facts_unchanged,
    }


def _store_problems(conn: Connection, run_id: int, problems: list[LineProblem]) -> None:
    if not problems:
        return
    # printable(): validation already escapes what it quotes; a control character anywhere else (PostgreSQL
    # refuses NUL in text) must not cost the run its record.
    conn.execute(
        insert(RejectedRow),
        [
            {
                "run_id": run_id,
                "line": p.line,
                "column": None if p.column is None else printable(p.column),
                "reason": printable(p.reason),
                "raw": None if p.raw is None else printable(p.raw),
            }
            for p in problems
        ],
    )


def _record_outcome(engine: Engine, report: IngestReport, started: float) -> None:
    """Record how a refused or failed run ended, in its own transaction; the load itself was rolled back."""
    report.seconds = time.perf_counter() - started
    assert report.run_id is not None, "the run is recorded before the load"
    try:
        with engine.begin() as conn:
            conn.execute(update(IngestionRun).where(IngestionRun.id == report.run_id).values(**_run_values(report)))
            _store_problems(conn, report.run_id, report.problems)
    except SQLAlchemyError:
        pass  # the database is down: the caller reports the original error; the run shows as interrupted later
