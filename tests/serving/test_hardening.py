"""Hostile and careless requests: oversized and deeply nested bodies, security headers on every answer,
prices no sales history supports, horizons the document promises, and a broken model artifact."""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import select
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from salescast.serving import queries
from tests.serving.conftest import Api, ApiFactory, live_server
from tests.serving.served_store import HORIZON, StoreTemplate

TOP = "/api/v1/forecast/top-products"
WHAT_IF = "/api/v1/forecast/what-if"
CAP = 65_536


def first_product(api: Api) -> str:
    sku: str = api.get("/api/v1/products", params={"page_size": 1}).json()["items"][0]["product_id"]
    return sku


# -- 1. request bodies ------------------------------------------------------------------------------------


def test_a_body_over_the_cap_is_refused_with_413_before_the_key_is_checked(api: Api) -> None:
    declared = api.post(WHAT_IF, key=None, content=b"{" + b" " * CAP + b"}")
    streamed = api.post(WHAT_IF, key=None, content=iter([b" " * 40_000] * 3))  # chunked: no Content-Length
    with_key = api.post(WHAT_IF, key="predict", content=b"[" + b"0," * CAP + b"0]")
    at_the_cap = api.post(WHAT_IF, key=None, json={"product": "x" * (CAP - 20)})

    for refused in (declared, streamed, with_key):
        assert refused.status_code == 413, refused.text
        problem = refused.json()
        assert problem["detail"] == f"the request body is larger than the limit of {CAP} bytes"
        assert refused.headers["content-type"] == "application/problem+json"
    assert at_the_cap.status_code == 401  # under the cap: read, then the key is checked


