"""Request id, security headers, metrics and the access log as one plain ASGI middleware (no per-request
task or copy: Starlette's BaseHTTPMiddleware would cost a good share of a cached request's time). It wraps
the whole app, Starlette's error middleware included (see app.py), so a crash's 500 carries them too."""

from __future__ import annotations

import functools
import itertools
import logging
import re
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from salescast.monitoring.emf import emit, request_metrics
from salescast.monitoring.logging import REQUEST_ID_SCOPE_KEY, request_id_var
from salescast.monitoring.metrics import LATENCY, REQUESTS
from salescast.serving.problems import problem
from salescast.serving.security import CALLER_SCOPE_KEY
from salescast.serving.security_headers import CSP, SecurityHeaders

access = logging.getLogger("salescast.access")
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
REQUEST_ID = b"x-request-id"
MODEL_VERSION = b"x-model-version"
CONTENT_TYPE = b"content-type"
FAST_ROUTE_TEMPLATE = "salescast.route_template"  # set by the fast path, which answers before routing
# The version a forecast was routed to, as `model:vN`, set before it is computed: a request that fails
# has no X-Model-Version header, but its metrics still name the version that failed it.
SERVED_VERSION = "salescast.served_version"
MEMO_ENTRIES = 4096  # distinct query strings remembered (see CachedAnswers too)


class RequestContextMiddleware:
    def __init__(
        self, app: ASGIApp, security: SecurityHeaders, access_log: bool = True, emf_namespace: str | None = None
    ) -> None:
        self.app = app
        self.security = security
        self.access_log = access_log
        self.emf_namespace = emf_namespace  # None = no CloudWatch EMF lines
        # Request ids: a random 64-bit prefix per process and a counter, 32 hex digits like a uuid4 but
        # without a system call per request (os.urandom showed in the profile of a cached answer).
        self._id_prefix = uuid.uuid4().hex[:16]
        self._id_counter = itertools.count()
        self._series: dict[tuple[str, str, int, str], tuple[Any, Any]] = {}
        # A busy route's few query strings are checked once each.
        self._repeated_parameter = functools.lru_cache(maxsize=MEMO_ENTRIES)(_repeated_parameter)

    def _new_request_id(self) -> str:
        return f"{self._id_prefix}{next(self._id_counter):016x}"

    def _count(self, route: str, method: str, status: int, version: str, seconds: float) -> None:
        # Labelled series looked up once each: prometheus' labels() is a good share of a cached answer.
        key = (route, method, status, version)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = (REQUESTS.labels(route, method, str(status), version), LATENCY.labels(route))
        series[0].inc()
        series[1].observe(seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or self._new_request_id()
        scope[REQUEST_ID_SCOPE_KEY] = request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        version = ""
        secure = self.security.secure(scope)

        async def send_with_id(message: Message) -> None:
            nonlocal status, version
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                kind = 0
                for name, value in headers:
                    if name == MODEL_VERSION:
                        version = value.decode("latin-1")
                    elif name == CSP:
                        kind = 2
                    elif name == CONTENT_TYPE and kind == 0 and value.startswith(b"text/html"):
                        kind = 1
                headers.append((REQUEST_ID, request_id.encode()))
                headers += self.security.for_response(secure, kind)
                message["headers"] = headers
            await send(message)

        try:
            repeated = self._repeated_parameter(scope["query_string"])
            if repeated is None:
                await self.app(scope, receive, send_with_id)
            else:
                # `?limit=5&limit=50` is ambiguous; FastAPI would quietly take the last one.
                detail = f"query parameter {repeated!r} is given more than once"
                await problem(422, detail, scope["path"])(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = _route_template(scope)
            if not version:
                version = scope.get(SERVED_VERSION, "")
            self._count(route, scope["method"], status, version, seconds)
            milliseconds = round(seconds * 1000, 2)
            if self.access_log:
                caller = scope.get(CALLER_SCOPE_KEY)
                access.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "route": route,
                        "path": scope["path"],
                        "status": status,
                        "latency_ms": milliseconds,
                        "model_version": version or None,
                        # The key's id and public prefix; its secret never reaches a log.
                        "key_id": getattr(caller, "key_id", None),
                        "key_prefix": getattr(caller, "prefix", None),
                    },
                )
            if self.emf_namespace is not None:
                method = scope["method"]
                emit(request_metrics(self.emf_namespace, route, method, status, version, milliseconds, request_id))
            request_id_var.reset(token)


def _repeated_parameter(query: bytes) -> str | None:
    if b"&" not in query:  # the common case costs one scan
        return None
    names = [part.partition(b"=")[0] for part in query.split(b"&") if part]
    if len(names) == len(set(names)) and b"%" not in query and b"+" not in query:
        return None
    # Encoded names (`lim%69t`) count as what they decode to, as FastAPI would read them.
    decoded = [name for name, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True)]
    return next((name for name in decoded if decoded.count(name) > 1), None)


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == REQUEST_ID:
            candidate = value.decode("latin-1")
            # A caller's id is kept for tracing across services, but only if it cannot forge log lines.
            return candidate if _SAFE_REQUEST_ID.match(candidate) else None
    return None


def _route_template(scope: Scope) -> str:
    fast: str | None = scope.get(FAST_ROUTE_TEMPLATE)
    if fast is not None:
        return fast
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    # Unmatched paths are one label, not one per URL a scanner tries.
    return path if isinstance(path, str) else "unmatched"
