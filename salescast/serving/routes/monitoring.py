"""Monitoring routes: live accuracy of the versions that served, as actuals arrive (read scope)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from salescast.errors import NotFoundError
from salescast.monitoring.live_accuracy import accuracy
from salescast.serving.encoding import json_response
from salescast.serving.problems import CLIENT_PROBLEMS, PROBLEM_SCHEMA
from salescast.serving.routes import API_PREFIX
from salescast.serving.schemas import TEXT
from salescast.serving.security import Caller, read_access, serving_state

router = APIRouter(prefix=f"{API_PREFIX}/models", tags=["monitoring"], responses=CLIENT_PROBLEMS)
ModelName = Annotated[str, Path(min_length=1, max_length=200, pattern=TEXT)]


class LiveAccuracyRow(BaseModel):
    """Realised accuracy of a version's stored p50 forecasts against the actuals ingested so far, pooled
    over the series (and days) of the row; WAPE and bias in percent, null when no units were sold."""

    model: str
    version: int
    category: str | None = Field(description="null in rows per version")
    horizon_day: int | None = Field(description="days after the version's training data ended; null unless by=horizon")
    points: int = Field(description="(series, day) pairs with an actual")
    mae: float | None
    wape: float | None
    mase: float | None = Field(description="mean |error| / the series' in-sample seasonal naive MAE in training")
    bias: float | None = Field(description="sum(forecast - actual) / sum |actual|, percent; positive = over-forecast")
    first_date: dt.date
    last_date: dt.date


def live_accuracy(state: Any, name: str, by: str, version: int | None) -> list[dict[str, object]]:
    if not state.registry.versions(name):
        raise NotFoundError(f"no model named {name!r}")
    versions = None if version is None else [version]
    return [row.as_dict() for row in accuracy(state.engine, name, level=by, versions=versions)]


@router.get("/{name}/accuracy", response_model=list[LiveAccuracyRow], responses={404: PROBLEM_SCHEMA})
async def model_accuracy(
    request: Request,
    name: ModelName,
    by: Annotated[
        Literal["version", "category", "horizon"],
        Query(description="rows per version, per version and category, or per horizon day too"),
    ] = "category",
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="only this version")] = None,
    caller: Caller = Depends(read_access),
) -> Response:
    """Live accuracy of the versions that served (production or challenger) per version, per version and
    category, or per version, category and horizon day: MAE, WAPE, MASE and bias of their stored forecasts
    against the actuals ingested since their training data ended (see docs/operations/monitoring.md).
    Newest version first; empty until such actuals arrive."""
    state = serving_state(request)
    return json_response(await run_in_threadpool(live_accuracy, state, name, by, version))
