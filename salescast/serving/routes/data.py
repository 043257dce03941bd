"""Data routes: the latest ingestion runs with the store's freshness, and the rows a run rejected."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from salescast.serving.encoding import json_response
from salescast.serving.ingestion_status import ingestion_overview, run_rejects
from salescast.serving.problems import CLIENT_PROBLEMS, PROBLEM_SCHEMA
from salescast.serving.routes import API_PREFIX
from salescast.serving.schemas import IngestionOverview, RunRejects
from salescast.serving.security import Caller, read_access, serving_state

router = APIRouter(prefix=f"{API_PREFIX}/data", tags=["data"], responses=CLIENT_PROBLEMS)


@router.get("/runs", response_model=IngestionOverview)
async def runs(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    caller: Caller = Depends(read_access),
) -> Response:
    """The newest ingestion runs with their counts and status, the newest sales date (freshness) and the
    size of the store."""
    return json_response(await run_in_threadpool(ingestion_overview, serving_state(request).engine, limit))


@router.get("/runs/{run_id}/rejects", response_model=RunRejects, responses={404: PROBLEM_SCHEMA})
async def rejects(
    request: Request,
    run_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    caller: Caller = Depends(read_access),
) -> Response:
    """The rows an ingestion run rejected: line, column and reason, in line order."""
    return json_response(await run_in_threadpool(run_rejects, serving_state(request).engine, run_id, limit))
