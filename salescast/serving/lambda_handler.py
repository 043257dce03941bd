"""AWS Lambda entry point (`salescast.serving.lambda_handler.handler`): the same app behind API Gateway,
REST (payload v1) or HTTP API (v2) events, through Mangum.

The state (database engine, key cache, loaded models) is built once per Lambda container, at cold start,
and reused by every invocation that container serves. A Lambda has no life between invocations, so the
server's background work is done inline instead: the traffic plan is refreshed when it is older than
`deployment_check_seconds`, and the prediction log is flushed before the invocation returns (a frozen
container would otherwise hold the rows until its next event).
"""

from __future__ import annotations

import gc
import time
from typing import Any

from mangum import Mangum
from mangum.adapter import DEFAULT_TEXT_MIME_TYPES

from salescast.config import get_settings
from salescast.serving.app import create_app
from salescast.serving.encoding import PROBLEM_JSON
from salescast.serving.state import build_state

# One request at a time, and the log is flushed before each returns: inserting costs the invocation the
# same wherever it runs, and a child process would double the container's memory.
_settings = get_settings().model_copy(update={"prediction_log_process": False})
_app = create_app(_settings)
_state = build_state(_settings)
_app.state.salescast = _state
# Problem details are text too: without this, API Gateway would get them base64-encoded.
_asgi = Mangum(_app, lifespan="off", text_mime_types=[*DEFAULT_TEXT_MIME_TYPES, PROBLEM_JSON])
_refreshed = time.monotonic()
gc.freeze()  # start-up objects live as long as the container (see app.py)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _refreshed
    if time.monotonic() - _refreshed > _settings.deployment_check_seconds:
        _state.plans.refresh()
        _refreshed = time.monotonic()
    try:
        response: dict[str, Any] = _asgi(event, context)
    finally:
        _state.predictions.flush(timeout=5.0)
    return response
