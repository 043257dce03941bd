"""The routes the dashboard's pages need besides the forecasts: ingestion runs and their rejected rows,
a model's traffic plan and deployment history, the alias audit trail, stores, a product's promotion days
and holidays, and the caller's scopes; and the dashboard itself at `/` under a self-only policy."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from salescast.data.ingest import ingest_file
from salescast.data.presets import resolve_spec
from salescast.data.schema import IngestionRun, Product, SalesFact, Store
from tests.serving.conftest import Api, ApiFactory


def test_data_runs_report_the_ingestion_counts_and_the_newest_sales_date(api: Api) -> None:
    with Session(api.engine) as session:
        run = session.scalars(select(IngestionRun).order_by(IngestionRun.id.desc())).first()
        newest, rows = session.execute(select(func.max(SalesFact.date), func.count()).select_from(SalesFact)).one()
    assert run is not None

    body = api.get("/api/v1/data/runs").json()

    assert body["newest_sales_date"] == newest.isoformat()
    assert body["sales_rows"] == rows and body["products"] == 8
    latest = body["runs"][0]
    assert latest["id"] == run.id and latest["status"] == "succeeded"
    assert (latest["rows_read"], latest["rows_accepted"], latest["facts_inserted"]) == (
        run.rows_read,
        run.rows_accepted,
        run.facts_inserted,
    )


def test_rejected_rows_come_with_line_column_and_reason(api: Api, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    good = [f"2024-03-{day:02d},S001,P00001,{day}" for day in range(1, 11)]
    # Lines 7 and 8 of the file (the header is line 1) are bad: 2 of 12 rows, under the refusal limit.
    lines = [*good[:5], "2024-03-20,S001,P00001,lots", "not-a-date,S001,P00001,1", *good[5:]]
    bad.write_text("date,store,product,units\n" + "\n".join(lines) + "\n")
    report = ingest_file(api.engine, bad, resolve_spec(None), api.settings)
    assert report.rows_rejected == 2

    runs = api.get("/api/v1/data/runs", params={"limit": 1}).json()["runs"]
    rejects = api.get(f"/api/v1/data/runs/{runs[0]['id']}/rejects").json()

    assert runs[0]["rows_read"] == 12 and runs[0]["rows_rejected"] == 2 and runs[0]["rows_accepted"] == 10
    assert rejects["rows_rejected"] == 2
    assert [(row["line"], row["column"]) for row in rejects["rows"]] == [(7, "units"), (8, "date")]
    assert all(row["reason"] for row in rejects["rows"])
    missing = api.get("/api/v1/data/runs/999999/rejects")
    assert missing.status_code == 404 and "no ingestion run" in missing.json()["detail"]


def test_the_deployment_route_shows_the_plan_its_bake_time_and_why_a_rollout_ended(api: Api) -> None:
    idle = api.get("/api/v1/deployments/demand").json()
    assert idle["production_version"] == 1 and idle["active"] is None and idle["history"] == []
    assert idle["production"] == {
        "requests": 0,
        "errors": 0,
        "error_rate": 0.0,
        "mean_latency_ms": 0.0,
        "p99_latency_ms": None,
    }

    api.state.deployments.start("demand", 2, "canary", bake_seconds=600, actor="test")
    active = api.get("/api/v1/deployments/demand").json()["active"]
    assert (active["candidate_version"], active["production_version"], active["strategy"]) == (2, 1, "canary")
    assert active["share"] == 0.1 and active["step"] == 0 and active["steps"] == [0.1, 1.0]
    assert 590 <= active["bake_seconds_left"] <= 600
    assert active["verdict"] == "insufficient"

    api.state.deployments.rollback("demand", "test", "p99 latency doubled")
    ended = api.get("/api/v1/deployments/demand").json()
    assert ended["active"] is None
    assert [(d["status"], d["reason"]) for d in ended["history"]] == [("rolled_back", "p99 latency doubled")]
    assert api.get("/api/v1/deployments/nosuchmodel").status_code == 404


def test_alias_history_is_newest_first_and_follows_a_promotion(api: Api) -> None:
    moved = api.post("/api/v1/models/demand/aliases", json={"alias": "production", "version": 2, "reason": "try"})
    assert moved.status_code == 200

    history = api.get("/api/v1/models/demand/history").json()
    production = api.get("/api/v1/models/demand/history", params={"alias": "production"}).json()

    assert (history[0]["alias"], history[0]["from_version"], history[0]["to_version"]) == ("production", 1, 2)
    assert history[0]["reason"] == "try" and history[0]["at"].endswith("+00:00")
    assert [(e["from_version"], e["to_version"]) for e in production] == [(1, 2), (None, 1)]
    assert api.get("/api/v1/models/nosuchmodel/history").status_code == 404


def test_a_read_key_may_not_move_an_alias(api: Api) -> None:
    forged = api.post("/api/v1/models/demand/aliases", key="read", json={"alias": "production", "version": 2})
    assert forged.status_code == 403
    assert api.get("/api/v1/models/demand/history").json()[0]["to_version"] == 1


def test_keys_me_names_every_scope_a_key_grants(api: Api) -> None:
    assert api.get("/api/v1/keys/me", key="read").json()["scopes"] == ["read"]
    admin = api.get("/api/v1/keys/me", key="admin").json()
    assert admin["scopes"] == ["read", "predict", "admin"] and admin["name"] == "admin-key"
    assert admin["prefix"] == api.keys["admin"][:11]
    assert api.get("/api/v1/keys/me", key=None).status_code == 401


def test_stores_and_a_product_calendar(api: Api) -> None:
    with Session(api.engine) as session:
        codes = list(session.scalars(select(Store.code).order_by(Store.code)))
        product_id, day = session.execute(
            select(SalesFact.product_id, SalesFact.date)
            .where(SalesFact.on_promotion.is_(True))
            .order_by(SalesFact.date, SalesFact.product_id)
            .limit(1)
        ).one()
        sku = session.scalar(select(Product.sku).where(Product.id == product_id))
        promoted = set(
            session.scalars(
                select(SalesFact.date)
                .where(
                    SalesFact.product_id == product_id,
                    SalesFact.on_promotion.is_(True),
                    SalesFact.date < day + dt.timedelta(days=400),
                )
                .distinct()
            )
        )
    assert sku is not None

    assert [s["code"] for s in api.get("/api/v1/stores").json()] == codes
    body = api.get(f"/api/v1/products/{sku}/calendar", params={"start": day.isoformat(), "days": 400}).json()

    assert set(body["promotion_days"]) == {d.isoformat() for d in promoted} and body["promotion_days"]
    assert body["end"] == (day + dt.timedelta(days=399)).isoformat()
    independence = dt.date(day.year if day <= dt.date(day.year, 7, 4) else day.year + 1, 7, 4)
    assert {"date": independence.isoformat(), "name": "Independence Day"} in body["holidays"]
    assert api.get("/api/v1/products/NOPE/calendar", params={"start": "2024-01-01"}).status_code == 404


def test_versions_carry_the_gate_verdict_and_category_metrics(api: Api) -> None:
    versions = api.get("/api/v1/models/demand/versions").json()
    first = next(v for v in versions if v["version"] == 1)
    assert first["gate"]["passed"] is True
    assert {check["against"] for check in first["gate"]["checks"]} >= {"baseline"}
    categories = first["metrics"]["card"]["categories"]
    assert categories and all(set(models) == {"ensemble", "snaive"} for models in categories.values())
    assert all(values["ensemble"]["mase"] is not None for values in categories.values())


def test_the_dashboard_is_served_at_the_root_under_a_self_only_policy(api: Api) -> None:
    page = api.get("/", key=None)
    config = api.get("/config.json", key=None)
    script = api.get("/assets/app.js", key=None)

    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "unsafe-inline" not in policy and "https:" not in policy
    assert "<script>" not in page.text and "style=" not in page.text
    assert config.json() == {"apiUrl": "", "openRead": False}
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert api.get("/assets/vendor/chart.umd.min.js", key=None).status_code == 200


def test_a_bundle_origin_may_call_the_api_across_origins(api_factory: ApiFactory) -> None:
    api = api_factory(dashboard_origins="https://dash.example.com")
    preflight = api.client.options(
        "/api/v1/models",
        headers={
            "Origin": "https://dash.example.com",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    answer = api.get("/api/v1/models", headers={"Origin": "https://dash.example.com"})
    stranger = api.get("/api/v1/models", headers={"Origin": "https://evil.example.com"})

    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://dash.example.com"
    assert answer.headers["access-control-allow-origin"] == "https://dash.example.com"
    assert "access-control-allow-origin" not in stranger.headers
