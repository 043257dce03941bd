"""The ceiling for bench/serve.py: a bare FastAPI route that returns fixed JSON bytes, no middleware."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.responses import Response


def create_app(body_file: str) -> FastAPI:
    body = Path(body_file).read_bytes()
    app = FastAPI()

    @app.get("/bare")
    async def bare() -> Response:
        return Response(body, media_type="application/json")

    return app
