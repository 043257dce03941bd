"""The caller of a request: API key -> principal -> scope check -> rate limit, as FastAPI dependencies.

Routes declare the scope they need (`Depends(needs("read"))`); the dependency also yields the key that
traffic splitting sticks to, so a client sees one model version for the whole of a rollout step.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from salescast.errors import AuthenticationError
from salescast.monitoring.metrics import AUTH_FAILURES
from salescast.serving.auth import ANONYMOUS_READER, Principal, require
from salescast.serving.rate_limit import enforce
from salescast.serving.state import ServingState

bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The API key")


@dataclass(frozen=True)
class Caller:
    principal: Principal
    sticky_key: str  # what traffic splitting hashes: the key id, else the client's id or address


def serving_state(request: Request) -> ServingState:
    state: ServingState = request.app.state.salescast
    return state


def needs(scope: str) -> Callable[..., Awaitable[Caller]]:
    async def caller(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
        api_key: str | None = Depends(api_key_header),
    ) -> Caller:
        state = serving_state(request)
        secret = credentials.credentials if credentials is not None else api_key
        if secret:
            principal = state.keys.authenticate(secret)
        elif scope == "read" and state.settings.open_read:
            principal = ANONYMOUS_READER
        else:
            AUTH_FAILURES.labels("missing").inc()
            raise AuthenticationError("this route needs an API key: send Authorization: Bearer <key> or X-API-Key")
        require(principal, scope)
        client = request.headers.get("x-client-id") or (request.client.host if request.client else "unknown")
        limit_key = f"key:{principal.key_id}" if principal.key_id is not None else f"client:{client}"
        settings = state.settings
        await enforce(state.limiter, limit_key, settings.rate_limit_per_second, settings.rate_limit_burst)
        sticky = f"key:{principal.key_id}" if principal.key_id is not None else f"client:{client}"
        return Caller(principal, sticky)

    caller.__name__ = f"needs_{scope}"
    return caller


read_access = needs("read")
predict_access = needs("predict")
admin_access = needs("admin")
