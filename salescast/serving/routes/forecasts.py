"""Forecast routes: ranked products, one product's daily forecast, and live what-if scenarios."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import Response

from salescast.serving import queries
from salescast.serving.fast_path import FastRoute
from salescast.serving.limits import MAX_HORIZON, check_horizon
from salescast.serving.models import fallback_version, what_if
from salescast.serving.problems import CLIENT_PROBLEMS, PROBLEM_SCHEMA
from salescast.serving.routes import API_PREFIX
from salescast.serving.routing import ServedVersion
from salescast.serving.schemas import TEXT, ProductForecast, TopProducts, TopProductsQuery, WhatIf, WhatIfRequest
from salescast.serving.security import Caller, predict_access, read_access, serving_state
from salescast.serving.serve_forecast import serve_forecast

router = APIRouter(prefix=f"{API_PREFIX}/forecast", tags=["forecasts"], responses=CLIENT_PROBLEMS)
Name = Annotated[str | None, Query(min_length=1, max_length=200, pattern=TEXT)]


@router.get("/top-products", response_model=TopProducts, responses={404: PROBLEM_SCHEMA, 503: PROBLEM_SCHEMA})
async def top_products(
    request: Request, query: Annotated[TopProductsQuery, Query()], caller: Caller = Depends(read_access)
) -> Response:
    """Products ranked by their forecast over the next week, month (30 days) or quarter (91 days)."""
    state = serving_state(request)

    def compute(served: ServedVersion) -> dict[str, Any]:
        q, engine = query, state.read_engine
        return queries.top_products(engine, served.id, q.time_period, q.category, q.store, q.limit, q.rank_by)

    params = query.model_dump()
    return await serve_forecast(state, request, caller, "top-products", params, compute, summarise=_ranking)


# Served from the cache before FastAPI parses them (salescast/serving/fast_path.py).
FAST_ROUTES = {
    f"{API_PREFIX}/forecast/top-products": FastRoute("top-products", "read", TopProductsQuery),
}


def _ranking(body: dict[str, Any]) -> dict[str, Any]:
    return {"products": [p["product_id"] for p in body["products"]], "total": body["total"]}


@router.get(
    "/products/{product_id}", response_model=ProductForecast, responses={404: PROBLEM_SCHEMA, 422: PROBLEM_SCHEMA}
)
async def product_forecast(
    request: Request,
    product_id: Annotated[str, Path(min_length=1, max_length=200, pattern=TEXT)],
    # The upper bound the document states is stored_forecast_days (see salescast/serving/limits.py).
    horizon: Annotated[int, Query(ge=1, le=MAX_HORIZON)] = 28,
    store: Name = None,
    history_days: Annotated[int, Query(ge=0, le=730)] = 56,
    caller: Caller = Depends(read_access),
) -> Response:
    """One product's daily forecast with p10/p50/p90, over all its stores or one, and its recent sales."""
    state = serving_state(request)
    check_horizon(horizon, state.settings.stored_forecast_days, "the days of forecasts stored")
    params = {"product": product_id, "store": store, "horizon": horizon, "history_days": history_days}

    def compute(served: ServedVersion) -> dict[str, Any]:
        return queries.product_forecast(state.read_engine, served.id, product_id, store, horizon, history_days)

    return await serve_forecast(state, request, caller, "product-forecast", params, compute)


@router.post("/what-if", response_model=WhatIf, responses={404: PROBLEM_SCHEMA, 422: PROBLEM_SCHEMA})
async def what_if_forecast(request: Request, body: WhatIfRequest, caller: Caller = Depends(predict_access)) -> Response:
    """A product's forecast under a changed price or promotion plan, computed live by the model, beside
    the forecast under today's plan."""
    state = serving_state(request)
    check_horizon(body.horizon, state.settings.pipeline_horizon, "the horizon the models are trained for")
    params = body.model_dump(mode="json", exclude_none=True)

    def compute(served: ServedVersion) -> dict[str, Any]:
        version = state.registry.version(state.settings.model_name, served.version)
        return what_if(
            state.engine,
            state.models,
            version,
            body.product,
            body.store,
            body.horizon or version.horizon,
            price=body.price,
            price_change_pct=body.price_change_pct,
            promotion_days=body.promotion_days,
            promotion=body.promotion,
            promotion_discount_pct=body.promotion_discount_pct,
            price_factor=state.settings.what_if_price_factor,
        )

    def fallback(broken: ServedVersion) -> ServedVersion | None:
        row = fallback_version(
            state.registry, state.models, state.registry.version(state.settings.model_name, broken.version)
        )
        return None if row is None else ServedVersion(row.id, row.version)

    return await serve_forecast(state, request, caller, "what-if", params, compute, cached=False, fallback=fallback)
