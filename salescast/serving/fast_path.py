"""Cached answers served before FastAPI parses the request.

FastAPI's parameter and dependency machinery costs more than everything else a cached answer needs
(about 60 us of a request that is otherwise a dictionary lookup). For the routes listed, this ASGI
middleware does the same steps in the same order through the same functions (authorize -> route to a
version -> cache lookup -> log) and answers a hit itself. Anything it cannot be sure of goes on to
FastAPI unchanged: unknown or unparsable parameters, a miss, a shadow deployment. A hit can only be
an answer the route computed and cached for the same parameters, so an invalid request never gets
one: its key was never stored.

The caller and the routing it decided travel on in the scope, so a miss is not authorized, rate
limited or routed twice.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from pydantic import BaseModel
from starlette.types import ASGIApp, Receive, Scope, Send

from salescast.errors import SalescastError
from salescast.serving.cache import cache_key
from salescast.serving.encoding import json_response
from salescast.serving.middleware import FAST_ROUTE_TEMPLATE
from salescast.serving.problems import problem_for
from salescast.serving.security import CALLER_SCOPE_KEY, authorize
from salescast.serving.serve_forecast import ROUTING_SCOPE_KEY, Routing, log_prediction, version_headers

_HEADERS = {b"authorization": "authorization", b"x-api-key": "api_key", b"x-client-id": "client_id"}


@dataclass(frozen=True)
class FastRoute:
    name: str  # the cache key's endpoint name, as the route uses it
    scope: str  # the scope the route needs
    defaults: Mapping[str, str | None]  # every query parameter, its default as text (None: absent)


def query_defaults(model: type[BaseModel]) -> dict[str, str | None]:
    """The query parameters of a route's query model with their defaults, as the route's cache key
    renders them (`str()` of the value)."""
    return {name: None if field.default is None else str(field.default) for name, field in model.model_fields.items()}


def _params(query: bytes, defaults: Mapping[str, str | None]) -> dict[str, str | None] | None:
    text = query.decode("latin-1")
    if "%" in text or "+" in text:
        given = dict(parse_qsl(text, keep_blank_values=True))
    else:  # plain parameters, the usual case: no decoding to do
        given = dict(part.partition("=")[::2] for part in text.split("&") if part)
    if not given.keys() <= defaults.keys():
        return None  # FastAPI refuses unknown parameters; let it say so
    return {name: given.get(name, default) for name, default in defaults.items()}


class CachedAnswers:
    def __init__(self, app: ASGIApp, routes: Mapping[str, FastRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "GET" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        state = scope["app"].state.salescast
        started = time.perf_counter()
        scope[FAST_ROUTE_TEMPLATE] = scope["path"]
        found: dict[str, Any] = {}
        for name, value in scope["headers"]:
            if name in _HEADERS:
                found[_HEADERS[name]] = value.decode("latin-1")
        client = scope.get("client")
        try:
            caller = await authorize(
                state,
                route.scope,
                found.get("authorization"),
                found.get("api_key"),
                found.get("client_id"),
                client[0] if client else None,
            )
        except SalescastError as exc:
            await problem_for(exc, scope["path"])(scope, receive, send)
            return
        scope[CALLER_SCOPE_KEY] = caller
        plan = state.plans.current()
        params = _params(scope["query_string"], route.defaults)
        if plan is None or plan.shadow_version is not None or params is None:
            await self.app(scope, receive, send)
            return
        served, variant = plan.route(caller.sticky_key)
        scope[ROUTING_SCOPE_KEY] = Routing(plan, served, variant)
        body = await state.cache.lookup(cache_key(route.name, params, plan.model, served.version))
        if body is None:
            await self.app(scope, receive, send)
            return
        log_prediction(state, caller, plan, served, variant, route.name, params, 200, started, served_to_caller=True)
        await json_response(body, headers=version_headers(plan, served, variant, True))(scope, receive, send)
