"""`salescast keys`: create prints a working key once, list shows keys, revoke stops a key."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner, Result

from salescast.cli import app
from salescast.config import get_settings
from salescast.errors import AuthenticationError
from salescast.serving.auth import KeyStore

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def database_url(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The CLI's settings point at the test database (SQLite file or PostgreSQL)."""
    url = engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("SALESCAST_DATABASE_URL", url)
    monkeypatch.setenv("SALESCAST_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def keys(*args: str) -> Result:
    return CliRunner().invoke(app, ["keys", *args])


def test_create_prints_the_key_alone_on_stdout_and_it_authenticates(engine: Engine, database_url: str) -> None:
    result = keys("create", "dashboard", "--scope", "read", "--scope", "predict")

    assert result.exit_code == 0, result.output
    secret = result.stdout.strip()
    assert "\n" not in secret
    principal = KeyStore(engine).authenticate(secret)
    assert (principal.name, principal.scopes) == ("dashboard", frozenset({"read", "predict"}))
    assert "it is not stored and cannot be shown again" in result.stderr
    assert f"created key {principal.key_id} 'dashboard' ({principal.prefix}), scopes: read, predict" in result.stderr


def test_a_key_reads_by_default(engine: Engine, database_url: str) -> None:
    result = keys("create", "etl")

    assert result.exit_code == 0, result.output
    assert KeyStore(engine).authenticate(result.stdout.strip()).scopes == frozenset({"read"})


def test_list_shows_keys_and_revoke_marks_one_and_refuses_it(engine: Engine, database_url: str) -> None:
    kept = keys("create", "kept").stdout.strip()
    gone = keys("create", "gone", "--scope", "admin").stdout.strip()
    gone_id = KeyStore(engine).authenticate(gone).key_id

    revoked = keys("revoke", str(gone_id))
    listed = keys("list")

    assert revoked.exit_code == 0, revoked.output
    assert f"revoked key {gone_id} 'gone' ({gone[:11]}) at " in revoked.stdout
    assert listed.exit_code == 0, listed.output
    lines = {line.split("│")[2].strip(): line for line in listed.stdout.splitlines() if line.count("│") == 7}
    assert set(lines) == {"kept", "gone"}
    assert kept[:11] in lines["kept"] and "read" in lines["kept"] and lines["kept"].count("UTC") == 1
    assert gone[:11] in lines["gone"] and "admin" in lines["gone"] and lines["gone"].count("UTC") == 2
    with pytest.raises(AuthenticationError, match=f"API key {gone[:11]} was revoked"):
        KeyStore(engine).authenticate(gone)
    assert KeyStore(engine).authenticate(kept).name == "kept"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("create", "x", "--scope", "write"), 2, "error: unknown scope(s) 'write'; valid scopes: read, predict, admin"),
        (("create", " "), 2, "error: an API key needs a name"),
        (("revoke", "42"), 5, "error: no API key with id 42"),
    ],
)
def test_errors_are_one_line_and_an_exit_code(
    database_url: str, tmp_path: Path, args: tuple[str, ...], code: int, message: str
) -> None:
    # A real process: the one-line error and the exit code come from salescast.cli.main.
    result = subprocess.run(
        [sys.executable, "-m", "salescast.cli", "keys", *args],
        cwd=tmp_path,
        env={**os.environ, "SALESCAST_DATABASE_URL": database_url, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == code, result.stderr
    assert result.stderr.strip() == message
    assert result.stdout == ""
