"""The worker: daily ingestion of the drop and weekly retraining, each under a lock so that two workers
never run the same job at once. The same functions run from `salescast worker`, from cron and as Airflow
tasks (deploy/airflow)."""

from salescast.data.locks import (
    INGEST_LOCK,
    TRAINING_LOCK,
    FileJobLock,
    JobLock,
    LockBusyError,
    PostgresJobLock,
    advisory_key,
    job_lock,
)
from salescast.worker.cron import cron_trigger
from salescast.worker.drop import DropSource, LocalDrop, S3Drop, drop_source, ingest_drop
from salescast.worker.scheduler import build_scheduler, next_run_times, run_worker
from salescast.worker.training import Pipeline, pipeline_config, retrain

__all__ = [
    "INGEST_LOCK",
    "TRAINING_LOCK",
    "DropSource",
    "FileJobLock",
    "JobLock",
    "LocalDrop",
    "LockBusyError",
    "Pipeline",
    "PostgresJobLock",
    "S3Drop",
    "advisory_key",
    "build_scheduler",
    "cron_trigger",
    "drop_source",
    "ingest_drop",
    "job_lock",
    "next_run_times",
    "pipeline_config",
    "retrain",
    "run_worker",
]
