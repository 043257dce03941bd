"""Request bodies are bounded before anything reads them: a plain ASGI middleware in front of the routes.

A body larger than `max_request_body_bytes` is refused with 413, from its Content-Length when it has one,
else as soon as the chunks received pass the cap: reading stops there, so a 300 MB upload costs the
server the cap, not 300 MB, and the API key is never checked for it. A JSON body nested deeper than
`max_json_depth` is refused with 422 before FastAPI parses it (a what-if body is two levels deep; a
thousand-level one would only cost parsing and validation time).

The body (at most the cap) is read here in full and handed on as one message: every route with a body
reads it whole anyway. GET and HEAD pass untouched, so the cached-answer path pays one comparison.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from salescast.serving.problems import problem

_NO_BODY = frozenset({"GET", "HEAD", "OPTIONS"})


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, max_json_depth: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_json_depth = max_json_depth
        self._too_large = f"the request body is larger than the limit of {max_bytes} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in _NO_BODY:
            await self.app(scope, receive, send)
            return
        if _content_length(scope) > self.max_bytes:
            await self._refuse(413, self._too_large, scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nobody to answer
                return
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(413, self._too_large, scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        depth = json_depth(body, self.max_json_depth)
        if depth > self.max_json_depth:
            detail = f"the JSON body is nested more than {self.max_json_depth} levels deep"
            await self._refuse(422, detail, scope, receive, send)
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: only a disconnect can come

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(status: int, detail: str, scope: Scope, receive: Receive, send: Send) -> None:
        # The connection is closed after a 413: the rest of the body is never read.
        headers = {"Connection": "close"} if status == 413 else None
        await problem(status, detail, scope["path"], headers)(scope, receive, send)


def _content_length(scope: Scope) -> int:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0  # the server refuses a malformed length before the app sees it
    return 0


def json_depth(body: bytes, limit: int) -> int:
    """How deep `body` nests arrays and objects, counted up to `limit + 1` (then it is too deep anyway);
    0 for a body that is not JSON (FastAPI then says what is wrong with it)."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return 0  # the usual case: too few brackets to be too deep, nothing to parse
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        # orjson refuses more than 1024 levels itself; anything else is malformed, not deep.
        return limit + 1 if "depth" in str(exc) or "recursion" in str(exc) else 0
    containers = (dict, list)
    level: list[Any] = [document] if isinstance(document, containers) else []
    depth = 0
    while level and depth <= limit:
        depth += 1
        level = [
            child
            for value in level
            for child in (value.values() if isinstance(value, dict) else value)
            if isinstance(child, containers)
        ]
    return depth
