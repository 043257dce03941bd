"""The Lambda entry point serves the same app to API Gateway REST (payload v1) and HTTP API (v2) events."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from salescast.config import get_settings
from salescast.data.database import make_engine
from salescast.serving.auth import KeyStore
from tests.serving.served_store import StoreTemplate, copy_store, database_name, drop_database

MODULE = "salescast.serving.lambda_handler"


@pytest.fixture
def lambda_module(
    store_template: StoreTemplate, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[ModuleType, str]]:
    url = copy_store(store_template, tmp_path)
    engine = make_engine(url)
    secret = KeyStore(engine, cache_seconds=0).create("lambda", ["read"]).secret
    engine.dispose()
    for name, value in {
        "SALESCAST_HOME": str(tmp_path / "home"),
        "SALESCAST_DATABASE_URL": url,
        "SALESCAST_ARTIFACT_URI": f"file://{store_template.artifacts}",
        "SALESCAST_LOG_FORMAT": "text",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    sys.modules.pop(MODULE, None)
    module = importlib.import_module(MODULE)
    yield module, secret
    module._state.predictions.close(timeout=5.0)
    module._state.engine.dispose()
    sys.modules.pop(MODULE, None)
    get_settings.cache_clear()
    if url.startswith("postgresql"):
        drop_database(database_name(url))


def rest_v1_event(path: str, query: dict[str, str], headers: dict[str, str]) -> dict[str, object]:
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": "GET",
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()},
        "pathParameters": {"proxy": path.lstrip("/")},
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": "GET",
            "path": f"/prod{path}",
            "stage": "prod",
            "requestId": "r-1",
            "identity": {"sourceIp": "203.0.113.9"},
        },
        "body": None,
        "isBase64Encoded": False,
    }


def http_v2_event(path: str, query: str, headers: dict[str, str]) -> dict[str, object]:
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.9"},
            "requestId": "r-2",
            "stage": "$default",
        },
        "isBase64Encoded": False,
    }


def test_the_handler_answers_rest_and_http_api_events(lambda_module: tuple[ModuleType, str]) -> None:
    module, secret = lambda_module
    headers = {"authorization": f"Bearer {secret}", "host": "api.example.com"}

    v1 = module.handler(rest_v1_event("/api/v1/forecast/top-products", {"limit": "3"}, headers), None)
    v2 = module.handler(http_v2_event("/api/v1/forecast/top-products", "limit=2&time_period=week", headers), None)
    refused = module.handler(http_v2_event("/api/v1/forecast/top-products", "", {"host": "api.example.com"}), None)

    assert v1["statusCode"] == 200, v1["body"]
    assert len(json.loads(v1["body"])["products"]) == 3
    assert v2["statusCode"] == 200, v2["body"]
    body = json.loads(v2["body"])
    assert len(body["products"]) == 2 and body["time_period"] == "week" and body["model_version"] == 1
    assert v2["headers"]["x-model-version"] == "demand:v1"
    assert refused["statusCode"] == 401
    assert json.loads(refused["body"])["title"] == "Unauthorized"
    # The prediction log was written before each invocation returned: a frozen container holds nothing.
    assert module._state.predictions.stats().pending == 0
    assert not module._state.predictions.separate_process  # a thread: no second process per container


def test_the_handler_refuses_a_body_over_the_cap_before_the_key_is_checked(
    lambda_module: tuple[ModuleType, str],
) -> None:
    module, _ = lambda_module
    event = http_v2_event("/api/v1/forecast/what-if", "", {"host": "api.example.com"})
    event["requestContext"]["http"]["method"] = "POST"  # type: ignore[index]
    oversized = {**event, "body": json.dumps({"product": "x" * 70_000})}
    nested = {**event, "body": "[" * 5_000 + "]" * 5_000}
    small = {**event, "body": json.dumps({"product": "x"})}

    answers = [module.handler(e, None) for e in (oversized, nested, small)]

    assert [a["statusCode"] for a in answers] == [413, 422, 401]
    assert json.loads(answers[0]["body"])["detail"] == "the request body is larger than the limit of 65536 bytes"
    assert json.loads(answers[1]["body"])["detail"] == "the JSON body is nested more than 32 levels deep"
    assert answers[0]["headers"]["x-content-type-options"] == "nosniff"
