"""JSON bodies as bytes: encoded once with orjson, so a cached response is sent as it was stored."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

JSON = "application/json"
PROBLEM_JSON = "application/problem+json"


def encode(body: Any) -> bytes:
    return orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)


def json_response(body: bytes | Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    content = body if isinstance(body, bytes) else encode(body)
    return Response(content=content, status_code=status_code, headers=headers, media_type=JSON)
