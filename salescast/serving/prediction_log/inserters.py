"""How the prediction log's batches reach the database: in the server process, or in a child process.

Inserting is the costly part of the log, in bursts of a whole batch. In the server process that work
holds the GIL in the middle of requests: on a cached answer (about 200 us) it made the slowest 1 % of
requests 2-3x slower. `ProcessInserter` hands each batch to a child process instead, which costs the
server only pickling plain tuples (about 1 us a row); the child runs at a lower CPU priority, since
requests come first and the log can wait (its buffer is bounded and drops are counted). Inserting
itself goes around the ORM (see RowEncoder): measured under load, the child's CPU per logged request
went from 50-110 us to about 20.

Both inserters have `insert(batch) -> InsertOutcome`, which never raises, and `close(timeout)`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import multiprocessing
import os
import pickle  # nosec B403: pickles cross a pipe to this process's own child only  # nosec B403: pickles cross a pipe to our own child only
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import URL, Connection, Engine
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.pool import Pool

from salescast.data.database import as_utc, make_engine, sqlite_file

if TYPE_CHECKING:
    from multiprocessing.context import SpawnProcess


# How much lower the child's CPU priority is than the server's (nice values, 0-19).
WRITER_NICENESS = 5
# How long the writer waits for an answer before checking that the child is still alive.
_POLL_SECONDS = 1.0
# Records pickled and sent at a time (see _send_in_chunks); and the two messages that are no chunk.
CHUNK_RECORDS = 50
# A pause between chunks, off the GIL: a busy event loop waits for the GIL on a 5 ms switch interval, so
# a writer sending chunk after chunk of a large batch held it in turns with the requests. With the pause
# (50 rows a chunk: a writer thread's ceiling of about 80,000 rows a second) the p99 of cached answers,
# uvicorn with 2 workers logging to PostgreSQL, went from 8-14 ms to 6.5-7.5 ms (Redis cache, 10 s runs).
CHUNK_PAUSE_SECONDS = 0.0005
_STOP = b""
_ABORT = b"abort"


@dataclass(frozen=True)
class InsertOutcome:
    """What became of a batch: its first `settled` rows are done (`refused` of them dropped because the
    database refused those rows themselves); when `error` is set, the rest are still to be written."""

    settled: int
    refused: int = 0
    transactions: int = 0
    error: str | None = None
    refusals: list[str] = field(default_factory=list)  # why each refused row was refused


# A record's values in COLUMNS order: a PredictionRecord, or the plain tuple it travels as, where params
# and result may be JSON text already (see waiting_row).
LogRow = tuple[Any, ...]
# JSON texts of recent params, by their (name, value) pairs: most requests of a busy route repeat them.
_params_texts: dict[tuple[tuple[str, Any], ...], str] = {}
_PARAMS_TEXTS_MAX = 1024


def waiting_row(sequence: int, record: LogRow) -> LogRow:
    """`(sequence, *record)`, a flat tuple with params and result as JSON text where they are JSON: what
    the garbage collector stops tracking. It never stops tracking a named tuple, nor a tuple that holds
    a dict (even one it does not track) or a tuple it still tracks, and each full collection walks every
    tracked object: with 25,000 records waiting as (sequence, named tuple) pairs, one took 15-35 ms of a
    server process's CPU, and the slowest 1 % of cached answers went from about 4 to 9-25 ms."""
    params, result = record[_PARAMS], record[_RESULT]
    if type(params) is dict:
        try:
            key = tuple(params.items())
            text = _params_texts.get(key)
            if text is None:
                if len(_params_texts) >= _PARAMS_TEXTS_MAX:
                    _params_texts.clear()
                text = _params_texts[key] = json.dumps(params)
            params = text
        except (TypeError, ValueError):  # unhashable values (a list) or no JSON: left as they are
            with contextlib.suppress(TypeError, ValueError):
                params = json.dumps(params)
    if type(result) is dict:  # a shadow's summary
        with contextlib.suppress(TypeError, ValueError):
            result = json.dumps(result)
    return (sequence, *record[:_PARAMS], params, *record[_PARAMS + 1 : _RESULT], result)


class Inserter(Protocol):
    def insert(self, batch: Sequence[LogRow]) -> InsertOutcome: ...

    def close(self, timeout: float) -> None: ...


# The columns an insert fills (the id is the database's), in the order of PredictionRecord's fields: a
# record travels to the writer process as a plain tuple (cheaper to pickle, and unpickling it imports
# nothing), so its values are known by position.
COLUMNS = (
    "at",
    "request_id",
    "key_id",
    "model_name",
    "model_version",
    "variant",
    "served",
    "route",
    "params",
    "status_code",
    "latency_ms",
    "result",
)
_PARAMS, _RESULT = COLUMNS.index("params"), COLUMNS.index("result")


def _json_text(value: Any) -> str:
    return value if type(value) is str else json.dumps(value)  # a str is JSON text already: see waiting_row


