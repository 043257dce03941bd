"""Live health of model versions, read from the prediction log: what rollouts judge a candidate by."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, case, func, select

from salescast.data.database import as_utc
from salescast.data.schema import PredictionLogEntry

# A p99 needs at least 100 values to be more than the maximum.
MIN_REQUESTS_FOR_P99 = 100
P99_SAMPLE_ROWS = 50_000


@dataclass(frozen=True)
class VariantStats:
    """Served requests of one model version in a time window, for rollout checks."""

    requests: int
    errors: int  # status code >= 500
    error_rate: float  # errors / requests; 0 without requests
    mean_latency_ms: float  # 0 without requests
    # nearest-rank over the latest P99_SAMPLE_ROWS requests; None below MIN_REQUESTS_FOR_P99 requests
    p99_latency_ms: float | None


def variant_stats(
    engine: Engine, model_name: str, since: dt.datetime, versions: Sequence[int]
) -> dict[int, VariantStats]:
    """Per version of `model_name`, what it served since `since` (rows with served=True only); every
    version asked for has an entry."""
    since = as_utc(since)
    window = (
        PredictionLogEntry.model_name == model_name,
        PredictionLogEntry.served.is_(True),
        PredictionLogEntry.at >= since,
    )
    stats = {version: VariantStats(0, 0, 0.0, 0.0, None) for version in versions}
    if not stats:
        return stats
    with engine.connect() as conn:
        totals = conn.execute(
            select(
                PredictionLogEntry.model_version,
                func.count(),
                func.sum(case((PredictionLogEntry.status_code >= 500, 1), else_=0)),
                func.avg(PredictionLogEntry.latency_ms),
            )
            .where(*window, PredictionLogEntry.model_version.in_(list(stats)))
            .group_by(PredictionLogEntry.model_version)
        ).all()
        for version, requests, errors, mean_latency in totals:
            p99: float | None = None
            if requests >= MIN_REQUESTS_FOR_P99:
                latencies = sorted(
                    conn.scalars(
                        select(PredictionLogEntry.latency_ms)
                        .where(*window, PredictionLogEntry.model_version == version)
                        .order_by(PredictionLogEntry.at.desc())
                        .limit(P99_SAMPLE_ROWS)
                    )
                )
                p99 = latencies[math.ceil(0.99 * len(latencies)) - 1]
            stats[version] = VariantStats(
                requests=int(requests),
                errors=int(errors or 0),
                error_rate=int(errors or 0) / int(requests),
                mean_latency_ms=float(mean_latency),
                p99_latency_ms=p99,
            )
    return stats
