"""The seed's request flow after the caller is known: route to a model version -> cache lookup (the key
carries the version) -> on a miss compute in a worker thread -> encode once -> cache -> respond, and
log the prediction off the request path. A shadow deployment computes the candidate's answer too, after
the response, and logs it without ever returning it."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from salescast.errors import ModelUnavailableError, SalescastError
from salescast.monitoring.logging import request_id_var
from salescast.serving.cache import cache_key
from salescast.serving.encoding import encode, json_response
from salescast.serving.middleware import SERVED_VERSION
from salescast.serving.prediction_log.writer import PredictionRecord, Variant
from salescast.serving.problems import http_status_of
from salescast.serving.routing import Routed, ServedVersion, TrafficPlan
from salescast.serving.security import Caller
from salescast.serving.state import ServingState

log = logging.getLogger("salescast.serving")
ROUTING_SCOPE_KEY = "salescast.routing"


@dataclass(frozen=True)
class Routing:
    """Which version a request was routed to: decided once per request."""

    plan: TrafficPlan
    served: ServedVersion
    variant: Routed


Compute = Callable[[ServedVersion], dict[str, Any]]


class NoModelError(SalescastError):
    """No version of the served model is in production yet."""

    http_status = 503


def current_plan(state: ServingState) -> TrafficPlan:
    plan = state.plans.current()
    if plan is None:
        raise NoModelError(
            f"model {state.settings.model_name!r} has no production version yet; run `salescast pipeline run`"
        )
    return plan


def version_headers(plan: TrafficPlan, served: ServedVersion, variant: str, cached: bool | None) -> dict[str, str]:
    headers = {"X-Model-Version": f"{plan.model}:v{served.version}", "X-Model-Variant": variant}
    if cached is not None:
        headers["X-Cache"] = "hit" if cached else "miss"
    return headers


async def serve_forecast(
    state: ServingState,
    request: Request,
    caller: Caller,
    route: str,
    params: Mapping[str, Any],
    compute: Compute,
    cached: bool = True,
    summarise: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    fallback: Callable[[ServedVersion], ServedVersion | None] | None = None,
) -> Response:
    """Answer a forecast request (see the module docstring). `fallback` names the version to compute with
    when the routed one cannot (its model artifact is broken); the answer, its headers and its log row
    then name the version that computed it."""
    routed = request.scope.get(ROUTING_SCOPE_KEY)  # the fast path routed it already, then missed
    if isinstance(routed, Routing):
        plan, served, variant = routed.plan, routed.served, routed.variant
    else:
        plan = current_plan(state)
        served, variant = plan.route(caller.sticky_key)
    request.scope[SERVED_VERSION] = f"{plan.model}:v{served.version}"  # the metrics' label, should it fail
    started = time.perf_counter()
    status = 500
    try:
        if cached:
            key = cache_key(route, params, plan.model, served.version)
            body, hit = await state.cache.get_or_compute(key, lambda: _computed(plan, served, compute))
        else:
            try:
                body = await _computed(plan, served, compute)
            except ModelUnavailableError:
                alternative = await run_in_threadpool(fallback, served) if fallback is not None else None
                if alternative is None:
                    raise
                served = alternative
                request.scope[SERVED_VERSION] = f"{plan.model}:v{served.version}"
                body = await _computed(plan, served, compute)
            hit = None
        status = 200
    except Exception as exc:
        # The status the client gets (a lost database is a 503, not a 500), so the log agrees with it.
        status = http_status_of(exc)
        raise
    finally:
        log_prediction(state, caller, plan, served, variant, route, params, status, started, served_to_caller=True)
    shadow = plan.shadow_version
    if shadow is not None:
        plan.count_shadow()
        state.spawn(_shadow(state, caller, plan, shadow, route, params, compute, summarise))
    return json_response(body, headers=version_headers(plan, served, variant, hit))


async def _computed(plan: TrafficPlan, served: ServedVersion, compute: Compute) -> bytes:
    body = await run_in_threadpool(compute, served)
    body["model"] = plan.model
    body["model_version"] = served.version
    body["generated_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return encode(body)


async def _shadow(
    state: ServingState,
    caller: Caller,
    plan: TrafficPlan,
    shadow: ServedVersion,
    route: str,
    params: Mapping[str, Any],
    compute: Compute,
    summarise: Callable[[dict[str, Any]], dict[str, Any]] | None,
) -> None:
    started = time.perf_counter()
    status, result = 500, None
    try:
        body = await run_in_threadpool(compute, shadow)
        status = 200
        result = summarise(body) if summarise else None
    except SalescastError as exc:
        status = exc.http_status
    except Exception as exc:
        status = http_status_of(exc)
        log.exception("shadow.failed", extra={"model_version": shadow.version, "route": route})
    log_prediction(
        state, caller, plan, shadow, "shadow", route, params, status, started, served_to_caller=False, result=result
    )


def log_prediction(
    state: ServingState,
    caller: Caller,
    plan: TrafficPlan,
    served: ServedVersion,
    variant: Variant,
    route: str,
    params: Mapping[str, Any],
    status: int,
    started: float,
    served_to_caller: bool,
    result: dict[str, Any] | None = None,
) -> None:
    state.predictions.log(
        PredictionRecord(
            at=dt.datetime.now(dt.UTC),
            request_id=request_id_var.get() or "",
            key_id=caller.key_id,
            model_name=plan.model,
            model_version=served.version,
            variant=variant,
            served=served_to_caller,
            route=route,
            params={k: v for k, v in params.items() if v is not None},
            status_code=status,
            latency_ms=(time.perf_counter() - started) * 1000,
            result=result,
        )
    )
