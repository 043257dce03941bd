"""What the sales store last took in: the latest ingestion runs, the rows they rejected and how fresh the
sales are, as the dashboard's Data page and `GET /api/v1/data/...` show them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Engine, func, select

from salescast.data.database import as_utc
from salescast.data.schema import IngestionRun, Product, SalesFact
from salescast.data.summary import recent_runs, rejected_rows
from salescast.errors import NotFoundError

Json = dict[str, Any]


def _time(moment: dt.datetime | None) -> str | None:
    return as_utc(moment).isoformat() if moment is not None else None


def ingestion_overview(engine: Engine, limit: int) -> Json:
    """The newest `limit` runs (newest first; a `running` run whose process is gone is recorded as
    `interrupted` on the way, as `salescast data runs` does), the first and newest sales dates, and how
    many products and sales rows the store holds."""
    runs = recent_runs(engine, limit)
    with engine.connect() as conn:
        first, newest, facts = conn.execute(
            select(func.min(SalesFact.date), func.max(SalesFact.date), func.count())
        ).one()
        products = conn.scalar(select(func.count()).select_from(Product)) or 0
    return {
        "first_sales_date": first.isoformat() if first else None,
        "newest_sales_date": newest.isoformat() if newest else None,
        "sales_rows": int(facts),
        "products": int(products),
        "runs": [
            {
                "id": run.id,
                "source": run.source,
                "preset": run.preset,
                "status": run.status,
                "message": run.message,
                "started_at": _time(run.started_at),
                "finished_at": _time(run.finished_at),
                "seconds": run.seconds,
                "rows_read": run.rows_read,
                "rows_accepted": run.rows_accepted,
                "rows_rejected": run.rows_rejected,
                "facts_inserted": run.facts_inserted,
                "facts_updated": run.facts_updated,
                "facts_unchanged": run.facts_unchanged,
            }
            for run in runs
        ],
    }


def run_rejects(engine: Engine, run_id: int, limit: int) -> Json:
    """The rows run `run_id` rejected (by line), at most `limit` of them, and how many it rejected in all
    (a run stores at most `ingest_max_stored_rejects`)."""
    with engine.connect() as conn:
        rejected = conn.scalar(select(IngestionRun.rows_rejected).where(IngestionRun.id == run_id))
    if rejected is None:
        raise NotFoundError(f"no ingestion run with id {run_id}")
    rows = rejected_rows(engine, run_id, limit)
    return {
        "run_id": run_id,
        "rows_rejected": int(rejected),
        "rows": [{"line": row.line, "column": row.column, "reason": row.reason, "raw": row.raw} for row in rows],
    }
