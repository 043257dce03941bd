"""salescast on Airflow: the worker's two jobs, scheduled by Airflow instead of `salescast worker`.

- `salescast_ingest`, daily at `SALESCAST_INGEST_CRON`: load the new files of the drop.
- `salescast_training`, weekly at `SALESCAST_RETRAIN_CRON`: load the new files, then retrain, gate,
  register and (when the gate passes) promote.

The tasks call the very functions the worker runs (`salescast.worker.ingest_drop` and `retrain`), so
Airflow and `salescast worker` cannot drift apart, and the same locks keep either from overlapping the
other. Put this file in the DAG folder of an Airflow environment where salescast is installed, with the
`SALESCAST_*` variables set for the scheduler (the schedules) and the workers (everything else).
Airflow reads cron in UTC by default, as the worker does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

try:  # Airflow 3
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.x (still what many managed services run)
    from airflow import DAG
    from airflow.operators.python import PythonOperator

from salescast.config import Settings
from salescast.worker import ingest_drop, retrain

# Only the schedules are read when the scheduler parses this file. The tasks read their settings when
# they run (the callables get no arguments): passing a Settings object as op_kwargs would show the
# database URL, passwords included, on the task's "Rendered Template" page.
settings = Settings()

DEFAULT_ARGS = {
    "owner": "salescast",
    "retries": 1,
    "retry_delay": dt.timedelta(minutes=15),
}
START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def _task(task_id: str, python_callable: Callable[..., object]) -> PythonOperator:
    # The reports and pipeline results hold ORM rows and frames: not XCom material, and nothing downstream
    # reads them (the ingestion runs and the registry are the record).
    return PythonOperator(task_id=task_id, python_callable=python_callable, do_xcom_push=False)


with DAG(
    dag_id="salescast_ingest",
    description="Load the new sales files of the drop (salescast.worker.ingest_drop).",
    schedule=settings.ingest_cron,
    start_date=START,
    catchup=False,  # a run loads everything new in the drop: missed days need no runs of their own
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["salescast"],
) as ingest_dag:
    _task("ingest_drop", ingest_drop)

with DAG(
    dag_id="salescast_training",
    description="Load the new sales files, then retrain, gate, register and promote (salescast.worker).",
    schedule=settings.retrain_cron,
    start_date=START,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["salescast"],
) as training_dag:
    _task("ingest_drop", ingest_drop) >> _task("retrain", retrain)
