"""What the CLI prints for scripts and for people: tables that never cut a value (in a pipe or a narrow
terminal), `--format json|csv` on the listings, and an example in every command's `--help`."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy import Engine
from typer.testing import CliRunner, Result

from salescast.cli import app
from salescast.config import get_settings
from salescast.registry.artifacts import LocalArtifactStore
from salescast.registry.versions import PRODUCTION, ModelRegistry
from salescast.serving.auth import KeyStore
from tests.conftest import FIXTURES
from tests.registry.test_versions import candidate, model_folder

NAME = "demand"


@pytest.fixture
def database_url(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The CLI's settings (in this process and in the ones it starts) point at the test database."""
    url = engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("SALESCAST_DATABASE_URL", url)
    monkeypatch.setenv("SALESCAST_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SALESCAST_ARTIFACT_URI", raising=False)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


@pytest.fixture
def registry(engine: Engine, database_url: str, tmp_path: Path) -> ModelRegistry:
    """v1 (production, MASE 0.8 against a naive 1.25) and v2 (registered, no metrics)."""
    registry = ModelRegistry(engine, LocalArtifactStore(tmp_path / "home" / "artifacts"))
    first = candidate(NAME)
    first.metrics = {"candidate": {"mase": 0.8}, "baseline": {"mase": 1.25}}
    registry.register(first, model_folder(tmp_path, "a"))
    second = candidate(NAME)
    second.metrics = {}
    registry.register(second, model_folder(tmp_path, "b"))
    registry.set_alias(NAME, PRODUCTION, 1, actor="test")
    return registry


