"""Live accuracy: a version trained on the generator's data, promoted, then a held-back month ingested;
what salescast stores must match an offline computation of the same metrics (pandas, written here
independently of salescast.monitoring) to the fourth decimal."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, insert, select, text
from typer.testing import CliRunner

from salescast.cli import app
from salescast.config import Settings, get_settings
from salescast.data.ingest import ingest_file
from salescast.data.presets import resolve_spec
from salescast.data.schema import AliasEvent, LiveAccuracy, ModelVersion
from salescast.data.synthetic import SyntheticConfig, generate_sales, write_sales
from salescast.monitoring.alerts import LogAlertSink
from salescast.monitoring.live_accuracy import accuracy, scored_spans, update_live_accuracy, version_accuracy
from salescast.pipeline import PipelineConfig, run_pipeline
from salescast.registry.artifacts import LocalArtifactStore
from salescast.registry.versions import CHALLENGER, PRODUCTION, ModelRegistry
from salescast.serving.app import create_app
from salescast.serving.auth import KeyStore

FAST = {"lgbm": {"n_estimators": 40}}
HELD_BACK_DAYS = 30
SEASON = 7


@dataclass
class Promoted:
    engine: Engine
    registry: ModelRegistry
    settings: Settings
    train: pd.DataFrame
    held_back: pd.DataFrame
    tmp: Path


@pytest.fixture
def promoted(engine: Engine, settings: Settings, tmp_path: Path) -> Promoted:
    sales = generate_sales(SyntheticConfig(stores=2, products=8, days=400, seed=11))
    cut = pd.Timestamp(sales["date"].max()) - pd.Timedelta(days=HELD_BACK_DAYS)
    train, held_back = sales[pd.to_datetime(sales["date"]) <= cut], sales[pd.to_datetime(sales["date"]) > cut]
    write_sales(train, tmp_path / "train.csv")
    registry = ModelRegistry(engine, LocalArtifactStore(tmp_path / "artifacts"))
    config = PipelineConfig(models=["lgbm"], horizon=14, windows=2, model_params=FAST)
    result = run_pipeline(engine, registry, LogAlertSink(), config, settings, new_files=[tmp_path / "train.csv"])
    assert result.promoted
    return Promoted(engine, registry, settings, train, held_back, tmp_path)


def ingest_held_back(state: Promoted, frame: pd.DataFrame | None = None, name: str = "month.csv") -> None:
    path = state.tmp / name
    write_sales(state.held_back if frame is None else frame, path)
    report = ingest_file(state.engine, path, resolve_spec(None), state.settings)
    assert report.status == "succeeded", report.message


def offline_metrics(state: Promoted, version: ModelVersion) -> pd.DataFrame:
    """Per category and horizon day: MAE, WAPE %, MASE (mean |e| / in-sample seasonal naive MAE of the
    series' training data, one-step naive when that is 0) and bias %, computed here with pandas."""
    with state.engine.connect() as conn:
        forecasts = pd.DataFrame(
            conn.execute(
                text(
                    "SELECT st.code AS store, p.sku AS product, f.date, f.p50 FROM forecasts f "
                    "JOIN stores st ON st.id = f.store_id JOIN products p ON p.id = f.product_id "
                    "WHERE f.version_id = :v"
                ),
                {"v": version.id},
            )
            .mappings()
            .all()
        )
    forecasts["date"] = pd.to_datetime(forecasts["date"])
    actuals = state.held_back.assign(date=pd.to_datetime(state.held_back["date"]))
    last_day = actuals["date"].max()
    forecasts = forecasts[forecasts["date"] <= last_day]
    category = state.train.drop_duplicates("product").set_index("product")["category"]
    joined = forecasts.merge(
        actuals[["store", "product", "date", "units"]], how="left", on=["store", "product", "date"]
    )
    joined["units"] = joined["units"].fillna(0.0)
    joined["category"] = joined["product"].map(category)

    def scale(history: pd.Series) -> float:
        for lag in (SEASON, 1):
            value = (history - history.shift(lag)).abs().dropna().mean()
            if len(history) > lag and value > 0:
                return float(value)
        return float("nan")

    train = state.train.assign(date=pd.to_datetime(state.train["date"])).sort_values("date")
    scales = train.groupby(["store", "product"])["units"].apply(scale).rename("scale").reset_index()
    joined = joined.merge(scales, on=["store", "product"], how="left")
    assert version.data_end is not None
    joined["horizon_day"] = (joined["date"] - pd.Timestamp(version.data_end)).dt.days
    joined["e"] = joined["p50"] - joined["units"]
    joined["ae"] = joined["e"].abs()
    joined["scaled"] = joined["ae"] / joined["scale"]
    grouped = joined.groupby(["category", "horizon_day"])
    sold = grouped["units"].sum().where(grouped["units"].sum() > 0)  # WAPE and bias: undefined without sales
    return pd.DataFrame(
        {
            "points": grouped.size(),
            "mae": grouped["ae"].mean(),
            "wape": grouped["ae"].sum() / sold * 100,
            "mase": grouped["scaled"].mean(),
            "bias": grouped["e"].sum() / sold * 100,
            "abs_error": grouped["ae"].sum(),
            "actual": grouped["units"].sum(),
        }
    )


def test_live_accuracy_matches_an_offline_computation_to_the_fourth_decimal(promoted: Promoted) -> None:
    version = promoted.registry.alias("demand", PRODUCTION)
    assert update_live_accuracy(promoted.engine, "demand") == 0  # no actuals after the training data yet

    ingest_held_back(promoted)
    cells = update_live_accuracy(promoted.engine, "demand")

    expected = offline_metrics(promoted, version)
    stored = pd.DataFrame(r.as_dict() for r in accuracy(promoted.engine, "demand", level="horizon"))
    stored = stored.set_index(["category", "horizon_day"]).sort_index()
    categories = promoted.train["category"].nunique()
    assert categories > 1
    assert cells == len(expected) == len(stored) == categories * HELD_BACK_DAYS
    assert sorted(stored.index.get_level_values("horizon_day").unique()) == list(range(1, HELD_BACK_DAYS + 1))
    assert (stored["version"] == version.version).all()
    assert stored["points"].tolist() == expected["points"].tolist()
    for metric in ("mae", "wape", "mase", "bias"):
        np.testing.assert_allclose(
            stored[metric].to_numpy(dtype=float), expected[metric].to_numpy(), rtol=0, atol=5e-5, err_msg=metric
        )
    # The rollup per category pools the same errors (not a mean of the daily values).
    per_category = {r.category: r for r in accuracy(promoted.engine, "demand", level="category")}
    for category, part in expected.groupby(level="category"):
        pooled_wape = part["abs_error"].sum() / part["actual"].sum() * 100
        assert per_category[str(category)].points == part["points"].sum()
        assert per_category[str(category)].wape == pytest.approx(pooled_wape, abs=5e-5)
    overall = version_accuracy(promoted.engine, "demand", [version.version])[version.version]
    assert overall.points == int(expected["points"].sum())
    assert overall.wape is not None and 0 < overall.wape < 200
    assert overall.mase is not None and overall.mase > 0


def test_a_rerun_and_a_corrected_file_recompute_rather_than_add(promoted: Promoted) -> None:
    ingest_held_back(promoted)
    first = update_live_accuracy(promoted.engine, "demand")
    before = version_accuracy(promoted.engine, "demand", [1])[1]
    assert update_live_accuracy(promoted.engine, "demand") == first
    assert version_accuracy(promoted.engine, "demand", [1])[1] == before

    doubled = promoted.held_back.assign(
        units=promoted.held_back["units"] * 2, revenue=promoted.held_back["revenue"] * 2
    )
    ingest_held_back(promoted, doubled, "corrected.csv")
    update_live_accuracy(promoted.engine, "demand")
    after = version_accuracy(promoted.engine, "demand", [1])[1]
    assert after.points == before.points and after.bias is not None and before.bias is not None
    assert after.bias < before.bias  # the same forecasts against twice the sales: more under-forecast


def test_only_days_with_actuals_count_and_a_successor_takes_over_its_days(promoted: Promoted) -> None:
    half = promoted.held_back[pd.to_datetime(promoted.held_back["date"]) <= promoted.held_back["date"].min()]
    ingest_held_back(promoted, half, "first-day.csv")
    update_live_accuracy(promoted.engine, "demand")
    rows = accuracy(promoted.engine, "demand", level="horizon")
    assert {r.horizon_day for r in rows} == {1}  # one day arrived: one horizon day scored

    # A second version, trained on data 10 days longer, takes production: from its first forecast day on,
    # those days are its to answer for, and the first version is scored only up to the day before.
    v1 = promoted.registry.alias("demand", PRODUCTION)
    assert v1.data_end is not None
    v1_end = v1.data_end
    with promoted.engine.begin() as conn:
        v2_id = conn.execute(
            text(
                "INSERT INTO model_versions (name, version, created_at, status, families, weights, params, features,"
                " freq, horizon, data_fingerprint, data_start, data_end, series, package_version, metrics)"
                " SELECT name, 2, created_at, status, families, weights, params, features, freq, horizon,"
                " data_fingerprint, data_start, :end, series, package_version, metrics FROM model_versions"
                " WHERE id = :id RETURNING id"
            ),
            {"end": v1_end + dt.timedelta(days=10), "id": v1.id},
        ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO forecasts (version_id, product_id, store_id, date, p10, p50, p90, mean, method) "
                "SELECT :v2, product_id, store_id, date, p10, p50 + 1, p90, mean, method FROM forecasts "
                "WHERE version_id = :v1 AND date > :end"
            ),
            {"v2": v2_id, "v1": v1.id, "end": v1_end + dt.timedelta(days=10)},
        )
        for alias, at in ((PRODUCTION, 1), (CHALLENGER, 2)):
            conn.execute(
                insert(AliasEvent).values(
                    name="demand",
                    alias=alias,
                    from_version_id=v1.id if alias == PRODUCTION else None,
                    to_version_id=v2_id,
                    actor="test",
                    at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=at),
                )
            )
    ingest_held_back(promoted)
    update_live_accuracy(promoted.engine, "demand")

    with promoted.engine.connect() as conn:
        spans = {s.version: s for s in scored_spans(conn, "demand")}
        v1_days = (
            conn.execute(select(LiveAccuracy.horizon_day).where(LiveAccuracy.version == 1).distinct()).scalars().all()
        )
        v2_days = (
            conn.execute(select(LiveAccuracy.horizon_day).where(LiveAccuracy.version == 2).distinct()).scalars().all()
        )
    assert spans[1].last == v1_end + dt.timedelta(days=10)
    assert spans[2].first == v1_end + dt.timedelta(days=11) and spans[2].last is None
    assert sorted(v1_days) == list(range(1, 11))
    assert sorted(v2_days) == list(range(1, HELD_BACK_DAYS - 10 + 1))  # its own horizon: from its data end


