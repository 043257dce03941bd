"""Liveness, readiness and Prometheus metrics (no API key: load balancers and scrapers call them)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from salescast.monitoring.db_metrics import DatabaseCollector
from salescast.serving.encoding import json_response
from salescast.serving.problems import PROBLEM_SCHEMA
from salescast.serving.readiness import readiness
from salescast.serving.routes import API_PREFIX
from salescast.serving.schemas import Health, Ready
from salescast.serving.security import serving_state
from salescast.serving.state import ServingState

router = APIRouter(prefix=API_PREFIX, tags=["operations"])
HEALTHY = b'{"status":"ok"}'


@router.get("/health", response_model=Health)
async def health() -> Response:
    """The process answers (liveness); says nothing about its dependencies."""
    return json_response(HEALTHY)


@router.get("/ready", response_model=Ready, responses={503: PROBLEM_SCHEMA})
async def ready(request: Request) -> Response:
    """Ready to serve: the database answers and a production version is known (503 otherwise). `degraded`
    when the production version's model artifact is unusable: reads still answer, `detail` says what
    computes what-ifs meanwhile."""
    return json_response(await run_in_threadpool(readiness, serving_state(request)))


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    state = serving_state(request)
    folder = state.settings.metrics_multiproc_dir
    if folder:
        # Several worker processes: add up what each wrote to the shared folder.
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=folder)  # type: ignore[no-untyped-call]
        counted = generate_latest(registry)
    else:
        counted = generate_latest()
    # What the worker and the CLI record (training, ingestion, live accuracy, drift) is read from the
    # database, the same in every process: appended, never summed across workers.
    recorded = await run_in_threadpool(generate_latest, _database_metrics(request, state))
    return Response(counted + recorded, media_type=CONTENT_TYPE_LATEST)


def _database_metrics(request: Request, state: ServingState) -> CollectorRegistry:
    registry: CollectorRegistry | None = getattr(request.app.state, "database_metrics", None)
    if registry is None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(DatabaseCollector(state.engine, state.settings.metrics_database_seconds))
        request.app.state.database_metrics = registry
    return registry