def test_an_endless_upload_is_cut_off_at_the_cap_without_being_read(
    store_template: StoreTemplate, tmp_path: Path
) -> None:
    chunk = b"0" * 65_536
    total = 64 * 1024 * 1024
    with live_server(store_template, tmp_path) as server:
        port = int(server.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(
                b"POST /api/v1/forecast/what-if HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
            )
            sent = 0
            answered = False
            try:
                while sent < total and not answered:
                    sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    sent += len(chunk)
                    answered = bool(select.select([sock], [], [], 0)[0])
            except OSError:  # the server closed the connection under our upload
                pass
            reply = sock.recv(65_536)

    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert sent < total // 4  # answered long before the 64 MB were sent (socket buffers hold a few MB)


def test_a_deeply_nested_json_body_is_refused_with_422_before_it_is_parsed(api: Api) -> None:
    started = time.perf_counter()
    nested = api.post(WHAT_IF, key=None, content=b"[" * 30_000 + b"]" * 30_000)
    seconds = time.perf_counter() - started
    twenty: list[Any] = [[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]  # fmt: skip
    in_a_field = api.post(WHAT_IF, key="predict", json={"product": "x", "promotion_days": twenty})
    shallow = api.post(WHAT_IF, key="predict", json={"product": "unknown-sku", "promotion": True})

    assert nested.status_code == 422 and nested.json()["detail"] == "the JSON body is nested more than 32 levels deep"
    assert seconds < 2
    assert in_a_field.status_code == 422 and "promotion_days" in in_a_field.text  # 21 levels: the model's 422
    assert shallow.status_code == 404


# -- 9. security headers, WWW-Authenticate ------------------------------------------------------------------

BASELINE = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer", "x-frame-options": "DENY"}


def assert_secured(response: object, csp_contains: str = "frame-ancestors 'none'") -> None:
    headers = response.headers  # type: ignore[attr-defined]
    for name, value in BASELINE.items():
        assert headers.get(name) == value, (response, name, dict(headers))
    assert csp_contains in headers["content-security-policy"]
    assert "strict-transport-security" not in headers  # plain http


def test_every_response_carries_the_security_headers(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    miss, hit = api.get(TOP), api.get(TOP)
    answers = {
        "miss": miss,
        "fast-path hit": hit,
        "fast-path 401": api.get(TOP, key=None),
        "route 401": api.get("/api/v1/categories", key=None),
        "404": api.get("/api/v1/products/nothing-like-it"),
        "422": api.get(TOP, params={"limit": 0}),
        "repeated parameter": api.get(TOP + "?limit=1&limit=2"),
        "413": api.post(WHAT_IF, key=None, content=b" " * (CAP + 1)),
        "health": api.client.get("/api/v1/health"),
        "openapi": api.client.get("/api/v1/openapi.json"),
        "unmatched": api.client.get("/wp-login.php"),
    }
    monkeypatch.setattr(queries, "categories", lambda *a, **k: 1 / 0)
    answers["500"] = api.get("/api/v1/categories")

    assert hit.headers["X-Cache"] == "hit"
    assert [answers[n].status_code for n in ("fast-path 401", "route 401", "404", "422", "413", "500")] == [
        401,
        401,
        404,
        422,
        413,
        500,
    ]
    for response in answers.values():
        assert_secured(response, "default-src 'none'")
    assert answers["fast-path 401"].headers["www-authenticate"] == 'Bearer realm="salescast"'
    assert answers["route 401"].headers["www-authenticate"] == 'Bearer realm="salescast"'


def test_the_docs_page_gets_a_policy_that_lets_exactly_swagger_run(api: Api) -> None:
    docs = api.client.get("/docs")

    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
    assert_secured(docs)
    policy = dict(part.strip().split(" ", 1) for part in docs.headers["content-security-policy"].split(";"))
    inline = re.findall(r"<script>(.*?)</script>", docs.text, re.DOTALL)
    assert len(inline) == 1
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    assert f"'sha256-{digest}'" in policy["script-src"] and "'unsafe-inline'" not in policy["script-src"]
    for src in re.findall(r'<script src="([^"]+)"', docs.text):
        assert src.startswith(policy["script-src"].split()[0])
    stylesheet = re.search(r'rel="stylesheet" href="([^"]+)"', docs.text)
    assert stylesheet is not None and stylesheet.group(1).startswith(policy["style-src"].split()[0])
    assert policy["connect-src"] == "'self'"  # the page fetches the OpenAPI document from here
    assert api.client.get("/api/v1/openapi.json").status_code == 200


def test_hsts_only_over_https_or_from_a_trusted_proxy(api_factory: ApiFactory) -> None:
    api = api_factory(trusted_proxies="testclient")  # the test client's address
    untrusted = api_factory(trusted_proxies="10.0.0.1")

    plain = api.client.get("/api/v1/health")
    forwarded = api.client.get("/api/v1/health", headers={"X-Forwarded-Proto": "https"})
    forged = untrusted.client.get("/api/v1/health", headers={"X-Forwarded-Proto": "https"})
    direct = api.client.get("https://testserver/api/v1/health")

    assert "strict-transport-security" not in plain.headers
    assert "strict-transport-security" not in forged.headers
    assert forwarded.headers["strict-transport-security"] == "max-age=31536000"
    assert direct.headers["strict-transport-security"] == "max-age=31536000"


# -- 9. what-if prices --------------------------------------------------------------------------------------


def test_a_what_if_price_is_bounded_by_the_products_price_history(api: Api) -> None:
    sku = first_product(api)
    with api.engine.connect() as conn:
        low, high = conn.execute(
            text(
                "SELECT min(unit_price), max(unit_price) FROM sales f JOIN products p ON p.id = f.product_id "
                "WHERE p.sku = :sku AND unit_price > 0"
            ),
            {"sku": sku},
        ).one()

    answers = {
        price: api.post(WHAT_IF, key="predict", json={"product": sku, "horizon": 3, "price": price})
        for price in (1e300, 1e-300, low / 100 * 0.99, high * 100 * 1.01, low / 100 * 1.01, high * 2)
    }

    for price in (1e300, 1e-300, low / 100 * 0.99, high * 100 * 1.01):
        refused = answers[price]
        assert refused.status_code == 422, (price, refused.text)
        detail = refused.json()["detail"]
        assert f"price {price:g} is outside the range product {sku!r} can be forecast at" in detail
        assert f"1/100 of its lowest known price {low:g} to 100x its highest {high:g}" in detail
    assert answers[low / 100 * 1.01].status_code == 200
    assert answers[high * 2].status_code == 200
    squeezed = api.post(WHAT_IF, key="predict", json={"product": sku, "horizon": 3, "price_change_pct": -99.999})
    assert squeezed.status_code == 422 and "outside the range" in squeezed.json()["detail"]


# -- 7. horizons as the document states them ----------------------------------------------------------------


def test_the_document_states_the_horizons_the_routes_serve(api_factory: ApiFactory) -> None:
    api = api_factory(pipeline_horizon=HORIZON, stored_forecast_days=91)
    sku = first_product(api)
    document = api.client.get("/api/v1/openapi.json").json()
    product_route = document["paths"]["/api/v1/forecast/products/{product_id}"]["get"]
    product_max = next(p for p in product_route["parameters"] if p["name"] == "horizon")["schema"]["maximum"]
    what_if_field = document["components"]["schemas"]["WhatIfRequest"]["properties"]["horizon"]
    what_if_max = next(o for o in what_if_field["anyOf"] if o.get("type") == "integer")["maximum"]

    assert (product_max, what_if_max) == (91, HORIZON)
    assert api.get(f"/api/v1/forecast/products/{sku}", params={"horizon": product_max}).status_code == 200
    beyond = api.get(f"/api/v1/forecast/products/{sku}", params={"horizon": product_max + 1})
    assert beyond.status_code == 422
    assert beyond.json()["detail"] == "horizon must be between 1 and 91 (the days of forecasts stored), got 92"
    served = api.post(WHAT_IF, key="predict", json={"product": sku, "horizon": what_if_max, "price_change_pct": 5})
    assert served.status_code == 200 and len(served.json()["baseline"]) == HORIZON
    too_far = api.post(WHAT_IF, key="predict", json={"product": sku, "horizon": what_if_max + 1})
    assert too_far.status_code == 422
    assert f"horizon must be between 1 and {HORIZON} (the horizon the models are trained for)" in too_far.text


# -- 5. a broken model artifact -----------------------------------------------------------------------------


@pytest.fixture
def own_artifacts(api_factory: ApiFactory, store_template: StoreTemplate, tmp_path: Path) -> Iterator[Api]:
    """An API whose artifacts are its own copy (the template's are shared by every test)."""
    folder = tmp_path / "artifacts"
    shutil.copytree(store_template.artifacts, folder)
    api = api_factory(artifact_uri=f"file://{folder}")
    with api.engine.begin() as conn:
        conn.execute(
            text("UPDATE model_versions SET artifact_uri = replace(artifact_uri, :old, :new)"),
            {"old": f"file://{store_template.artifacts}", "new": f"file://{folder}"},
        )
    yield api


def truncate_artifact(api: Api, version: int) -> tuple[str, str]:
    with api.engine.connect() as conn:
        uri, sha = conn.execute(
            text("SELECT artifact_uri, artifact_sha256 FROM model_versions WHERE version = :v"), {"v": version}
        ).one()
    path = Path(uri.removeprefix("file://"))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return str(path), sha


def test_a_broken_production_artifact_degrades_to_the_previous_version_and_leaks_nothing(
    own_artifacts: Api, caplog: pytest.LogCaptureFixture
) -> None:
    api = own_artifacts
    sku = first_product(api)
    promoted = api.post("/api/v1/models/demand/aliases", json={"alias": "production", "version": 2})
    assert promoted.status_code == 200, promoted.text
    path, sha = truncate_artifact(api, 2)
    scenario = {"product": sku, "horizon": 3, "price_change_pct": -10}

    with caplog.at_level(logging.INFO):
        fallback = api.post(WHAT_IF, key="predict", json=scenario)
        ready = api.client.get("/api/v1/ready")
    read = api.get(TOP)

    assert fallback.status_code == 200, fallback.text
    assert fallback.json()["model_version"] == 1 and fallback.headers["X-Model-Version"] == "demand:v1"
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded" and ready.json()["model_version"] == 2
    assert "demand v2 has an unusable artifact" in ready.json()["detail"]
    assert "what-ifs are computed by v1" in ready.json()["detail"]
    assert path not in ready.text and sha not in ready.text
    assert read.status_code == 200 and read.json()["model_version"] == 2  # stored forecasts still answer
    alerts = [r.getMessage() for r in caplog.records if r.name == "salescast.alerts"]
    assert len(alerts) == 1 and "model.artifact_unusable" in alerts[0] and path in alerts[0] and sha in alerts[0]


def test_a_broken_artifact_with_nothing_to_fall_back_on_is_a_generic_503(own_artifacts: Api) -> None:
    api = own_artifacts
    path, sha = truncate_artifact(api, 1)  # production since the start: no earlier version

    unusable = api.post(WHAT_IF, key="predict", json={"product": first_product(api), "horizon": 3})
    ready = api.client.get("/api/v1/ready")

    assert unusable.status_code == 503
    assert unusable.headers["Retry-After"] == "5"
    problem = unusable.json()
    assert problem["detail"].startswith("model demand v1 cannot compute forecasts right now")
    assert problem["request_id"] == unusable.headers["X-Request-Id"]
    assert path not in unusable.text and sha not in unusable.text and "artifacts" not in unusable.text
    assert ready.json()["status"] == "degraded" and "what-ifs answer 503" in ready.json()["detail"]


def test_an_alias_move_to_a_broken_artifact_names_no_path_or_checksum(own_artifacts: Api) -> None:
    path, sha = truncate_artifact(own_artifacts, 2)

    refused = own_artifacts.post("/api/v1/models/demand/aliases", json={"alias": "production", "version": 2})

    assert refused.status_code == 409  # the version cannot take the alias while its artifact is corrupt
    assert path not in refused.text and sha not in refused.text and "artifacts/" not in refused.text
    assert refused.json()["request_id"] == refused.headers["X-Request-Id"]
