"""The API as a client sees it: forecasts with the serving version, caching by version, keys and scopes,
rate limits, problem details, readiness and metrics."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema_rs import Draft202012Validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from salescast.config import Settings
from salescast.data.schema import PredictionLogEntry
from salescast.serving import fast_path, middleware, queries
from salescast.serving.app import create_app
from salescast.serving.auth import KeyStore
from tests.serving.conftest import Api, ApiFactory
from tests.serving.served_store import database_name, drop_database

TOP = "/api/v1/forecast/top-products"


def test_top_products_names_the_version_and_is_cached_until_the_version_changes(api: Api) -> None:
    first = api.get(TOP, params={"time_period": "month", "limit": 5})
    again = api.get(TOP, params={"limit": 5, "time_period": "month"})

    assert first.status_code == 200, first.text
    body = first.json()
    assert body["model"] == "demand" and body["model_version"] == 1
    assert first.headers["X-Model-Version"] == "demand:v1" and first.headers["X-Cache"] == "miss"
    assert len(body["products"]) == 5 and body["total"] == 8
    assert [p["rank"] for p in body["products"]] == [1, 2, 3, 4, 5]
    units = [p["units"]["p50"] for p in body["products"]]
    assert units == sorted(units, reverse=True)
    assert all(p["units"]["p10"] <= p["units"]["p50"] <= p["units"]["p90"] for p in body["products"])
    assert again.headers["X-Cache"] == "hit" and again.content == first.content
    assert re.fullmatch(r"[0-9a-f]{32}", first.headers["X-Request-Id"])

    flip = api.post("/api/v1/models/demand/aliases", json={"alias": "production", "version": 2, "reason": "test"})
    after = api.get(TOP, params={"time_period": "month", "limit": 5})

    assert flip.status_code == 200, flip.text
    assert flip.json()["from_version"] == 1 and flip.json()["to_version"] == 2
    assert after.headers["X-Model-Version"] == "demand:v2" and after.headers["X-Cache"] == "miss"
    assert after.json()["model_version"] == 2


def test_a_products_daily_means_add_up_to_its_top_products_month(api: Api) -> None:
    top = api.get(TOP, params={"limit": 1}).json()["products"][0]

    days = api.get(f"/api/v1/forecast/products/{top['product_id']}", params={"horizon": 30}).json()["forecast"]

    assert len(days) == 30
    assert sum(day["mean"] for day in days) == pytest.approx(top["units"]["p50"], abs=0.05)
    # The means were stored beside the medians, and add up to more than they do.
    assert sum(day["mean"] for day in days) > sum(day["p50"] for day in days)


def test_a_product_forecast_has_daily_intervals_and_recent_history(api: Api) -> None:
    sku = api.get("/api/v1/products", params={"page_size": 1}).json()["items"][0]["product_id"]

    response = api.get(f"/api/v1/forecast/products/{sku}", params={"horizon": 14, "history_days": 28})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["product_id"] == sku and body["horizon"] == 14 and body["model_version"] == 1
    assert len(body["forecast"]) == 14
    assert all(day["p10"] <= day["p50"] <= day["p90"] for day in body["forecast"])
    assert 0 < len(body["history"]) <= 28
    assert max(day["date"] for day in body["history"]) < body["forecast"][0]["date"] == body["forecast_start"]


def test_every_api_route_enforces_its_scope(api: Api) -> None:
    sku = api.get("/api/v1/products", params={"page_size": 1}).json()["items"][0]["product_id"]
    routes = {
        ("GET", "/api/v1/forecast/top-products"): ("read", {}),
        ("GET", "/api/v1/forecast/products/{product_id}"): ("read", {}),
        ("GET", "/api/v1/categories"): ("read", {}),
        ("GET", "/api/v1/products"): ("read", {}),
        ("GET", "/api/v1/models"): ("read", {}),
        ("GET", "/api/v1/models/{name}/versions"): ("read", {}),
        ("GET", "/api/v1/models/{name}/accuracy"): ("read", {}),
        ("POST", "/api/v1/forecast/what-if"): ("predict", {"product": sku, "horizon": 7, "price_change_pct": -10}),
        ("POST", "/api/v1/models/{name}/aliases"): ("admin", {"alias": "production", "version": 1}),
        ("GET", "/api/v1/stores"): ("read", {}),
        ("GET", "/api/v1/products/{product_id}/calendar"): ("read", {}),
        ("GET", "/api/v1/models/{name}/history"): ("read", {}),
        ("GET", "/api/v1/deployments/{name}"): ("read", {}),
        ("GET", "/api/v1/data/runs"): ("read", {}),
        ("GET", "/api/v1/data/runs/{run_id}/rejects"): ("read", {}),
        ("GET", "/api/v1/keys/me"): ("read", {}),
    }
    queries = {"/api/v1/products/{product_id}/calendar": {"start": "2024-01-01"}}
    run_id = api.get("/api/v1/data/runs").json()["runs"][0]["id"]
    open_routes = {"/api/v1/health", "/api/v1/ready", "/api/v1/metrics", "/api/v1/openapi.json"}
    paths = api.client.get("/api/v1/openapi.json").json()["paths"]
    served = {(method.upper(), path) for path, item in paths.items() if path not in open_routes for method in item}
    assert served == set(routes), "a route was added without saying which scope it needs"
    order = ["read", "predict", "admin"]

    for (method, template), (needed, body) in routes.items():
        path = template.format(product_id=sku, name="demand", run_id=run_id)
        for key in (None, *order):
            response = api.client.request(
                method,
                path,
                json=body or None,
                params=queries.get(template),
                headers={"X-API-Key": api.keys[key]} if key else {},
            )
            if key is None:
                expected = {401}
            elif order.index(key) < order.index(needed):
                expected = {403}
            else:
                expected = {200}
            assert response.status_code in expected, (method, path, key, response.text)
            if response.status_code >= 400:
                assert response.headers["content-type"] == "application/problem+json"


def test_a_revoked_key_is_refused_at_once(api: Api) -> None:
    store = api.state.keys
    created = store.create("temporary", ["read"])
    assert api.client.get(TOP, headers={"X-API-Key": created.secret}).status_code == 200

    store.revoke(created.id)
    refused = api.client.get(TOP, headers={"X-API-Key": created.secret})

    assert refused.status_code == 401
    assert refused.json()["detail"].startswith(f"API key {created.prefix} was revoked")
    assert created.secret not in refused.text


def test_a_key_revoked_elsewhere_is_refused_once_the_auth_cache_expires(api_factory: ApiFactory) -> None:
    api = api_factory(auth_cache_seconds=0.0)
    other_replica = KeyStore(api.engine, cache_seconds=0)
    created = other_replica.create("temporary", ["read"])
    assert api.client.get(TOP, headers={"X-API-Key": created.secret}).status_code == 200

    other_replica.revoke(created.id)

    assert api.client.get(TOP, headers={"X-API-Key": created.secret}).status_code == 401


def test_unknown_keys_and_missing_keys_get_a_problem_not_a_trace(api: Api) -> None:
    missing = api.client.get(TOP)
    unknown = api.client.get(TOP, headers={"Authorization": "Bearer sc_00000000_" + "x" * 43})

    assert missing.status_code == 401 and "API key" in missing.json()["detail"]
    assert unknown.status_code == 401 and unknown.json()["detail"] == "unknown API key"
    for response in (missing, unknown):
        problem = response.json()
        assert set(problem) >= {"type", "title", "status", "detail", "request_id"}
        assert "Traceback" not in response.text


def test_the_rate_limit_cached_answers429_with_retry_after(api_factory: ApiFactory) -> None:
    api = api_factory(rate_limit_per_second=0.5, rate_limit_burst=3)

    statuses = [api.get(TOP).status_code for _ in range(4)]
    refused = api.get(TOP)
    other_key = api.get(TOP, key="admin")

    assert statuses == [200, 200, 200, 429]
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "2"
    assert "rate limit" in refused.json()["detail"]
    assert other_key.status_code == 200  # each key has its own bucket


def test_bad_parameters_and_unknown_names_are_problems(api: Api) -> None:
    bad_period = api.get(TOP, params={"time_period": "year"})
    bad_limit = api.get(TOP, params={"limit": 0})
    unknown = api.get(TOP, params={"category": "Electronix"})
    no_product = api.get("/api/v1/forecast/products/NOPE")

    assert bad_period.status_code == 422 and "time_period" in bad_period.json()["detail"]
    assert bad_limit.status_code == 422 and bad_limit.json()["errors"][0]["location"] == "query.limit"
    assert unknown.status_code == 404 and "unknown category 'Electronix'" in unknown.json()["detail"]
    assert no_product.status_code == 404 and "NOPE" in no_product.json()["detail"]


def test_open_read_mode_serves_reads_without_a_key_but_never_writes(api_factory: ApiFactory) -> None:
    api = api_factory(open_read=True)

    assert api.client.get(TOP).status_code == 200
    assert (
        api.client.post("/api/v1/models/demand/aliases", json={"alias": "production", "version": 2}).status_code == 401
    )


def test_what_if_is_computed_live_by_the_production_model(api: Api) -> None:
    sku = api.get("/api/v1/products", params={"page_size": 1}).json()["items"][0]["product_id"]

    response = api.post(
        "/api/v1/forecast/what-if", key="predict", json={"product": sku, "horizon": 14, "price_change_pct": -30}
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == 1 and response.headers["X-Model-Version"] == "demand:v1"
    assert len(body["baseline"]) == len(body["scenario_forecast"]) == 14
    assert body["responsive_families"] == ["lgbm"]
    assert body["totals"]["scenario_p50"] != body["totals"]["baseline_p50"]
    assert "X-Cache" not in response.headers


def test_the_what_if_schema_states_the_rules_between_fields_as_the_server_applies_them(api: Api) -> None:
    schema = api.get("/api/v1/openapi.json").json()["components"]["schemas"]["WhatIfRequest"]
    validator = Draft202012Validator(schema)
    first_day = api.post(
        "/api/v1/forecast/what-if", key="predict", json={"product": "P00004", "horizon": 3, "price_change_pct": 0}
    ).json()["baseline"][0]["date"]
    cases: dict[str, tuple[dict[str, Any], bool]] = {
        "a price and a change": ({"price": 5, "price_change_pct": 3}, False),
        "a price and a null change": ({"price": 5, "price_change_pct": None}, False),
        "promotion days and the whole horizon": ({"promotion": True, "promotion_days": [first_day]}, False),
        "a discount alone": ({"promotion_discount_pct": 10}, False),
        "a discount and no promotion days": ({"promotion_days": [], "promotion_discount_pct": 10}, False),
        "a discount and promotion false": ({"promotion": False, "promotion_discount_pct": 10}, False),
        "a discount with promotion days": ({"promotion_days": [first_day], "promotion_discount_pct": 10}, True),
        "a discount over the whole horizon": ({"promotion": True, "promotion_discount_pct": 10}, True),
        "a price and promotion days": ({"price": 5, "promotion_days": [first_day]}, True),
    }
    for case, (fields, valid) in cases.items():
        body = {"product": "P00004", "horizon": 3, **fields}
        answer = api.post("/api/v1/forecast/what-if", key="predict", json=body)
        assert validator.is_valid(body) is valid, case
        assert answer.status_code == (200 if valid else 422), (case, answer.text)


def test_a_what_if_promotion_reports_the_discount_it_assumed(api: Api) -> None:
    sku = "P00004"  # on promotion 248 days in the generated sales (P00001 and its category never)
    first_day = api.post(
        "/api/v1/forecast/what-if", key="predict", json={"product": sku, "horizon": 3, "price_change_pct": 0}
    ).json()["baseline"][0]["date"]

    usual = api.post(
        "/api/v1/forecast/what-if", key="predict", json={"product": sku, "horizon": 3, "promotion_days": [first_day]}
    )
    named = api.post(
        "/api/v1/forecast/what-if",
        key="predict",
        json={"product": sku, "horizon": 3, "promotion_days": [first_day], "promotion_discount_pct": 30},
    )
    never = api.post(
        "/api/v1/forecast/what-if",
        key="predict",
        json={"product": "P00001", "horizon": 3, "promotion_days": [first_day]},
    )
    alone = api.post(
        "/api/v1/forecast/what-if", key="predict", json={"product": sku, "horizon": 3, "promotion_discount_pct": 30}
    )
    too_deep = api.post(
        "/api/v1/forecast/what-if",
        key="predict",
        json={"product": sku, "horizon": 3, "promotion_days": [first_day], "promotion_discount_pct": 100},
    )

    assert usual.status_code == named.status_code == 200, usual.text
    assert usual.json()["scenario"]["promotion_discount_source"] == "product history"
    assert 0 < usual.json()["scenario"]["promotion_discount_pct"] < 100
    assert (
        named.json()["scenario"]["promotion_discount_pct"],
        named.json()["scenario"]["promotion_discount_source"],
    ) == (
        30,
        "request",
    )
    whole = api.post("/api/v1/forecast/what-if", key="predict", json={"product": sku, "horizon": 3, "promotion": True})
    both = api.post(
        "/api/v1/forecast/what-if",
        key="predict",
        json={"product": sku, "horizon": 3, "promotion": True, "promotion_days": [first_day]},
    )
    assert len(whole.json()["scenario"]["promotion_days"]) == 3 and both.status_code == 422
    assert "not both" in both.json()["detail"]
    assert never.json()["scenario"]["promotion_discount_pct"] == 0
    assert never.json()["scenario"]["promotion_discount_source"] == "none"
    assert alone.status_code == too_deep.status_code == 422
    assert "applies to promotion days" in alone.json()["detail"]
    assert alone.headers["content-type"] == too_deep.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("separate_process", [False, True], ids=["thread", "process"])
def test_served_forecasts_are_logged_in_batches_off_the_request_path(
    api_factory: ApiFactory, separate_process: bool
) -> None:
    api = api_factory(prediction_log_process=separate_process)
    for limit in (3, 4, 3):
        assert api.get(TOP, params={"limit": limit}).status_code == 200
    api.get(TOP, params={"category": "Nowhere"})
    # The same query written differently: the fast path reads it as the route does, and answers it.
    assert api.get(TOP + "?limit=003&time_period=month").headers["X-Cache"] == "hit"

    assert api.state.predictions.flush(timeout=30.0)
    assert api.state.predictions.separate_process is separate_process
    with Session(api.engine) as session:
        rows = session.scalars(select(PredictionLogEntry).order_by(PredictionLogEntry.id)).all()
    assert [(r.route, r.status_code, r.model_version, r.variant, r.served) for r in rows] == [
        ("top-products", 200, 1, "production", True),
        ("top-products", 200, 1, "production", True),
        ("top-products", 200, 1, "production", True),
        ("top-products", 404, 1, "production", True),
        ("top-products", 200, 1, "production", True),
    ]
    assert rows[0].key_id is not None and len(rows[0].request_id) == 32
    # A hit answered before FastAPI (the third and fifth) logs the parameters the route itself logged.
    typed = {"time_period": "month", "limit": 3, "rank_by": "units"}
    assert rows[0].params == rows[2].params == rows[4].params == typed
    assert all(r.latency_ms >= 0 for r in rows)


def test_health_ready_and_metrics(api: Api) -> None:
    api.get(TOP)

    health = api.client.get("/api/v1/health")
    ready = api.client.get("/api/v1/ready")
    metrics = api.client.get("/api/v1/metrics")

    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200 and ready.json()["model_version"] == 1
    assert ready.json()["database"] == api.engine.dialect.name
    text = metrics.text
    assert re.search(
        r'salescast_http_requests_total\{method="GET",model_version="demand:v1",'
        r'route="/api/v1/forecast/top-products",status="200"\} [1-9]',
        text,
    ), text[:2000]
    assert "salescast_cache_lookups_total" in text


def test_models_and_versions_are_listed(api: Api) -> None:
    models = api.get("/api/v1/models").json()
    versions = api.get("/api/v1/models/demand/versions").json()
    missing = api.get("/api/v1/models/nothing/versions")

    assert models == [{"name": "demand", "versions": 2, "aliases": {"production": 1}, "latest_version": 2}]
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[0]["aliases"] == ["production"] and versions[1]["aliases"] == []
    assert versions[0]["metrics"]["candidate"]["mase"] > 0
    assert missing.status_code == 404


def test_a_rollback_over_the_api_serves_the_previous_version(api: Api) -> None:
    api.post("/api/v1/models/demand/aliases", json={"alias": "production", "version": 2})
    assert api.get(TOP).json()["model_version"] == 2

    back = api.post("/api/v1/models/demand/aliases", json={"alias": "production", "action": "rollback"})

    assert back.status_code == 200 and back.json()["to_version"] == 1
    assert api.get(TOP).json()["model_version"] == 1


def test_prediction_log_count_matches_requests(api: Api) -> None:
    for _ in range(5):
        api.get(TOP)
    api.state.predictions.flush(timeout=5.0)
    with Session(api.engine) as session:
        assert session.scalar(select(func.count()).select_from(PredictionLogEntry)) == 5


def test_an_unexpected_error_is_a_500_problem_naming_the_request(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> dict[str, object]:
        raise RuntimeError("a bug")

    monkeypatch.setattr(queries, "categories", broken)

    response = api.get("/api/v1/categories")

    assert response.status_code == 500
    problem = response.json()
    assert problem["title"] == "Internal Server Error" and re.fullmatch(r"[0-9a-f]{32}", problem["request_id"])
    assert "a bug" not in response.text and "Traceback" not in response.text


# The outage is made by dropping the PostgreSQL database under the running app.
@pytest.mark.postgres
@pytest.mark.parametrize("store_template", ["postgresql"], indirect=True)
def test_a_database_outage_is_a_503_while_cached_cached_answersstill_serve(api_factory: ApiFactory) -> None:
    api = api_factory(auth_cache_seconds=60.0)
    cached = api.get(TOP, params={"limit": 2})
    assert cached.status_code == 200

    drop_database(database_name(api.settings.database_url))
    still_cached = api.get(TOP, params={"limit": 2})
    uncached = api.get(TOP, params={"limit": 3})
    ready = api.client.get("/api/v1/ready")

    assert still_cached.status_code == 200 and still_cached.headers["X-Cache"] == "hit"
    assert uncached.status_code == 503 and uncached.headers["Retry-After"] == "5"
    assert uncached.json()["detail"] == "the database is unavailable; try again shortly"
    assert ready.status_code == 503


def test_the_fast_path_cached_answersequal_requests_from_one_entry(api: Api) -> None:
    first = api.get(TOP)
    explicit = api.get(TOP, params={"limit": 10, "time_period": "month", "rank_by": "units"})
    reordered = api.get(TOP + "?rank_by=units&limit=10")

    assert first.headers["X-Cache"] == "miss"
    assert explicit.headers["X-Cache"] == "hit" and explicit.content == first.content
    assert reordered.headers["X-Cache"] == "hit" and reordered.content == first.content


def test_the_fast_path_answers_each_query_rightly_with_its_memos_bounded(
    api_factory: ApiFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fast_path, "MEMO_ENTRIES", 3)
    monkeypatch.setattr(middleware, "MEMO_ENTRIES", 3)
    api = api_factory()  # its middleware made after the patch

    answers = [(limit, api.get(TOP, params={"limit": limit})) for _ in range(2) for limit in range(1, 9)]

    hits = [(limit, r) for limit, r in answers if r.headers["X-Cache"] == "hit"]
    assert [limit for limit, _ in hits] == list(range(1, 9))  # every second asking, whatever the memos forgot
    for limit, response in hits:
        assert len(response.json()["products"]) == limit
        assert response.headers["content-type"] == "application/json"
        assert int(response.headers["content-length"]) == len(response.content)
        assert (response.headers["X-Model-Version"], response.headers["X-Model-Variant"]) == ("demand:v1", "production")
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-Id"])
    layers, layer = [], api.client.app.middleware_stack  # type: ignore[attr-defined]
    while layer is not None:
        layers.append(layer)
        layer = getattr(layer, "app", None)
    context = next(m for m in layers if isinstance(m, middleware.RequestContextMiddleware))
    cached_answers = next(m for m in layers if isinstance(m, fast_path.CachedAnswers))
    memos = [context._repeated_parameter, cached_answers._params, cached_answers._keys]
    assert [(memo.cache_info().maxsize, memo.cache_info().currsize) for memo in memos] == [(3, 3)] * 3


def test_parameters_the_route_refuses_are_never_answered_from_the_cache(api: Api) -> None:
    unknown = [api.get(TOP, params={"limit": 10, "colour": "red"}) for _ in range(2)]
    invalid = [api.get(TOP, params={"limit": 0}) for _ in range(2)]
    repeated = api.get(TOP + "?limit=5&limit=6")

    assert [r.status_code for r in unknown] == [422, 422]
    assert "colour" in unknown[1].json()["detail"]
    assert [r.status_code for r in invalid] == [422, 422]
    assert repeated.status_code == 422 and "'limit'" in repeated.json()["detail"]


def test_a_miss_is_authorized_and_rate_limited_once(api_factory: ApiFactory) -> None:
    api = api_factory(rate_limit_per_second=0.01, rate_limit_burst=3)

    statuses = [api.get(TOP, params={"limit": limit}).status_code for limit in (1, 2, 3, 4)]

    # Three misses use three tokens (the fast path's check is handed on to the route, not repeated).
    assert statuses == [200, 200, 200, 429]


@pytest.mark.parametrize("enabled", [False, True])
def test_fastapi_native_opentelemetry_follows_the_setting(tmp_path: Path, enabled: bool) -> None:
    app = create_app(Settings(home=tmp_path / "home", opentelemetry=enabled))

    # Off, FastAPI does not look for a configured OpenTelemetry provider on every request.
    assert {app._telemetry[signal] for signal in ("tracing", "metrics", "logs")} == {enabled}
