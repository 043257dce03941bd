"""Catalogue routes: categories and a searchable, paginated product list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from salescast.serving import queries
from salescast.serving.encoding import json_response
from salescast.serving.problems import CLIENT_PROBLEMS, PROBLEM_SCHEMA
from salescast.serving.routes import API_PREFIX
from salescast.serving.schemas import TEXT, Category, ProductPage
from salescast.serving.security import Caller, read_access, serving_state

router = APIRouter(prefix=API_PREFIX, tags=["catalogue"], responses=CLIENT_PROBLEMS)


@router.get("/categories", response_model=list[Category])
async def categories(request: Request, caller: Caller = Depends(read_access)) -> Response:
    """Every category with its parent, sub-categories and number of products."""
    state = serving_state(request)
    return json_response(await run_in_threadpool(queries.categories, state.read_engine))


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
