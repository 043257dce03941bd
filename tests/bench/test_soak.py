"""bench/soak.py, run for a few seconds on a tiny store: every phase happens, its figures add up, and it
finds no 5xx and no lost or doubled prediction-log row."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PHASES = ["steady", "redis down", "redis back", "promoted v2", "canary v3"]


@pytest.mark.slow
def test_a_short_soak_reports_consistent_figures_with_no_5xx_and_no_lost_log_rows(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    command = [sys.executable, str(ROOT / "bench" / "soak.py"), "--duration", "8", "--rate", "12", "--threads", "2"]
    done = subprocess.run(
        [*command, "--small", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out.read_text())

    phases = report["phases"]
    assert [row["phase"] for row in phases] == PHASES
    assert sum(row["requests"] for row in phases) == report["requests"] > 0
    assert all(row["p50_ms"] <= row["p99_ms"] for row in phases if row["requests"])
    assert sum(row["5xx"] for row in phases) == 0 and report["transport_errors"] == {}
    assert sum(row["4xx"] for row in phases) > 0  # the bad requests were sent, and refused
    assert report["log_rows_sent"] > 0
    assert report["log_rows_stored"] == report["log_rows_sent"]
    assert report["log_rows_lost"] == report["log_rows_doubled"] == 0
    # The printed table says the same as the JSON.
    assert f"sent {report['log_rows_sent']}, stored {report['log_rows_stored']}, lost 0, doubled 0" in done.stdout
    for row in phases:
        assert f"{row['phase']:<13} {row['requests']:>8} {row['5xx']:>5}" in done.stdout
