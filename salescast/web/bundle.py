"""The dashboard as the API serves it and as a static bundle.

The pages are plain files under `static/`: `index.html` and, under `assets/`, the stylesheet, the
JavaScript modules and the charting library that `scripts/web-deps.sh` copies from npm into
`assets/vendor/`. What differs between the two ways of serving them is one small file, `config.json`:
the base URL of the API (empty: the page's own origin). The user's API key is never in it; the page asks
for it and keeps it in the browser tab's sessionStorage.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.responses import FileResponse, JSONResponse
from starlette.staticfiles import StaticFiles

from salescast.errors import ConfigurationError

STATIC = Path(__file__).parent / "static"
CHARTS = STATIC / "assets" / "vendor" / "chart.umd.min.js"
CONFIG = "config.json"


def _check_ready() -> None:
    if not CHARTS.is_file():
        raise ConfigurationError(
            f"the dashboard's charting library is missing ({CHARTS}); run scripts/web-deps.sh (it needs npm)"
        )


def mount_dashboard(app: FastAPI, open_read: bool = False) -> None:
    """Serve the dashboard at `/` (its assets under `/assets/`), calling the API on the same origin;
    `open_read`: the API answers reads without a key, so the pages need none to start."""
    index = STATIC / "index.html"

    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(index, media_type="text/html", headers={"Cache-Control": "no-cache"})

    @app.get(f"/{CONFIG}", include_in_schema=False)
    async def config() -> JSONResponse:
        return JSONResponse({"apiUrl": "", "openRead": open_read}, headers={"Cache-Control": "no-cache"})

    # check_dir=False: an install without the charting library still serves the pages (charts say so).
    app.mount("/assets", StaticFiles(directory=STATIC / "assets", check_dir=False), name="dashboard-assets")


def build_bundle(api_url: str, out: Path, open_read: bool = False) -> list[Path]:
    """Write the dashboard into `out` (created; files of a previous build replaced) for a static host such as
    an S3 bucket behind CloudFront, calling the API at `api_url` (`open_read`: that API answers reads
    without a key); returns the files written."""
    parts = urlsplit(api_url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigurationError(f"--api-url must be an http(s) URL such as https://api.example.com, got {api_url!r}")
    _check_ready()
    if out.exists() and not out.is_dir():
        raise ConfigurationError(f"{out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sorted(STATIC.rglob("*")):
        if source.is_dir() or source.name.startswith("."):
            continue
        target = out / source.relative_to(STATIC)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        written.append(target)
    config = out / CONFIG
    config.write_text(json.dumps({"apiUrl": api_url.rstrip("/"), "openRead": open_read}, indent=2) + "\n")
    written.append(config)
    return written