class RowEncoder:
    """Records as the driver's parameter tuples, the way the ORM would store them (on SQLite a time is
    its UTC wall-clock text, as SQLAlchemy's DateTime writes it; JSON is `json.dumps`'s text).

    Going around SQLAlchemy's per-row bind processing took a row's insert from about 35 to 20 us of
    CPU on SQLite. The writer's rows carry their params as JSON text already (waiting_row encodes each
    distinct params once); a dict left there is one that is no JSON, and fails here as the database's
    refusal of that row.
    """

    def __init__(self, dialect_name: str) -> None:
        self.sqlite = dialect_name == "sqlite"

    def rows(self, batch: Sequence[LogRow]) -> list[LogRow]:
        rows = []
        for at, request_id, key_id, model, version, variant, served, route, params, status, ms, result in batch:
            rows.append(
                (
                    self._time(at),
                    request_id,
                    key_id,
                    model,
                    version,
                    variant,
                    served,
                    route,
                    _json_text(params),
                    status,
                    ms,
                    None if result is None else _json_text(result),
                )
            )
        return rows

    def _time(self, moment: dt.datetime) -> dt.datetime | str:
        if moment.tzinfo is not dt.UTC:
            moment = as_utc(moment)
        # "2025-03-01 12:00:00.000000+00:00" without its zone
        return moment.isoformat(" ", "microseconds")[:26] if self.sqlite else moment


