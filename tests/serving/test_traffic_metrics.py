"""The request and traffic metrics name the version that served a request, also when it failed, and count
shadow computations; /metrics exports the serving version, the traffic share and what the database
records (data freshness, hold-out WAPE, training and ingestion runs)."""

from __future__ import annotations

import re

import pytest
from prometheus_client import REGISTRY

from tests.serving.conftest import Api

NAME = "demand"
WHAT_IF = "/api/v1/forecast/what-if"


def requests_counted(status: str, version: str) -> float:
    labels = {"route": WHAT_IF, "method": "POST", "status": status, "model_version": version}
    return REGISTRY.get_sample_value("salescast_http_requests_total", labels) or 0.0


def traffic(variant: str) -> float:
    return REGISTRY.get_sample_value("salescast_traffic_assignments_total", {"model": NAME, "variant": variant}) or 0.0


def first_product(api: Api) -> str:
    product: str = api.get("/api/v1/products", params={"page_size": 1}).json()["items"][0]["product_id"]
    return product


def test_a_failing_candidates_500s_are_counted_under_its_version(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    sku = first_product(api)
    state = api.state
    state.deployments.start(NAME, 2, "canary", steps=[1.0], bake_seconds=3600, actor="test")
    state.plans.refresh()
    candidate = state.registry.version(NAME, 2)
    model = state.models.get(candidate)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the candidate's model blew up")  # a bug in the candidate, not a refusal

    monkeypatch.setattr(model, "predict_with_members", broken)  # this version's loaded model only
    before = {(s, v): requests_counted(s, v) for s in ("500", "200") for v in ("demand:v2", "demand:v1", "")}

    statuses = [
        api.post(WHAT_IF, key="predict", json={"product": sku, "horizon": 7, "price_change_pct": -10}).status_code
        for _ in range(4)
    ]

    assert statuses == [500] * 4
    assert requests_counted("500", "demand:v2") == before[("500", "demand:v2")] + 4
    assert requests_counted("500", "") == before[("500", "")]
    assert requests_counted("500", "demand:v1") == before[("500", "demand:v1")]


def test_shadow_computations_are_counted_as_traffic(api: Api) -> None:
    state = api.state
    state.deployments.start(NAME, 2, "shadow", actor="test")
    state.plans.refresh()
    before = {variant: traffic(variant) for variant in ("production", "challenger", "shadow")}

    answered = [api.get("/api/v1/forecast/top-products", params={"limit": n}).status_code for n in (3, 4, 5)]

    assert answered == [200, 200, 200]
    assert traffic("shadow") == before["shadow"] + 3
    assert traffic("production") == before["production"] + 3
    assert traffic("challenger") == before["challenger"]


def sample(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
            if all(found.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    return None


def test_metrics_export_the_serving_versions_and_what_the_database_records(api: Api) -> None:
    state = api.state
    state.deployments.start(NAME, 2, "split", steps=[0.2], actor="test")
    state.plans.refresh()

    text = api.client.get("/api/v1/metrics").text

    assert sample(text, "salescast_model_version_served", model=NAME, alias="production") == 1
    assert sample(text, "salescast_model_version_served", model=NAME, alias="challenger") == 2
    assert sample(text, "salescast_traffic_share", model=NAME, variant="challenger") == pytest.approx(0.2)
    assert sample(text, "salescast_traffic_share", model=NAME, variant="production") == pytest.approx(0.8)
    # The template's store: one ingested file, two training runs (both registered), sales from 2023.
    assert sample(text, "salescast_training_runs_total", model=NAME, outcome="registered") == 2
    assert sample(text, "salescast_training_last_gate_passed", model=NAME) == 1
    assert (sample(text, "salescast_training_last_duration_seconds", model=NAME, outcome="registered") or 0) > 0
    accepted = sample(text, "salescast_ingestion_rows_total", outcome="accepted")
    assert accepted is not None and accepted > 1000
    assert sample(text, "salescast_ingestion_rows_total", outcome="rejected") == 0
    assert sample(text, "salescast_ingestion_runs_total", status="succeeded") == 1
    freshness = [sample(text, "salescast_data_freshness_seconds", store=s) for s in ("S01", "S02", "S001", "S002")]
    ages = [age for age in freshness if age is not None]
    assert len(ages) == 2 and all(age > 86400 * 300 for age in ages)  # the generated sales end in 2024
    holdout = {v: sample(text, "salescast_holdout_wape", model=NAME, version=v) for v in ("1", "2")}
    assert holdout["1"] is not None and holdout["2"] is not None and 0 < holdout["1"] < 200
    # Declared before any actuals or drift check exist, so dashboards and rules see the names.
    assert "# TYPE salescast_live_wape gauge" in text and "# TYPE salescast_drift_psi gauge" in text
