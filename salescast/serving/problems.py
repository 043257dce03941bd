"""One error shape for the whole API: RFC 9457 (7807) problem details, never a stack trace.

Each salescast error type carries its HTTP status (`errors.py`); this module is the one place that
turns errors into responses. Anything unexpected is logged with its trace and answered as a bare 500
that names the request id, so an operator can find the log line.
"""

from __future__ import annotations

import logging
import math
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from salescast.errors import ArtifactIntegrityError, AuthenticationError, RateLimitedError, SalescastError
from salescast.monitoring.logging import REQUEST_ID_SCOPE_KEY, request_id_var
from salescast.serving.encoding import PROBLEM_JSON, encode

log = logging.getLogger("salescast.serving")
PROBLEM_BASE = "https://salescast.dev/problems/"

PROBLEM_SCHEMA: dict[str, Any] = {
    "description": "An error, as RFC 9457 problem details",
    "content": {
        PROBLEM_JSON: {
            "schema": {
                "type": "object",
                "required": ["type", "title", "status", "detail"],
                "properties": {
                    "type": {"type": "string"},
                    "title": {"type": "string"},
                    "status": {"type": "integer"},
                    "detail": {"type": "string"},
                    "instance": {"type": "string"},
                    "request_id": {"type": ["string", "null"]},
                    "errors": {"type": "array", "items": {"type": "object"}},
                },
            }
        }
    },
}

# Every 503 says when to try again (RFC 9110): a client or a load balancer backs off instead of hammering.
RETRY_AFTER_SECONDS = "5"
# A 401 names the scheme to authenticate with (RFC 9110); X-API-Key is the alternative the detail names.
WWW_AUTHENTICATE = 'Bearer realm="salescast"'

# Every route that takes an API key and parameters can answer these (422 replaces FastAPI's own
# validation-error schema: ours are problem details too).
CLIENT_PROBLEMS: dict[int | str, dict[str, Any]] = dict.fromkeys((400, 401, 403, 422, 429), PROBLEM_SCHEMA)


def problem(
    status: int,
    detail: str,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    request_id: str | None = None,
    **extra: Any,
) -> Response:
    title = HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + title.lower().replace(" ", "-"),
        "title": title,
        "status": status,
        "detail": detail,
        "request_id": request_id or request_id_var.get(),
    }
    if instance is not None:
        body["instance"] = instance
    body.update(extra)
    if status == 503 and not (headers and "Retry-After" in headers):
        headers = {**(headers or {}), "Retry-After": RETRY_AFTER_SECONDS}
    return Response(encode(body), status_code=status, headers=headers, media_type=PROBLEM_JSON)


def http_status_of(exc: BaseException) -> int:
    """The status a client gets for `exc` (the handlers below decide it; the prediction log records it)."""
    if isinstance(exc, SalescastError):
        return exc.http_status
    if isinstance(exc, OperationalError | InterfaceError):
        return 503
    return 500


def problem_for(exc: SalescastError, path: str) -> Response:
    headers = None
    if isinstance(exc, RateLimitedError):
        headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
    elif isinstance(exc, AuthenticationError):
        headers = {"WWW-Authenticate": WWW_AUTHENTICATE}
    detail = str(exc)
    if isinstance(exc, ArtifactIntegrityError) and not exc.public:
        # Its message names the artifact's location and checksums: for the log, not for a caller.
        log.error("artifact.integrity", extra={"error": type(exc).__name__, "detail": detail})
        detail = "a model artifact failed its integrity check; the request id names it in the server's log"
    elif exc.http_status >= 500:
        log.error("request.failed", extra={"error": type(exc).__name__, "detail": detail})
    return problem(exc.http_status, detail, path, headers)


async def _salescast_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SalescastError)
    return problem_for(exc, request.url.path)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"location": ".".join(str(part) for part in error["loc"]), "message": error["msg"]} for error in exc.errors()
    ]
    detail = "; ".join(f"{e['location']}: {e['message']}" for e in errors)
    return problem(422, f"invalid request: {detail}", request.url.path, errors=errors)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    return problem(exc.status_code, str(exc.detail), request.url.path, dict(exc.headers or {}))


async def _database_unavailable(request: Request, exc: Exception) -> Response:
    log.error("database.unavailable", extra={"path": request.url.path, "error": str(exc).splitlines()[0]})
    return problem(503, "the database is unavailable; try again shortly", request.url.path)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    # Starlette runs this handler from its ServerErrorMiddleware, outside the routes' context: the request
    # id comes from the scope, where the request-context middleware (around it, see app.py) left it.
    request_id = request.scope.get(REQUEST_ID_SCOPE_KEY)
    log.exception("request.crashed", extra={"path": request.url.path, "request_id": request_id})
    detail = "internal error; the request id names it in the server's log"
    return problem(500, detail, request.url.path, request_id=request_id)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(SalescastError, _salescast_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    # Lost or refused connections: the client may retry. Other database errors are bugs (500).
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(InterfaceError, _database_unavailable)
    app.add_exception_handler(Exception, _unexpected_error)
