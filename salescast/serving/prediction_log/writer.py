"""The prediction log: every served (or shadow-computed) forecast, written in batches off the request path.

`PredictionLogWriter.log()` only appends to an in-memory buffer; one background thread takes the buffer
in batches, one transaction each, and has them inserted in a child process (`prediction_log_process`,
the default: the inserting then costs the requests no CPU) or in the thread itself (see inserters.py).
A batch is `batch_size` rows, or up to `max_batch` when more wait: each transaction has a fixed cost,
and with small batches only, a PostgreSQL log fell behind a busy server (2 workers answering 25,000
cached requests a second wrote 14,000 rows a second, its buffer filling until rows were dropped).
When the database is down the rows wait and the write is retried with
backoff; the buffer holds at most `max_pending` rows, and beyond that the oldest are dropped (and counted)
so that an outage costs log rows, never memory or request latency.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from sqlalchemy import Engine

from salescast.data.database import as_utc
from salescast.errors import ConfigurationError
from salescast.monitoring.metrics import PREDICTIONS_DROPPED, PREDICTIONS_LOGGED, PREDICTIONS_PENDING
from salescast.serving.prediction_log.inserters import (
    BatchInserter,
    Inserter,
    InsertOutcome,
    LogRow,
    ProcessInserter,
    shareable,
    waiting_row,
)

if TYPE_CHECKING:
    from salescast.config import Settings

# The package's name, as before the log moved into a package: operators filter the log by it.
log = logging.getLogger("salescast.serving.prediction_log")

Variant = Literal["production", "challenger", "shadow"]
# Rows per version that variant_stats reads to compute a p99 in Python (SQLite has no percentile function).
P99_SAMPLE_ROWS = 50_000


class PredictionRecord(NamedTuple):
    """One request's forecast as the prediction log keeps it (one PredictionLogEntry row).

    A named tuple rather than a frozen dataclass: one is made on every request and pickled to the
    writer process, and a named tuple is about 5x cheaper to make and to unpickle (measured).
    """

    at: dt.datetime  # aware, UTC (a naive time is taken as UTC)
    request_id: str
    key_id: int | None
    model_name: str
    model_version: int | None
    variant: Variant
    served: bool  # False for a shadow result, which was computed but never returned
    route: str
    params: dict[str, Any]
    status_code: int
    latency_ms: float
    result: dict[str, Any] | None = None

    def row(self) -> dict[str, Any]:
        """The record as ORM insert values."""
        return {**self._asdict(), "at": as_utc(self.at)}


@dataclass(frozen=True)
class WriterStats:
    """What a writer has done so far (for tests, logs and the shutdown message)."""

    logged: int
    written: int
    dropped: int
    pending: int  # waiting in the buffer, in flight included
    in_flight: int  # taken by the current write attempt
    batches: int  # transactions committed
    failures: int  # write attempts that failed


class PredictionLogWriter:
    """Buffers prediction records and writes them from one background thread (see the module docstring).

    `log()` never blocks on the database and never raises. `flush()` and `close()` count a dropped row as
    settled: it will never be written, so waiting for it would be pointless.
    """

    def __init__(
        self,
        engine: Engine,
        batch_size: int,
        flush_seconds: float,
        max_pending: int,
        *,
        max_batch: int | None = None,
        retry_seconds: float = 0.5,
        max_retry_seconds: float = 30.0,
        warn_every_seconds: float = 60.0,
        separate_process: bool = False,
    ) -> None:
        if batch_size <= 0 or max_pending <= 0 or flush_seconds <= 0:
            raise ConfigurationError("prediction log: batch size, max pending and flush seconds must be > 0")
        if max_batch is not None and max_batch < batch_size:
            raise ConfigurationError(
                f"prediction log: the largest batch ({max_batch}) is below the batch size ({batch_size})"
            )
        self.engine = engine
        self.separate_process = separate_process and shareable(engine)
        if separate_process and not self.separate_process:
            log.info("prediction log: an in-memory database cannot be shared; writing from a thread instead")
        # Made by start(): a child process is not worth starting for a writer that never runs.
        self._inserter: Inserter = BatchInserter(engine)
        self.batch_size = batch_size
        self.max_batch = batch_size if max_batch is None else max_batch
        self.flush_seconds = flush_seconds
        self.max_pending = max_pending
        self.retry_seconds = retry_seconds
        self.max_retry_seconds = max_retry_seconds
        self.warn_every_seconds = warn_every_seconds
        self._wake = threading.Condition(threading.Lock())
        # Records as waiting_row makes them, (sequence number, *values), oldest first; the sequence numbers
        # let flush() wait for "all until now". Records as they come made every full collection of a
        # server process walk all of those waiting (see waiting_row).
        self._pending: deque[LogRow] = deque()
        self._in_flight: list[LogRow] = []
        self._next_seq = 0
        # flush() wants every row before this sequence number written now, whatever the batch size...
        self._flush_target = 0
        # ...and once at once, even while backing off from a failure
        self._retry_now = False
        self._closing = False
        self._thread: threading.Thread | None = None
        self._written = 0
        self._dropped = 0
        self._dropped_unreported = 0
        self._batches = 0
        self._failures = 0
        self._last_warning = -math.inf
        self._last_error = ""

    # -- the request path -------------------------------------------------------------------------------

    def log(self, record: PredictionRecord) -> None:
        """Queue one record; returns at once."""
        try:
            with self._wake:
                if self._closing:
                    self._drop(1, was_pending=False)
                    return
                self._pending.append(waiting_row(self._next_seq, record))
                self._next_seq += 1
                PREDICTIONS_PENDING.inc()
                if len(self._pending) > self.max_pending:
                    self._pending.popleft()
                    self._drop(1)
                if len(self._pending) >= self.batch_size:
                    self._wake.notify()
        except Exception:  # nosec B110: the log must never fail a request
            pass

    # -- life cycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread (once; later calls do nothing)."""
        with self._wake:
            if self._closing:
                raise ConfigurationError("the prediction log writer is closed")
            if self._thread is None:
                if self.separate_process:
                    self._inserter = ProcessInserter(self.engine)
                self._thread = threading.Thread(target=self._run, name="prediction-log-writer", daemon=True)
                self._thread.start()

    def flush(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds until every record logged so far is written (or dropped);
        True when it is."""
        deadline = time.monotonic() + timeout
        with self._wake:
            target = self._next_seq
            self._flush_target = max(self._flush_target, target)
            self._retry_now = True
            self._wake.notify_all()
            while self._oldest_unsettled() < target:
                left = deadline - time.monotonic()
                if left <= 0 or self._thread is None:
                    return False
                self._wake.wait(left)
            return True

    def close(self, timeout: float) -> bool:
        """Write what is pending (trying for up to `timeout` seconds), then stop the thread; rows still
        unwritten are dropped and counted. True when everything was written."""
        deadline = time.monotonic() + timeout
        drained = self.flush(timeout) if self._thread is not None else not self._pending
        with self._wake:
            self._closing = True
            self._wake.notify_all()
            thread = self._thread
        if thread is not None:
            # A little grace beyond the deadline for a write that is under way when time is up.
            thread.join(max(0.5, deadline - time.monotonic()))
        # A child process is stopped even while the thread waits on it: the thread's call then returns.
        self._inserter.close(max(0.0, deadline - time.monotonic()))
        if thread is not None and thread.is_alive():
            thread.join(0.5)
        if thread is None or not thread.is_alive():
            with self._wake:
                self._abandon_pending()
        # else the thread is stuck in a database call: it drops what is left when that call returns.
        return drained

    def __enter__(self) -> PredictionLogWriter:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.close(10.0)

    def stats(self) -> WriterStats:
        with self._wake:
            return WriterStats(
                logged=self._next_seq,
                written=self._written,
                dropped=self._dropped,
                pending=len(self._pending) + len(self._in_flight),
                in_flight=len(self._in_flight),
                batches=self._batches,
                failures=self._failures,
            )

    # -- the writer thread ------------------------------------------------------------------------------

    def _run(self) -> None:
        retry_delay = 0.0
        next_write = time.monotonic() + self.flush_seconds
        while True:
            with self._wake:
                while not self._closing:
                    now = time.monotonic()
                    if retry_delay > 0:  # backing off after a failure
                        due = self._retry_now or now >= next_write
                    else:
                        due = (
                            len(self._pending) >= self.batch_size
                            or now >= next_write
                            or self._oldest_unsettled() < self._flush_target
                        )
                    if due and self._pending:
                        break
                    self._wake.wait(max(0.001, next_write - now) if self._pending else self.flush_seconds)
                if self._closing:
                    self._abandon_pending()
                    return
                self._retry_now = False
                while len(self._in_flight) < self.max_batch and self._pending:
                    self._in_flight.append(self._pending.popleft())
                batch = [row[1:] for row in self._in_flight]
            outcome = self._inserter.insert(batch)
            ok = outcome.error is None
            with self._wake:
                self._settle_prefix(outcome)
                if ok:
                    retry_delay = 0.0
                    next_write = time.monotonic() + self.flush_seconds
                else:
                    self._failures += 1
                    self._last_error = outcome.error or ""
                    self._put_back()
                    retry_delay = min(self.max_retry_seconds, max(self.retry_seconds, retry_delay * 2))
                    next_write = time.monotonic() + retry_delay
                self._wake.notify_all()
            for refusal in outcome.refusals:
                log.warning("prediction log: dropped a row the database refused: %s", refusal)
            self._warn_if_due(ok)

    # -- bookkeeping, under self._wake ------------------------------------------------------------------

    def _oldest_unsettled(self) -> int:
        # In-flight rows are always older than buffered ones (taken from the front, put back at the front).
        oldest = self._in_flight or self._pending
        return int(oldest[0][0]) if oldest else self._next_seq

    def _settle_prefix(self, outcome: InsertOutcome) -> None:
        """The first `outcome.settled` in-flight rows are done: `outcome.refused` of them dropped, the rest
        written."""
        del self._in_flight[: outcome.settled]
        written = outcome.settled - outcome.refused
        self._written += written
        self._batches += outcome.transactions
        if written:
            PREDICTIONS_LOGGED.inc(written)
            PREDICTIONS_PENDING.dec(written)
        if outcome.refused:
            self._drop(outcome.refused)

    def _put_back(self) -> None:
        self._pending.extendleft(reversed(self._in_flight))
        self._in_flight.clear()
        # Rows that arrived during the failed attempt may have pushed the buffer past its bound.
        while len(self._pending) > self.max_pending:
            self._pending.popleft()
            self._drop(1)

    def _drop(self, count: int, was_pending: bool = True) -> None:
        self._dropped += count
        self._dropped_unreported += count
        PREDICTIONS_DROPPED.inc(count)
        if was_pending:
            PREDICTIONS_PENDING.dec(count)

    def _abandon_pending(self) -> None:
        if left := len(self._pending):
            self._pending.clear()
            self._drop(left)
            log.warning("prediction log: %d row(s) could not be written before shutdown", left)

    def _warn_if_due(self, ok: bool) -> None:
        # Warnings come from this thread, never from log(), and at most every warn_every_seconds.
        with self._wake:
            dropped, pending = self._dropped_unreported, len(self._pending)
            now = time.monotonic()
            if (ok and not dropped) or now - self._last_warning < self.warn_every_seconds:
                return
            self._last_warning = now
            self._dropped_unreported = 0
            error = self._last_error
        if ok:
            log.warning("prediction log: %d row(s) dropped since the last warning (buffer full)", dropped)
        else:
            log.warning(
                "prediction log: write failed (%s); %d row(s) pending, %d dropped since the last warning",
                error,
                pending,
                dropped,
            )


def make_prediction_log(engine: Engine, settings: Settings) -> PredictionLogWriter:
    """A writer with the configured batch size, flush interval and buffer bound (not started)."""
    return PredictionLogWriter(
        engine,
        batch_size=settings.prediction_log_batch,
        max_batch=max(settings.prediction_log_batch, settings.prediction_log_max_batch),
        flush_seconds=settings.prediction_log_flush_seconds,
        max_pending=settings.prediction_log_max_pending,
        separate_process=settings.prediction_log_process,
        max_retry_seconds=settings.prediction_log_max_retry_seconds,
        retry_seconds=min(0.5, settings.prediction_log_max_retry_seconds),
    )