def test_versions_never_on_production_or_challenger_are_not_scored(promoted: Promoted) -> None:
    with promoted.engine.begin() as conn:
        conn.execute(delete(AliasEvent))
    ingest_held_back(promoted)
    assert update_live_accuracy(promoted.engine, "demand") == 0
    assert accuracy(promoted.engine, "demand") == []


def test_ingest_scores_the_new_actuals_and_the_cli_and_the_api_list_them(
    promoted: Promoted, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SALESCAST_DATABASE_URL", promoted.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("SALESCAST_HOME", str(promoted.tmp / "home"))
    get_settings.cache_clear()
    try:
        write_sales(promoted.held_back, promoted.tmp / "month.csv")
        loaded = CliRunner().invoke(app, ["ingest", str(promoted.tmp / "month.csv")])
        assert loaded.exit_code == 0, loaded.output
        assert "live accuracy of demand" in loaded.output

        per_version = CliRunner().invoke(app, ["monitor", "accuracy", "--by", "version", "--format", "json"])
        per_day = CliRunner().invoke(app, ["monitor", "accuracy", "--by", "horizon", "--format", "csv"])
        shown = CliRunner().invoke(app, ["monitor", "accuracy"])
        drift = CliRunner().invoke(app, ["monitor", "drift", "--format", "json"])
    finally:
        get_settings.cache_clear()

    assert per_version.exit_code == 0, per_version.output
    listed = json.loads(per_version.output)
    expected = version_accuracy(promoted.engine, "demand", [1])[1]
    assert len(listed) == 1 and listed[0]["version"] == 1 and listed[0]["points"] == expected.points
    assert listed[0]["wape"] == pytest.approx(expected.wape) and listed[0]["category"] is None
    lines = per_day.output.strip().splitlines()
    assert lines[0].split(",") == [
        "model",
        "version",
        "category",
        "horizon_day",
        "points",
        "mae",
        "wape",
        "mase",
        "bias",
        "first_date",
        "last_date",
    ]
    assert len(lines) - 1 == promoted.train["category"].nunique() * HELD_BACK_DAYS
    assert shown.exit_code == 0 and "live accuracy" in shown.output and "wape" in shown.output
    assert drift.exit_code == 0, drift.output
    checks = json.loads(drift.output)
    assert {row["check"] for row in checks} >= {"drift psi", "freshness days"}
    assert all(set(row) == {"check", "subject", "value", "threshold", "state"} for row in checks)

    # The API serves the same rows to a read key, and 404s a model it does not know.
    settings = promoted.settings.model_copy(
        update={
            "database_url": promoted.engine.url.render_as_string(hide_password=False),
            "artifact_uri": f"file://{promoted.tmp / 'artifacts'}",
            "prediction_log_process": False,
        }
    )
    read_key = KeyStore(promoted.engine, cache_seconds=0).create("reader", ["read"]).secret
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        auth = {"Authorization": f"Bearer {read_key}"}
        by_version = client.get("/api/v1/models/demand/accuracy", params={"by": "version"}, headers=auth)
        by_category = client.get("/api/v1/models/demand/accuracy", headers=auth)
        unknown = client.get("/api/v1/models/nothing/accuracy", headers=auth)
        anonymous = client.get("/api/v1/models/demand/accuracy")
    assert by_version.status_code == 200, by_version.text
    assert by_version.json() == listed
    assert by_category.status_code == 200
    assert sum(row["points"] for row in by_category.json()) == expected.points
    assert {row["category"] for row in by_category.json()} == set(promoted.train["category"].unique())
    assert unknown.status_code == 404 and anonymous.status_code == 401