def piped(*args: str) -> subprocess.CompletedProcess[str]:
    """`salescast ARGS | cat` in a 60-column terminal: stdout is a pipe, COLUMNS says 60."""
    env = {**os.environ, "COLUMNS": "60"}
    env.pop("FORCE_COLOR", None)
    env.pop("TTY_COMPATIBLE", None)
    return subprocess.run(
        [sys.executable, "-m", "salescast.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def test_models_list_in_a_narrow_pipe_prints_whole_values(registry: ModelRegistry) -> None:
    created = registry.version(NAME, 1).created_at

    listed = piped("models", "list")

    assert listed.returncode == 0, listed.stderr
    assert "…" not in listed.stdout
    for column in ("name", "version", "created", "status", "aliases", "families", "series", "MASE", "vs naive"):
        assert column in listed.stdout
    first = next(line for line in listed.stdout.splitlines() if "production" in line)
    assert f"{created:%Y-%m-%d %H:%M}" in first
    assert "registered" in first and "0.800" in first and "1.250" in first


def test_keys_list_in_a_narrow_pipe_prints_whole_values(engine: Engine, database_url: str) -> None:
    created = KeyStore(engine).create("nightly-forecast-export", ["read", "predict"])

    listed = piped("keys", "list")

    assert listed.returncode == 0, listed.stderr
    assert "…" not in listed.stdout
    for column in ("id", "name", "prefix", "scopes", "created", "revoked"):
        assert column in listed.stdout
    row = next(line for line in listed.stdout.splitlines() if "nightly-forecast-export" in line)
    assert created.prefix in row and ",".join(created.scopes) in row
    assert f"{dt.datetime.now(dt.UTC):%Y-%m-%d}" in row and "UTC" in row


def test_models_list_as_json_and_csv(registry: ModelRegistry) -> None:
    as_json = invoke("models", "list", NAME, "--format", "json")
    as_csv = invoke("models", "list", NAME, "--format", "csv")

    assert as_json.exit_code == 0, as_json.output
    records = json.loads(as_json.stdout)
    assert [r["version"] for r in records] == [1, 2]
    first, second = records
    assert first["name"] == NAME and first["status"] == "registered" and first["aliases"] == [PRODUCTION]
    assert (first["families"], first["series"], first["mase"], first["naive_mase"]) == (["lgbm"], 12, 0.8, 1.25)
    assert dt.datetime.fromisoformat(first["created"]).utcoffset() == dt.timedelta(0)
    assert (second["aliases"], second["mase"], second["naive_mase"]) == ([], None, None)

    assert as_csv.exit_code == 0, as_csv.output
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert list(rows[0]) == [
        "name",
        "version",
        "created",
        "status",
        "aliases",
        "families",
        "series",
        "mase",
        "naive_mase",
    ]
    assert [(r["version"], r["aliases"], r["mase"], r["naive_mase"]) for r in rows] == [
        ("1", PRODUCTION, "0.8", "1.25"),
        ("2", "", "", ""),
    ]
    assert rows[0]["created"] == first["created"]


def test_data_runs_as_json_and_csv(database_url: str) -> None:
    loaded = invoke("ingest", str(FIXTURES / "superstore/sample_superstore_300.csv"), "--preset", "superstore")
    assert loaded.exit_code == 0, loaded.output

    as_json = invoke("data", "runs", "--format", "json")
    as_csv = invoke("data", "runs", "--format", "csv")

    assert as_json.exit_code == 0, as_json.output
    (run,) = json.loads(as_json.stdout)
    assert (run["id"], run["status"], run["file"], run["read"], run["rejected"]) == (
        1,
        "succeeded",
        "sample_superstore_300.csv",
        300,
        0,
    )
    assert isinstance(run["new"], int) and run["new"] > 0 and run["updated"] == 0
    assert isinstance(run["seconds"], float)
    assert as_csv.exit_code == 0, as_csv.output
    header, row = list(csv.reader(io.StringIO(as_csv.stdout)))
    assert header == ["id", "status", "file", "read", "rejected", "new", "updated", "seconds"]
    assert row[:6] == ["1", "succeeded", "sample_superstore_300.csv", "300", "0", str(run["new"])]


def test_keys_list_as_json_and_csv(engine: Engine, database_url: str) -> None:
    store = KeyStore(engine)
    kept = store.create("dashboard", ["read"])
    gone = store.create("etl", ["admin"])
    store.revoke(gone.id)

    as_json = invoke("keys", "list", "--format", "json")
    as_csv = invoke("keys", "list", "--format", "csv")

    assert as_json.exit_code == 0, as_json.output
    records = {r["name"]: r for r in json.loads(as_json.stdout)}
    assert records["dashboard"]["id"] == kept.id and records["dashboard"]["prefix"] == kept.prefix
    assert records["dashboard"]["scopes"] == ["read"] and records["dashboard"]["revoked"] is None
    revoked = dt.datetime.fromisoformat(records["etl"]["revoked"])
    assert revoked.utcoffset() == dt.timedelta(0) and abs(dt.datetime.now(dt.UTC) - revoked) < dt.timedelta(minutes=5)
    assert as_csv.exit_code == 0, as_csv.output
    rows = {r["name"]: r for r in csv.DictReader(io.StringIO(as_csv.stdout))}
    assert rows["dashboard"]["revoked"] == "" and rows["etl"]["revoked"] == records["etl"]["revoked"]
    assert rows["dashboard"]["id"] == str(kept.id) and rows["etl"]["created"] == records["etl"]["created"]


def test_show_history_diff_and_status_give_machine_readable_output(registry: ModelRegistry) -> None:
    shown = invoke("models", "show", NAME, "--format", "json")
    history = invoke("models", "history", NAME, "--format", "csv")
    diff = invoke("models", "diff", NAME, "1", "2", "--format", "json")
    status = invoke("deploy", "status", NAME, "--format", "json")

    assert shown.exit_code == 0, shown.output
    version = json.loads(shown.stdout)
    assert dt.datetime.fromisoformat(version["created_at"]).utcoffset() == dt.timedelta(0)
    assert (version["version"], version["data_start"], version["metrics"]) == (
        1,
        "2024-01-01",
        {"candidate": {"mase": 0.8}, "baseline": {"mase": 1.25}},
    )
    assert history.exit_code == 0, history.output
    (event,) = csv.DictReader(io.StringIO(history.stdout))
    assert (event["alias"], event["from"], event["to"], event["actor"]) == (PRODUCTION, "", "1", "test")
    assert diff.exit_code == 0, diff.output
    fields = {r["field"]: r for r in json.loads(diff.stdout)}
    assert fields["series"] == {"field": "series", "v1": 12, "v2": 12}
    assert fields["mase"] == {"field": "mase", "v1": 0.8, "v2": None}
    assert status.exit_code == 0, status.output
    assert json.loads(status.stdout) is None


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """`path` and the path of every command under it (a group's `commands`, typer's click group)."""
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def test_every_command_help_shows_an_example() -> None:
    paths = list(_commands(typer.main.get_command(app)))
    assert len(paths) > 30  # the root, 5 groups and their commands, the top-level commands

    for path in paths:
        shown = invoke(*path, "--help")
        assert shown.exit_code == 0, (path, shown.output)
        assert "Example" in shown.output, path


def test_root_help_lists_each_group_with_what_it_is_for() -> None:
    shown = invoke("--help")

    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.output.split())
    for group in (
        "data",
        "models",
        "deploy",
        "pipeline",
        "keys",
        "monitor",
        "train",
        "backtest",
        "serve",
        "worker",
        "ingest",
    ):
        assert f" {group} " in text
    assert "Look inside the sales store" in text and "roll back" in text and "one run" in text and "API keys" in text
