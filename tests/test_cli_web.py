"""`salescast web build`: the dashboard as a static bundle that calls the API at a given URL and holds no key."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from salescast.cli import app
from salescast.errors import ConfigurationError
from salescast.web.bundle import STATIC


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SALESCAST_HOME", str(tmp_path / "home"))


def test_web_build_writes_every_page_file_and_a_config_without_a_key(tmp_path: Path) -> None:
    out = tmp_path / "site"
    result = CliRunner().invoke(app, ["web", "build", "--api-url", "https://api.example.com/", "--out", str(out)])

    assert result.exit_code == 0, result.output
    assert json.loads((out / "config.json").read_text()) == {"apiUrl": "https://api.example.com", "openRead": False}
    sources = {p.relative_to(STATIC) for p in STATIC.rglob("*") if p.is_file() and not p.name.startswith(".")}
    built = {p.relative_to(out) for p in out.rglob("*") if p.is_file()}
    assert built == sources | {Path("config.json")}
    assert Path("assets/vendor/chart.umd.min.js") in built and Path("assets/pages/models.js") in built
    ours = [p for p in out.rglob("*") if p.is_file() and "vendor" not in p.parts]
    assert not [p for p in ours if re.search(r"sc_[0-9a-f]{8}_", p.read_text())]  # no key in any file
    assert "<script>" not in (out / "index.html").read_text()


@pytest.mark.parametrize("url", ["api.example.com", "ftp://api.example.com", "https://api.example.com/?key=1"])
def test_web_build_refuses_a_url_that_is_not_an_http_base(tmp_path: Path, url: str) -> None:
    result = CliRunner().invoke(app, ["web", "build", "--api-url", url, "--out", str(tmp_path / "site")])

    assert isinstance(result.exception, ConfigurationError)
    assert "--api-url must be an http(s) URL" in str(result.exception)
    assert not (tmp_path / "site").exists()


def test_a_refused_url_is_one_line_and_the_configuration_exit_code(tmp_path: Path) -> None:
    entry_point = Path(sys.executable).with_name("salescast")
    env = {**os.environ, "SALESCAST_HOME": str(tmp_path / "home"), "COLUMNS": "300"}
    args = ["web", "build", "--api-url", "api.example.com", "--out", str(tmp_path / "site")]
    result = subprocess.run([str(entry_point), *args], env=env, capture_output=True, text=True, timeout=60)

    assert result.returncode == ConfigurationError.exit_code
    assert result.stderr.strip().startswith("error: --api-url must be an http(s) URL")
    assert len(result.stderr.strip().splitlines()) == 1
