"""Cached answers served before FastAPI parses the request.

FastAPI's parameter and dependency machinery costs more than everything else a cached answer needs
(about 60 us of a request that is otherwise a dictionary lookup). For the routes listed, this ASGI
middleware does the same steps in the same order through the same functions (authorize -> route to a
version -> cache lookup -> log) and answers a hit itself. Its parameters are the route's own: the
query is validated by the route's query model, so the cache key and the logged parameters are those
the route would make (`limit=010` is `limit=10`). Anything it cannot be sure of goes on to FastAPI
unchanged: parameters the model refuses (FastAPI then says why), a miss, a shadow deployment.

The caller and the routing it decided travel on in the scope, so a miss is not authorized, rate
limited or routed twice.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from salescast.errors import SalescastError
from salescast.serving.cache import cache_key
from salescast.serving.encoding import JSON
from salescast.serving.middleware import FAST_ROUTE_TEMPLATE, MEMO_ENTRIES
from salescast.serving.problems import problem_for
from salescast.serving.security import CALLER_SCOPE_KEY, authorize
from salescast.serving.serve_forecast import ROUTING_SCOPE_KEY, Routing, log_prediction, version_headers

JSON_BYTES = JSON.encode()
Params = dict[str, Any]
_HEADERS = {b"authorization": "authorization", b"x-api-key": "api_key", b"x-client-id": "client_id"}


@dataclass(frozen=True)
class FastRoute:
    name: str  # the cache key's endpoint name, as the route uses it
    scope: str  # the scope the route needs
    query: type[BaseModel]  # the route's query model (unknown parameters forbidden)


def _params(query: bytes, model: type[BaseModel]) -> Params | None:
    """The parameters as the route gets them (its query model's dump, defaults filled in); None when the
    model refuses them."""
    text = query.decode("latin-1")  # as Starlette reads a query string
    if "%" in text or "+" in text:
        given = dict(parse_qsl(text, keep_blank_values=True))
    else:  # plain parameters, the usual case: no decoding to do
        given = dict(part.partition("=")[::2] for part in text.split("&") if part)
    try:
        return model.model_validate(given).model_dump()
    except ValidationError:
        return None


class CachedAnswers:
    def __init__(self, app: ASGIApp, routes: Mapping[str, FastRoute]) -> None:
        self.app = app
        self.routes = routes
        # A busy route sees the same few query strings over and over: parsing one and building its
        # cache key was a sixth of a cached answer's Python time (validating it would be more). Both
        # depend on nothing else (the key on the model version too), so each is worked out once, the
        # least recently used forgotten beyond MEMO_ENTRIES. The parameters are shared: read-only.
        self._params = functools.lru_cache(maxsize=MEMO_ENTRIES)(_params)
        self._keys = functools.lru_cache(maxsize=MEMO_ENTRIES)(self._key)

    def _key(self, name: str, model_class: type[BaseModel], query: bytes, model: str, version: int) -> str:
        params = self._params(query, model_class)
        assert params is not None  # asked only for a query whose parameters were valid
        return cache_key(name, params, model, version)

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
        query = scope["query_string"]
        params = self._params(query, route.query)
        if plan is None or plan.shadow_version is not None or params is None:
            await self.app(scope, receive, send)
            return
        served, variant = plan.route(caller.sticky_key)
        scope[ROUTING_SCOPE_KEY] = Routing(plan, served, variant)
        body = await state.cache.lookup(self._keys(route.name, route.query, query, plan.model, served.version))
        if body is None:
            await self.app(scope, receive, send)
            return
        log_prediction(state, caller, plan, served, variant, route.name, params, 200, started, served_to_caller=True)
        # Sent as two ASGI messages: a Response object (header normalisation included) cost a tenth of
        # the answer.
        headers = [(b"content-type", JSON_BYTES), (b"content-length", str(len(body)).encode())]
        versions = version_headers(plan, served, variant, True)
        headers += [(name.lower().encode(), value.encode()) for name, value in versions.items()]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