class BatchInserter:
    """Inserts a batch in one transaction; when the database refuses some of its rows (a value too long,
    params that are not JSON), row by row, so that one bad row does not block every row behind it.

    PostgreSQL gets a batch by COPY, about 4x less CPU than an INSERT per row (measured); SQLite by one
    prepared INSERT run for every row.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.encoder = RowEncoder(engine.dialect.name)
        marker = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        columns = ", ".join(COLUMNS)
        self._insert_sql = f"INSERT INTO prediction_log ({columns}) VALUES ({', '.join([marker] * len(COLUMNS))})"  # nosec B608: table and column names are constants of this module, values are bound parameters  # nosec B608: constant names only
        self._copy_sql = f"COPY prediction_log ({columns}) FROM STDIN" if engine.dialect.name == "postgresql" else None
        # What the driver raises for a row it refuses: COPY runs on the driver's own connection, so its
        # errors come unwrapped by SQLAlchemy.
        dbapi = engine.dialect.loaded_dbapi
        self._driver_refusals: tuple[type[Exception], ...] = (dbapi.DataError, dbapi.IntegrityError)

    def insert(self, batch: Sequence[LogRow]) -> InsertOutcome:
        try:
            rows = self.encoder.rows(batch)
            with self.engine.begin() as conn:
                if self._copy_sql is None:
                    conn.exec_driver_sql(self._insert_sql, rows)
                else:
                    self._copy(conn, rows)
            return InsertOutcome(settled=len(batch), transactions=1)
        except Exception as exc:  # the writer must outlive any failure
            if not self._rows_at_fault(exc):
                return InsertOutcome(settled=0, error=_describe(exc))
        return self._insert_singly(batch)

    def _copy(self, conn: Connection, rows: list[LogRow]) -> None:
        assert self._copy_sql is not None
        driver = conn.connection.driver_connection
        assert driver is not None  # a connection in a transaction is checked out
        with driver.cursor() as cursor, cursor.copy(self._copy_sql) as copy:
            for row in rows:
                copy.write_row(row)

    def _insert_singly(self, batch: Sequence[LogRow]) -> InsertOutcome:
        refusals: list[str] = []
        for index, record in enumerate(batch):
            try:
                rows = self.encoder.rows([record])
                with self.engine.begin() as conn:
                    conn.exec_driver_sql(self._insert_sql, rows)
            except Exception as exc:
                if not self._rows_at_fault(exc):
                    # Keep what was written; the rest goes back for a retry.
                    return InsertOutcome(index, len(refusals), index - len(refusals), _describe(exc), refusals)
                refusals.append(str(exc).splitlines()[0])
        return InsertOutcome(len(batch), len(refusals), len(batch) - len(refusals), None, refusals)

    def _rows_at_fault(self, exc: Exception) -> bool:
        """Whether the rows themselves were refused (retrying cannot help) rather than the database failing."""
        if isinstance(exc, (DataError, IntegrityError, *self._driver_refusals)):
            return True
        # Not from the database at all: params that are not JSON, a number SQLite's driver cannot bind.
        return isinstance(exc, (TypeError, ValueError, OverflowError)) and not isinstance(exc, DBAPIError)

    def close(self, timeout: float) -> None:
        return None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def shareable(engine: Engine) -> bool:
    """Whether another process can open the database `engine` points at (not an in-memory SQLite)."""
    return engine.url.get_backend_name() != "sqlite" or sqlite_file(engine.url) is not None


class ProcessInserter:
    """Sends each batch to a child process that inserts it with a `BatchInserter` of its own.

    The child starts with the inserter (spawned: it shares no lock or connection with the server's
    threads) and again after it died; a batch it never answered for is reported as an error, so the
    writer retries it. The child ignores SIGINT, which Ctrl-C sends the whole process group: the server
    decides when the log has drained, then closes the pipe. A SIGTERM stops it like any process; the
    server starts another for what is still to write.
    """

    def __init__(self, engine: Engine, niceness: int = WRITER_NICENESS) -> None:
        self.engine = engine
        self.niceness = niceness
        self._process: SpawnProcess | None = None
        self._conn: Pipe | None = None
        # Held by insert(): close() may come from another thread while a batch is out.
        self._busy = threading.Lock()
        self._closed = False
        self._start()

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        process = context.Process(
            target=_serve,
            # The child opens the same database the same way (a NullPool engine stays one).
            args=(self.engine.url, type(self.engine.pool), self.niceness, theirs),
            name="salescast-prediction-log",
            daemon=True,  # never outlives the server, whatever happens to it
        )
        process.start()
        theirs.close()
        self._process, self._conn = process, ours

    def insert(self, batch: Sequence[LogRow]) -> InsertOutcome:
        with self._busy:
            if self._closed:
                return InsertOutcome(settled=0, error="the prediction-log process was stopped")
            if self._process is None or not self._process.is_alive():
                self._discard()
                self._start()
            process, conn = self._process, self._conn
            assert process is not None and conn is not None
            try:
                if not _send_in_chunks(conn, batch):
                    # A value that cannot travel (params holding an object of the caller's): the rows are
                    # at fault, and the in-process inserter drops them as it would any row the database
                    # refuses.
                    return BatchInserter(self.engine).insert(batch)
                while not conn.poll(_POLL_SECONDS):
                    if not process.is_alive():
                        raise EOFError
                outcome: InsertOutcome = pickle.loads(conn.recv_bytes())  # nosec B301: bytes from this process's own writer child  # nosec B301: from our own child
                return outcome
            except (EOFError, OSError) as exc:
                self._discard()
                return InsertOutcome(
                    settled=0, error=f"the prediction-log process exited (code {process.exitcode}): {exc!r}"
                )

    def _discard(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._process is not None:
            if self._process.is_alive():
                self._process.kill()
            self._process.join(5)
        self._process, self._conn = None, None

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None else None

    def close(self, timeout: float) -> None:
        """Stop the child after the batch it is writing, waiting up to `timeout` seconds; then kill it. An
        insert() under way in another thread then returns (with an error) instead of waiting on."""
        self._closed = True
        process, conn = self._process, self._conn
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.send_bytes(_STOP)  # after a batch under way: the child answers that first
        if process is not None:
            process.join(max(0.0, timeout))
            if process.is_alive():
                process.kill()
                process.join(5)
        if self._busy.acquire(blocking=False):
            try:
                self._discard()
            finally:
                self._busy.release()


def _serve(url: URL, poolclass: type[Pool] | None, niceness: int, conn: Pipe) -> None:
    """The child: insert each batch received (in chunks), answer with its outcome; stop on an empty
    message or a closed pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        os.nice(niceness)
    kwargs = {"poolclass": poolclass} if poolclass is not None else {}
    # The server has opened this database already; a folder that is missing now was moved or unmounted,
    # and must not be replaced by an empty one.
    engine = make_engine(url.render_as_string(hide_password=False), create_folder=False, **kwargs)
    inserter = BatchInserter(engine)
    try:
        batch: list[LogRow] = []
        while True:
            try:
                payload = conn.recv_bytes()
            except EOFError:  # the server went away
                return
            if payload == _STOP:
                return
            if payload == _ABORT:
                batch = []
                continue
            last, records = pickle.loads(payload)  # nosec B301: bytes from the parent server process, over a private pipe  # nosec B301: from our parent
            batch.extend(records)
            if last:
                conn.send_bytes(pickle.dumps(inserter.insert(batch), protocol=pickle.HIGHEST_PROTOCOL))
                batch = []
    finally:
        engine.dispose()


def _send_in_chunks(conn: Pipe, batch: Sequence[LogRow]) -> bool:
    """Send `batch` as pickled chunks, the last one marked; False (and the child told to forget the
    chunks sent) when a record cannot be pickled.

    One pickle of a whole batch holds the GIL throughout, and every request in flight waits that long
    (batches of 5,000 took the p99 of cached answers from about 12 to 36 ms; at 500 the difference was
    within the noise): chunks of CHUNK_RECORDS each end in a write, which lets the event loop in. A
    batch (prediction_log_batch, 100 by default) holds two chunks.
    """
    for start in range(0, len(batch), CHUNK_RECORDS):
        chunk = [tuple(record) for record in batch[start : start + CHUNK_RECORDS]]  # plain tuples: see COLUMNS
        try:
            payload = pickle.dumps((start + CHUNK_RECORDS >= len(batch), chunk), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            if start:
                conn.send_bytes(_ABORT)
            return False
        conn.send_bytes(payload)
        if start + CHUNK_RECORDS < len(batch):
            time.sleep(CHUNK_PAUSE_SECONDS)
    return True
