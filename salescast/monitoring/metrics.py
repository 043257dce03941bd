"""Prometheus metrics of the serving path, defined once so that every module counts into the same series.

With several server worker processes, prometheus-client's multiprocess mode (a shared folder, set by
`salescast serve` from `metrics_multiproc_dir`) adds their samples up at `/metrics`.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "salescast_http_requests_total",
    "HTTP requests answered, by route template, method, status and the model version that served them.",
    ["route", "method", "status", "model_version"],
)
LATENCY = Histogram(
    "salescast_http_request_duration_seconds",
    "Time from request to response, by route template.",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
CACHE_LOOKUPS = Counter(
    "salescast_cache_lookups_total", "Response-cache lookups by backend and result (hit, miss).", ["backend", "result"]
)
CACHE_ERRORS = Counter(
    "salescast_cache_errors_total",
    "Cache operations that failed (backend down); the request was served uncached.",
    ["backend", "operation"],
)
CACHE_COMPUTES = Counter(
    "salescast_cache_computes_total", "Responses computed on a miss (once per burst of identical misses)."
)
RATE_LIMITED = Counter("salescast_rate_limited_total", "Requests refused with 429, by limiter backend.", ["backend"])
RATE_LIMIT_ERRORS = Counter(
    "salescast_rate_limit_errors_total", "Rate-limiter backend failures; the in-process limiter decided instead."
)
AUTH_FAILURES = Counter("salescast_auth_failures_total", "Requests refused by authentication or scope.", ["reason"])
PREDICTIONS_LOGGED = Counter("salescast_prediction_log_written_total", "Prediction-log rows written.")
PREDICTIONS_DROPPED = Counter(
    "salescast_prediction_log_dropped_total", "Prediction-log rows dropped (database down and the buffer full)."
)
PREDICTIONS_PENDING = Gauge(
    "salescast_prediction_log_pending", "Prediction-log rows waiting to be written.", multiprocess_mode="livesum"
)
TRAFFIC = Counter(
    "salescast_traffic_assignments_total",
    "Requests routed to each variant of a deployment (production, challenger), and shadow computations.",
    ["model", "variant"],
)
TRAFFIC_SHARE = Gauge(
    "salescast_traffic_share",
    "Share of requests each variant of a model serves (production, challenger), as this replica last saw it.",
    ["model", "variant"],
    multiprocess_mode="livemax",
)
DEPLOYMENT_EVENTS = Counter(
    "salescast_deployment_events_total",
    "Rollout events: step advanced, completed, rolled back, stopped.",
    ["model", "event"],
)
MODEL_VERSION = Gauge(
    "salescast_model_version_served",
    "The version each alias of a model points to, as this replica last saw it.",
    ["model", "alias"],
    multiprocess_mode="livemax",
)
