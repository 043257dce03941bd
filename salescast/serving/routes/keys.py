"""Key routes: what the key a request carries may do (the dashboard shows admin buttons by it)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from salescast.serving.auth import ANONYMOUS_READER, SCOPES, has_scope, principal_from_headers
from salescast.serving.encoding import json_response
from salescast.serving.problems import CLIENT_PROBLEMS
from salescast.serving.routes import API_PREFIX
from salescast.serving.schemas import KeyIdentity
from salescast.serving.security import Caller, read_access, serving_state

router = APIRouter(prefix=f"{API_PREFIX}/keys", tags=["keys"], responses=CLIENT_PROBLEMS)


@router.get("/me", response_model=KeyIdentity)
async def me(request: Request, caller: Caller = Depends(read_access)) -> Response:
    """The calling key's name, public prefix and every scope it grants (admin implies predict and read);
    `anonymous` with read alone in open-read mode without a key."""
    secret = principal_from_headers(request.headers.get("authorization"), request.headers.get("x-api-key"))
    # read_access has authenticated the key already; this lookup is answered from the key cache.
    principal = serving_state(request).keys.authenticate(secret) if secret else ANONYMOUS_READER
    granted = [scope for scope in SCOPES if has_scope(principal.scopes, scope)]
    return json_response({"name": principal.name, "prefix": principal.prefix, "scopes": granted})
