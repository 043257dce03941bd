"""Training runs as the monitoring sees them: one row per pipeline run with its duration, outcome and gate
verdict, written by whoever trains (worker, CLI, Airflow) and read by /metrics from any process."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, insert

from salescast.data.schema import TrainingRun

OUTCOMES = ("registered", "rejected", "failed")


def record_training_run(
    engine: Engine,
    model_name: str,
    started_at: dt.datetime,
    seconds: float,
    outcome: str,
    *,
    version: int | None = None,
    gate_passed: bool | None = None,
    message: str | None = None,
) -> None:
    """Write one training run (`outcome` one of OUTCOMES)."""
    if outcome not in OUTCOMES:
        raise ValueError(f"a training run's outcome is one of {OUTCOMES}, not {outcome!r}")
    with engine.begin() as conn:
        conn.execute(
            insert(TrainingRun).values(
                model_name=model_name,
                started_at=started_at,
                seconds=float(seconds),
                outcome=outcome,
                version=version,
                gate_passed=gate_passed,
                message=message[:2000] if message else None,
            )
        )
