"""What a request leaves behind: one JSON access line (request id, key id, model version, latency; never
the key), optionally a CloudWatch EMF line, CORS headers for allowed origins only, and error bodies that
name no internals."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from salescast.config import Settings, settings_error
from salescast.serving import queries
from tests.serving.conftest import Api, ApiFactory

# Once, on SQLite: nothing here depends on the database backend.
ON_SQLITE = pytest.mark.parametrize("store_template", ["sqlite"], indirect=True)

TOP = "/api/v1/forecast/top-products"
WHAT_IF = "/api/v1/forecast/what-if"


def json_lines(text: str) -> list[dict[str, Any]]:
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def access_lines(text: str) -> list[dict[str, Any]]:
    return [line for line in json_lines(text) if line.get("logger") == "salescast.access"]


@ON_SQLITE
def test_every_request_logs_its_id_key_id_version_and_latency_never_the_key(
    api_factory: ApiFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    api = api_factory(access_log=True, log_format="json")
    capsys.readouterr()
    cached = [api.get(TOP, params={"limit": 2}) for _ in range(2)]  # a miss through the route, then the fast path
    what_if = api.post(WHAT_IF, key="predict", json={"product_id": "nope", "horizon_days": 7})
    unknown = api.get(TOP, key=None, headers={"Authorization": "Bearer sc_00000000_" + "A" * 43})
    captured = capsys.readouterr()

    lines = access_lines(captured.err)
    assert [(line["route"], line["status"]) for line in lines] == [
        (TOP, 200),
        (TOP, 200),
        (WHAT_IF, what_if.status_code),
        (TOP, 401),
    ]
    read_id = api.engine.connect().exec_driver_sql("SELECT id FROM api_keys WHERE name = 'read-key'").scalar()
    predict_id = api.engine.connect().exec_driver_sql("SELECT id FROM api_keys WHERE name = 'predict-key'").scalar()
    assert [line["key_id"] for line in lines] == [read_id, read_id, predict_id, None]
    assert [line["request_id"] for line in lines] == [r.headers["X-Request-Id"] for r in (*cached, what_if, unknown)]
    version = cached[0].headers["X-Model-Version"]
    assert [line["model_version"] for line in lines[:2]] == [version, version]
    assert all(isinstance(line["latency_ms"], float) and line["latency_ms"] >= 0 for line in lines)
    assert lines[0]["key_prefix"] == api.keys["read"][:11]
    # No secret part of any key, valid or not, in anything the server wrote.
    everything = captured.err + captured.out
    for secret in (*api.keys.values(), "A" * 43):
        assert secret.split("_", 2)[-1] not in everything


@ON_SQLITE
def test_emf_lines_carry_the_request_metrics_in_the_cloudwatch_shape(
    api_factory: ApiFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    api = api_factory(log_emf=True, emf_namespace="salescast-test")
    capsys.readouterr()
    ok = api.get(TOP, params={"limit": 2})
    missing = api.get("/api/v1/forecast/products/NOPE")
    unrouted = api.get("/api/v1/no-such-route")
    out = capsys.readouterr().out

    documents = [line for line in json_lines(out) if "_aws" in line]
    assert len(documents) == 3
    for document, response in zip(documents, (ok, missing, unrouted), strict=True):
        meta = document["_aws"]
        assert isinstance(meta["Timestamp"], int) and meta["Timestamp"] > 1_600_000_000_000
        (directive,) = meta["CloudWatchMetrics"]
        assert directive["Namespace"] == "salescast-test"
        # Every dimension and metric a directive names is a top-level member, as CloudWatch requires.
        for dimension_set in directive["Dimensions"]:
            assert 1 <= len(dimension_set) <= 30
            assert all(isinstance(document[name], str) and document[name] for name in dimension_set)
        names = {metric["Name"]: metric["Unit"] for metric in directive["Metrics"]}
        assert names == {"Requests": "Count", "Latency": "Milliseconds"}
        assert document["Requests"] == 1 and isinstance(document["Latency"], float)
        assert document["status"] == str(response.status_code)
        assert document["request_id"] == response.headers["X-Request-Id"]
    assert documents[0]["route"] == TOP and documents[0]["model_version"] == ok.headers["X-Model-Version"]
    # A forecast that fails still names the version it was routed to; a request no version saw, "none".
    assert documents[1]["status"] == "404" and documents[1]["model_version"] == ok.headers["X-Model-Version"]
    assert documents[2]["route"] == "unmatched" and documents[2]["model_version"] == "none"


@ON_SQLITE
def test_no_emf_lines_unless_asked(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    api.get(TOP, params={"limit": 2})
    assert "_aws" not in capsys.readouterr().out


@ON_SQLITE
def test_cors_answers_only_the_allowed_origins(api_factory: ApiFactory) -> None:
    api = api_factory(cors_origins="https://shop.example", cors_allow_credentials=True)
    preflight = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}

    allowed = api.client.options(TOP, headers={"Origin": "https://shop.example", **preflight})
    refused = api.client.options(TOP, headers={"Origin": "https://evil.example", **preflight})
    read = api.get(TOP, headers={"Origin": "https://shop.example"})
    foreign_read = api.get(TOP, headers={"Origin": "https://evil.example"})

    assert allowed.status_code == 200
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert allowed.headers["Access-Control-Allow-Credentials"] == "true"
    assert refused.status_code == 400 and "Access-Control-Allow-Origin" not in refused.headers
    assert read.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert "X-Model-Version" in read.headers["Access-Control-Expose-Headers"]
    assert "Access-Control-Allow-Origin" not in foreign_read.headers  # the browser withholds the answer


@ON_SQLITE
def test_without_origins_no_cors_headers_at_all(api: Api) -> None:
    response = api.get(TOP, headers={"Origin": "https://shop.example"})
    assert response.status_code == 200 and "Access-Control-Allow-Origin" not in response.headers


def test_a_wildcard_origin_with_credentials_is_refused_when_settings_load() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(cors_origins="https://a.example,*", cors_allow_credentials=True)
    message = str(settings_error(caught.value))
    assert "SALESCAST_CORS_ORIGINS='*' cannot be combined with SALESCAST_CORS_ALLOW_CREDENTIALS=true" in message
    assert Settings(cors_origins="*").cors_origin_list == ("*",)  # a wildcard alone is allowed
    with pytest.raises(ValidationError, match="without a path"):
        Settings(cors_origins="https://a.example/app")


@ON_SQLITE
def test_no_error_body_names_an_internal(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    internals = ("Traceback", "sqlalchemy", "psycopg", "sqlite3", "/home/", ".py", "SELECT", "api_keys", "sk-")

    def leaking(*args: object, **kwargs: object) -> dict[str, object]:
        raise RuntimeError("SELECT secret FROM api_keys; see /home/app/salescast/serving/queries.py sk-123")

    responses = [
        api.get("/api/v1/forecast/products/NOPE"),  # 404 of the service
        api.get("/api/v1/no-such-route"),  # 404 of the router
        api.get(TOP, params={"limit": "many"}),  # 422 of validation
        api.post(WHAT_IF, key="predict", content=b"{not json", headers={"Content-Type": "application/json"}),
        api.post(WHAT_IF, key="read", json={}),  # 403
        api.get(TOP, key=None, headers={"Authorization": "Bearer sc_1234abcd_tampered"}),  # 401
    ]
    monkeypatch.setattr(queries, "categories", leaking)
    responses.append(api.get("/api/v1/categories"))  # 500 of a crash

    assert [r.status_code for r in responses] == [404, 404, 422, 422, 403, 401, 500]
    for response in responses:
        assert response.headers["Content-Type"] == "application/problem+json"
        assert not [word for word in internals if word in response.text], response.text
