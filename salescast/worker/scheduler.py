"""The worker process: daily ingestion and weekly retraining on cron schedules from the settings.

The schedule lives in memory: a worker that is down at a job's time runs it at the next one, not later
(the jobs are idempotent and the next run catches up). The locks, not the scheduler, keep two workers
from running the same job at once, so any number of workers may run.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from salescast.config import Settings, get_settings
from salescast.worker.cron import cron_trigger
from salescast.worker.drop import ingest_drop
from salescast.worker.training import retrain

if TYPE_CHECKING:
    from salescast.monitoring.drift import MonitorReport

log = logging.getLogger(__name__)

INGEST_JOB = "ingest"
RETRAIN_JOB = "retrain"
MONITOR_JOB = "monitor"  # drift, freshness and volume checks (salescast.monitoring.drift)
# A run that starts late (the previous one overran, the machine slept) still runs within this window.
MISFIRE_GRACE_SECONDS = 3600


def build_scheduler(settings: Settings) -> BackgroundScheduler:
    """A scheduler (not started) with the ingest and retrain jobs on the settings' cron expressions.

    ConfigurationError when either expression is invalid, naming the setting and the expression.
    """
    triggers = {
        INGEST_JOB: cron_trigger(settings.ingest_cron, "ingest_cron"),
        RETRAIN_JOB: cron_trigger(settings.retrain_cron, "retrain_cron"),
        MONITOR_JOB: cron_trigger(settings.monitor_cron, "monitor_cron"),
    }
    # A thread per job: a training run that lasts hours must not hold back the daily ingestion or the checks.
    scheduler = BackgroundScheduler(
        timezone=dt.UTC, executors={"default": ThreadPoolExecutor(max_workers=len(triggers))}
    )
    for job, trigger in triggers.items():
        scheduler.add_job(
            run_scheduled_job,
            trigger,
            args=[job, settings],
            id=job,
            name=f"salescast {job}",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=MISFIRE_GRACE_SECONDS,
        )
    return scheduler


def next_run_times(scheduler: BackgroundScheduler) -> dict[str, dt.datetime]:
    """When each job runs next (the scheduler must be started, paused or not)."""
    return {job.id: job.next_run_time for job in scheduler.get_jobs()}


def run_scheduled_job(job: str, settings: Settings) -> None:
    """One scheduled run, logged; a failure is logged and alerted, never raised: the schedule goes on."""
    started = time.monotonic()
    log.info("worker.job.started job=%s", job)
    try:
        if job == INGEST_JOB:
            reports = ingest_drop(settings)
            outcome = f"files={len(reports)} not_loaded={sum(r.status != 'succeeded' for r in reports)}"
        elif job == MONITOR_JOB:
            report = monitor(settings)
            outcome = f"breached={len(report.breached())} drift_measures={len(report.drift)}"
        else:
            result = retrain(settings)
            outcome = "skipped=another worker is training" if result is None else f"version={result.version.version}"
    except Exception as exc:
        log.exception("worker.job.failed job=%s seconds=%.1f", job, time.monotonic() - started)
        _alert_failure(job, exc, settings)
        return
    log.info("worker.job.finished job=%s seconds=%.1f %s", job, time.monotonic() - started, outcome)


def monitor(settings: Settings) -> MonitorReport:
    """One round of drift, freshness and volume checks of the worker's model, alerting once per episode."""
    from salescast.data.database import open_database
    from salescast.monitoring.alerts import alert_sink
    from salescast.monitoring.drift import check_all

    engine = open_database(settings.resolved_database_url)
    try:
        return check_all(engine, settings.model_name, settings, alert_sink(settings.alert_url, settings))
    finally:
        engine.dispose()


def _alert_failure(job: str, exc: Exception, settings: Settings) -> None:
    from salescast.monitoring.alerts import Alert, alert_sink

    try:
        alert_sink(settings.alert_url, settings).send(
            Alert(
                event="worker.job_failed",
                severity="critical",
                summary=f"the scheduled salescast {job} job failed: {exc}",
                details={"job": job, "error": type(exc).__name__},
            )
        )
    except Exception:  # the failure itself is already logged; a broken sink must not stop the worker
        log.exception("worker.alert_failed job=%s", job)


def run_worker(
    settings: Settings | None = None,
    stop_event: threading.Event | None = None,
    *,
    on_start: Callable[[dict[str, dt.datetime]], None] | None = None,
) -> None:
    """Run the schedule until `stop_event` is set (or Ctrl-C), then wait for running jobs to finish.

    `on_start` receives each job's next run time once the scheduler runs.
    """
    if settings is None:
        settings = get_settings()
    scheduler = build_scheduler(settings)
    stop = stop_event or threading.Event()
    scheduler.start()
    try:
        times = next_run_times(scheduler)
        for job, at in times.items():
            log.info("worker.scheduled job=%s next=%s", job, at.isoformat())
        if on_start is not None:
            on_start(times)
        stop.wait()
    finally:
        log.info("worker.stopping")
        scheduler.shutdown(wait=True)
