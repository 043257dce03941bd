"""Liveness, readiness and Prometheus metrics (no API key: load balancers and scrapers call them)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from salescast.serving.encoding import json_response
from salescast.serving.problems import PROBLEM_SCHEMA
from salescast.serving.readiness import readiness
from salescast.serving.routes import API_PREFIX
from salescast.serving.schemas import Health, Ready
from salescast.serving.security import serving_state

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
    folder = serving_state(request).settings.metrics_multiproc_dir
    if folder:
        # Several worker processes: add up what each wrote to the shared folder.
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=folder)  # type: ignore[no-untyped-call]
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
