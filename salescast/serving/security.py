"""The caller of a request: API key -> principal -> scope check -> rate limit.

`authorize` is the one implementation; routes reach it through FastAPI dependencies
(`Depends(needs("read"))`), and the cached-answer fast path calls it directly. It also yields the key
that traffic splitting sticks to, so a client sees one model version for the whole of a rollout step.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import NamedTuple

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from salescast.errors import AuthenticationError
from salescast.monitoring.metrics import AUTH_FAILURES
from salescast.serving.auth import ANONYMOUS_READER, principal_from_headers, require
from salescast.serving.rate_limit import enforce
from salescast.serving.state import ServingState

bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The API key")
# Where the fast path leaves a caller it authorized, so the route does not authorize (and count) again.
CALLER_SCOPE_KEY = "salescast.caller"


class Caller(NamedTuple):
    """Who is calling, once authorized (a named tuple: one is made on every request, and a frozen
    dataclass costs several times as much to make)."""

    scope: str  # the scope it was authorized for
    key_id: int | None
    name: str
    prefix: str | None
    sticky_key: str  # what traffic splitting hashes: the key id, else the client's id or address


async def authorize(
    state: ServingState,
    scope: str,
    authorization: str | None,
    api_key: str | None,
    client_id: str | None,
    client_host: str | None,
) -> Caller:
    secret = principal_from_headers(authorization, api_key)
    if secret:
        principal = state.keys.authenticate(secret)
    elif scope == "read" and state.settings.open_read:
        principal = ANONYMOUS_READER
    else:
        AUTH_FAILURES.labels("missing").inc()
        raise AuthenticationError("this route needs an API key: send Authorization: Bearer <key> or X-API-Key")
    require(principal, scope)
    client = client_id or client_host or "unknown"  # no address: a Unix socket, some Lambda events
    who = f"key:{principal.key_id}" if principal.key_id is not None else f"client:{client}"
    settings = state.settings
    await enforce(state.limiter, who, settings.rate_limit_per_second, settings.rate_limit_burst)
    return Caller(scope, principal.key_id, principal.name, principal.prefix, who)


def serving_state(request: Request) -> ServingState:
    state: ServingState = request.app.state.salescast
    return state


def needs(scope: str) -> Callable[..., Awaitable[Caller]]:
    async def caller(
        request: Request,
        # Declared for the OpenAPI document (security schemes); `authorize` reads the headers itself.
        _credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
        _api_key: str | None = Depends(api_key_header),
    ) -> Caller:
        done = request.scope.get(CALLER_SCOPE_KEY)
        if isinstance(done, Caller) and done.scope == scope:
            return done
        headers = request.headers
        host = request.client.host if request.client else None
        authorized = await authorize(
            serving_state(request),
            scope,
            headers.get("authorization"),
            headers.get("x-api-key"),
            headers.get("x-client-id"),
            host,
        )
        # The access log names the key (its id, never its text) from here, as it does on the fast path.
        request.scope[CALLER_SCOPE_KEY] = authorized
        return authorized

    caller.__name__ = f"needs_{scope}"
    return caller


read_access = needs("read")
predict_access = needs("predict")
admin_access = needs("admin")
