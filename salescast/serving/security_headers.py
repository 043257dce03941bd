"""The security headers every response carries, worked out once per process.

Every response: `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`, `X-Frame-Options: DENY`
and a Content-Security-Policy with `frame-ancestors 'none'`: JSON answers get `default-src 'none'`
(nothing in them may load anything), HTML pages (a future dashboard) may load from this origin only,
and a response that brings its own policy keeps it (the Swagger page at /docs, see `swagger_page`).
`Strict-Transport-Security` goes on responses served over https: the request's own scheme, or
`X-Forwarded-Proto: https` from an address in `trusted_proxies` (a TLS-terminating load balancer).

`RequestContextMiddleware` adds them as it adds the request id: one pick among lists made here, no
per-request building.
"""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi.openapi.docs import get_swagger_ui_html
from starlette.types import Scope

from salescast.config import Settings

Header = tuple[bytes, bytes]
CSP = b"content-security-policy"
_FORWARDED_PROTO = b"x-forwarded-proto"

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
PAGE_CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)
# Where FastAPI's Swagger page loads its assets from (fastapi.openapi.docs defaults).
_SWAGGER_ASSETS = "https://cdn.jsdelivr.net"
_FAVICON_ORIGIN = "https://fastapi.tiangolo.com"
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


class SecurityHeaders:
    """The headers for a response, by whether it travelled over TLS and what kind of content it holds."""

    def __init__(self, settings: Settings) -> None:
        common = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
        common.append((b"x-frame-options", b"DENY"))
        hsts = [(b"strict-transport-security", f"max-age={settings.hsts_max_age_seconds}".encode())]
        api, page = [(CSP, API_CSP.encode())], [(CSP, PAGE_CSP.encode())]
        # Indexed by [over https][kind]: kind 0 = JSON and the like, 1 = an HTML page, 2 = brings its own CSP.
        self._lists = [
            [common + api, common + page, common],
            [common + api + hsts, common + page + hsts, common + hsts],
        ]
        proxies = {part.strip() for part in settings.trusted_proxies.split(",") if part.strip()}
        self._any_proxy = "*" in proxies
        self._proxies = frozenset(proxies - {"*"})

    def secure(self, scope: Scope) -> bool:
        """Whether the request reached the service over https."""
        if scope.get("scheme") == "https":
            return True
        if not (self._any_proxy or self._proxies):
            return False
        client = scope.get("client")
        if not self._any_proxy and (client is None or client[0] not in self._proxies):
            return False
        for name, value in scope["headers"]:
            if name == _FORWARDED_PROTO:
                # A chain of proxies lists one scheme each; the first is what the client used.
                proto: bytes = value.split(b",")[0].strip().lower()
                return proto == b"https"
        return False

    def for_response(self, secure: bool, kind: int) -> list[Header]:
        return self._lists[secure][kind]


def swagger_page(openapi_url: str, title: str) -> tuple[bytes, str]:
    """FastAPI's Swagger UI page and the Content-Security-Policy that lets exactly it run: its assets from
    the CDN, its one inline script by hash, the OpenAPI document from this origin."""
    html = bytes(get_swagger_ui_html(openapi_url=openapi_url, title=title).body)
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(html)
    )
    policy = (
        f"default-src 'none'; script-src {_SWAGGER_ASSETS} {hashes}; style-src {_SWAGGER_ASSETS} 'unsafe-inline'; "
        f"img-src 'self' data: {_FAVICON_ORIGIN}; font-src {_SWAGGER_ASSETS} data:; connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )
    return html, policy
