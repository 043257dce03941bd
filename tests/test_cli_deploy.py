"""`salescast deploy` as an operator runs it: start a canary, watch it, step it, roll it back."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert
from typer.testing import CliRunner

from salescast.cli import app
from salescast.config import get_settings
from salescast.data.schema import StoredForecast
from salescast.errors import ConflictError
from salescast.registry.artifacts import LocalArtifactStore
from salescast.registry.versions import PRODUCTION, ModelRegistry
from tests.registry.test_deployments import NAME, healthy_traffic
from tests.registry.test_versions import candidate, model_folder


@pytest.fixture
def registry(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModelRegistry]:
    """v1 in production and v2, both with forecasts stored, in the database and artifact store the CLI uses."""
    monkeypatch.setenv("SALESCAST_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SALESCAST_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("SALESCAST_ARTIFACT_URI", (tmp_path / "artifacts").as_uri())
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    registry = ModelRegistry(engine, LocalArtifactStore(tmp_path / "artifacts"))
    v1 = registry.register(candidate(NAME), model_folder(tmp_path, "a"))
    v2 = registry.register(candidate(NAME), model_folder(tmp_path, "b"))
    registry.set_alias(NAME, PRODUCTION, 1, actor="test")
    # Both can serve already, so `deploy start` has no forecasts to compute (their artifacts are no real model).
    with engine.begin() as conn:
        conn.execute(
            insert(StoredForecast),
            [
                {
                    "version_id": row.id,
                    "product_id": 1,
                    "store_id": 1,
                    "date": dt.date(2026, 3, 2),
                    "p10": 1.0,
                    "p50": 2.0,
                    "p90": 3.0,
                }
                for row in (v1, v2)
            ],
        )
    yield registry
    get_settings.cache_clear()


def test_a_canary_started_stepped_and_rolled_back_from_the_command_line(
    registry: ModelRegistry, engine: Engine
) -> None:
    runner = CliRunner()

    started = runner.invoke(app, ["deploy", "start", NAME, "2", "--strategy", "canary", "--bake", "0"])
    assert started.exit_code == 0, started.output
    assert "v1 -> v2" in started.output and "10%" in started.output and "1 of 2" in started.output

    status = runner.invoke(app, ["deploy", "status", NAME])
    assert status.exit_code == 0, status.output
    assert "canary" in status.output and "active" in status.output
    assert "health this step: insufficient (0 of 20 candidate requests so far)" in status.output

    healthy_traffic(engine, 2, dt.datetime.now(dt.UTC))
    stepped = runner.invoke(app, ["deploy", "evaluate", NAME])
    assert stepped.exit_code == 0, stepped.output
    assert "100%" in stepped.output and "2 of 2" in stepped.output

    again = runner.invoke(app, ["deploy", "start", NAME, "2"])
    assert isinstance(again.exception, ConflictError)
    assert "already has an active canary deployment" in str(again.exception)

    rolled = runner.invoke(app, ["deploy", "rollback", NAME, "--reason", "forecasts look off"])
    assert rolled.exit_code == 0, rolled.output
    assert "rolled_back" in rolled.output and "forecasts look off" in rolled.output
    assert registry.aliases(NAME) == {PRODUCTION: 1}

    after = runner.invoke(app, ["deploy", "status", NAME])
    assert "rolled_back" in after.output and "health this step" not in after.output
    nothing = runner.invoke(app, ["deploy", "evaluate", NAME])
    assert nothing.exit_code == 0 and "no active deployment" in nothing.output


def test_a_split_is_promoted_and_a_shadow_stopped_from_the_command_line(registry: ModelRegistry) -> None:
    runner = CliRunner()

    split = runner.invoke(app, ["deploy", "start", NAME, "2", "--strategy", "split", "--steps", "0.3"])
    assert split.exit_code == 0 and "30%" in split.output, split.output
    promoted = runner.invoke(app, ["deploy", "promote", NAME, "--reason", "clear winner"])
    assert promoted.exit_code == 0 and "completed" in promoted.output, promoted.output
    assert registry.aliases(NAME) == {PRODUCTION: 2}

    shadow = runner.invoke(app, ["deploy", "start", NAME, "1", "--strategy", "shadow"])
    assert shadow.exit_code == 0, shadow.output
    stopped = runner.invoke(app, ["deploy", "stop", NAME])
    assert stopped.exit_code == 0 and "stopped" in stopped.output, stopped.output
    assert registry.aliases(NAME) == {PRODUCTION: 2}

    bad = runner.invoke(app, ["deploy", "start", NAME, "1", "--steps", "a,b"])
    assert bad.exit_code == 2 and "--steps expects shares" in bad.output


def test_deploy_status_as_json_and_csv(registry: ModelRegistry) -> None:
    runner = CliRunner()
    started = runner.invoke(app, ["deploy", "start", NAME, "2", "--strategy", "canary", "--bake", "600"])
    assert started.exit_code == 0, started.output

    as_json = runner.invoke(app, ["deploy", "status", NAME, "--format", "json"])
    as_csv = runner.invoke(app, ["deploy", "status", NAME, "--format", "csv"])

    assert as_json.exit_code == 0, as_json.output
    status = json.loads(as_json.stdout)
    assert (status["name"], status["strategy"], status["status"], status["actor"]) == (NAME, "canary", "active", "cli")
    assert (status["baseline_version"], status["candidate_version"], status["step"]) == (1, 2, 1)
    assert status["share"] == pytest.approx(0.1) and status["steps"] == pytest.approx([0.1, 1.0])
    assert 590 < status["bake_seconds_left"] <= 600
    assert (status["health"], status["health_reason"]) == ("insufficient", "0 of 20 candidate requests so far")
    assert dt.datetime.fromisoformat(status["started"]).utcoffset() == dt.timedelta(0)
    assert as_csv.exit_code == 0, as_csv.output
    (row,) = csv.DictReader(io.StringIO(as_csv.stdout))
    assert (row["id"], row["strategy"], row["steps"]) == (str(status["id"]), "canary", "0.1,1.0")
    assert row["health"] == "insufficient"
