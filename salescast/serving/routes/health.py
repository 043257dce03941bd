"""Liveness, readiness and Prometheus metrics (no API key: load balancers and scrapers call them)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from salescast.errors import StorageError
from salescast.serving.encoding import json_response
from salescast.serving.problems import PROBLEM_SCHEMA
from salescast.serving.routes import API_PREFIX
from salescast.serving.schemas import Health, Ready
from salescast.serving.security import serving_state
from salescast.serving.serve_forecast import current_plan

router = APIRouter(prefix=API_PREFIX, tags=["operations"])
HEALTHY = b'{"status":"ok"}'


@router.get("/health", response_model=Health)
async def health() -> Response:
    """The process answers (liveness); says nothing about its dependencies."""
    return json_response(HEALTHY)


@router.get("/ready", response_model=Ready, responses={503: PROBLEM_SCHEMA})
async def ready(request: Request) -> Response:
    """Ready to serve: the database answers and a production model version is loaded."""
    state = serving_state(request)

    def ping() -> None:
        try:
            with state.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:
            raise StorageError(f"database unreachable: {type(exc).__name__}") from exc

    await run_in_threadpool(ping)
    plan = current_plan(state)
    body = {
        "status": "ready",
        "model": plan.model,
        "model_version": plan.production.version,
        "database": state.engine.dialect.name,
    }
    return json_response(body)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    folder = serving_state(request).settings.metrics_multiproc_dir
    if folder:
        # Several worker processes: add up what each wrote to the shared folder.
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=folder)  # type: ignore[no-untyped-call]
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
