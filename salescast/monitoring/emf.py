"""CloudWatch embedded metric format (EMF): a request's metrics as one JSON line on stdout.

CloudWatch Logs turns such a line into metrics by itself (Lambda's log stream, ECS/Fargate with the awslogs
driver), so the request count and latency reach CloudWatch without an agent or a PutMetricData call.
The shape is the one AWS documents: `_aws` holds the timestamp and one metric directive (namespace,
dimension sets, metric names and units); dimension and metric values are top-level members.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson

emf = logging.getLogger("salescast.emf")

# Dimension values are strings; a request no model version answered (a 401, a 404) is "none".
DIMENSIONS = ("route", "method", "status", "model_version")
REQUESTS_METRIC = "Requests"
LATENCY_METRIC = "Latency"


def request_metrics(
    namespace: str,
    route: str,
    method: str,
    status: int,
    model_version: str,
    milliseconds: float,
    request_id: str | None,
    timestamp_ms: int | None = None,
) -> dict[str, Any]:
    """One request's EMF document: a count of 1 and its latency, by route, method, status and version."""
    return {
        "_aws": {
            "Timestamp": timestamp_ms if timestamp_ms is not None else int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": [list(DIMENSIONS)],
                    "Metrics": [
                        {"Name": REQUESTS_METRIC, "Unit": "Count"},
                        {"Name": LATENCY_METRIC, "Unit": "Milliseconds"},
                    ],
                }
            ],
        },
        "route": route,
        "method": method,
        "status": str(status),
        "model_version": model_version or "none",
        REQUESTS_METRIC: 1,
        LATENCY_METRIC: milliseconds,
        # Not a dimension (one per request would be a metric per request): searchable in the log only.
        "request_id": request_id,
    }


def emit(document: dict[str, Any]) -> None:
    """Write one EMF line through the `salescast.emf` logger (see configure_emf)."""
    emf.info(orjson.dumps(document).decode())


class _Raw(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return record.getMessage()


def configure_emf() -> None:
    """EMF lines go to stdout bare: CloudWatch parses a line only when it is the EMF document itself."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_Raw())
    emf.handlers[:] = [handler]
    emf.setLevel(logging.INFO)
    emf.propagate = False
