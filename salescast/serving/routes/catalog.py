"""Catalogue routes: categories and a searchable, paginated product list."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from salescast.serving import queries
from salescast.serving.encoding import json_response
from salescast.serving.problems import CLIENT_PROBLEMS, PROBLEM_SCHEMA
from salescast.serving.product_calendar import product_calendar
from salescast.serving.routes import API_PREFIX
from salescast.serving.schemas import TEXT, Category, ProductCalendar, ProductPage, StoreOut
from salescast.serving.security import Caller, read_access, serving_state

router = APIRouter(prefix=API_PREFIX, tags=["catalogue"], responses=CLIENT_PROBLEMS)


@router.get("/categories", response_model=list[Category])
async def categories(request: Request, caller: Caller = Depends(read_access)) -> Response:
    """Every category with its parent, sub-categories and number of products."""
    state = serving_state(request)
    return json_response(await run_in_threadpool(queries.categories, state.read_engine))


@router.get("/stores", response_model=list[StoreOut])
async def stores(request: Request, caller: Caller = Depends(read_access)) -> Response:
    """Every store's code and name, by code."""
    return json_response(await run_in_threadpool(queries.stores, serving_state(request).engine))


@router.get("/products", response_model=ProductPage, responses={404: PROBLEM_SCHEMA})
async def products(
    request: Request,
    search: Annotated[str | None, Query(min_length=1, max_length=200, pattern=TEXT)] = None,
    category: Annotated[str | None, Query(min_length=1, max_length=200, pattern=TEXT)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
    caller: Caller = Depends(read_access),
) -> Response:
    """Products whose id or name contains `search` (case-insensitive), in a category, a page at a time."""
    state = serving_state(request)
    page_body = await run_in_threadpool(queries.products, state.read_engine, search, category, page, page_size)
    return json_response(page_body)


@router.get("/products/{product_id}/calendar", response_model=ProductCalendar, responses={404: PROBLEM_SCHEMA})
async def calendar(
    request: Request,
    product_id: Annotated[str, Path(min_length=1, max_length=200, pattern=TEXT)],
    start: dt.date,
    days: Annotated[int, Query(ge=1, le=800)] = 120,
    caller: Caller = Depends(read_access),
) -> Response:
    """The product's promotion days (in any store) and the public holidays (holiday_country) in the
    `days` days from `start`: what a chart of its sales and forecast marks."""
    state = serving_state(request)
    country = state.settings.holiday_country
    body = await run_in_threadpool(product_calendar, state.engine, product_id, start, days, country)
    return json_response(body)
