"""The CLI as a user runs it: a real process, real files, exit codes and no tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from tests.conftest import FIXTURES
from tests.training.messy import messy_weekly_sales


def salescast(
    tmp_path: Path, *args: str, database_url: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SALESCAST_HOME": str(tmp_path / "home"), "COLUMNS": "200", **(env or {})}
    env.pop("SALESCAST_DATABASE_URL", None)
    if database_url:
        env["SALESCAST_DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "salescast.cli", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_ingest_then_summary_shows_what_was_loaded(tmp_path: Path) -> None:
    init = salescast(tmp_path, "init")
    assert init.returncode == 0, init.stderr
    assert (tmp_path / "home" / "salescast.db").is_file()

    loaded = salescast(
        tmp_path, "ingest", str(FIXTURES / "superstore/sample_superstore_300.csv"), "--preset", "superstore"
    )
    again = salescast(
        tmp_path, "ingest", str(FIXTURES / "superstore/sample_superstore_300.csv"), "--preset", "superstore"
    )
    summary = salescast(tmp_path, "data", "summary")

    assert loaded.returncode == 0, loaded.stderr
    assert "rows accepted" in loaded.stdout and "300" in loaded.stdout
    assert again.returncode == 0
    assert "sales rows new       │ 0" in again.stdout
    assert summary.returncode == 0, summary.stderr
    assert "Furniture" in summary.stdout and "succeeded" in summary.stdout


def test_bad_rows_are_listed_and_runs_can_be_inspected(tmp_path: Path) -> None:
    rows = "".join(f"2024-01-{d:02d},A,{d}\n" for d in range(1, 21))
    path = tmp_path / "sales.csv"
    path.write_text("date,product,units\n" + rows + "2024-01-99,A,1\n")

    result = salescast(tmp_path, "ingest", str(path))
    rejects = salescast(tmp_path, "data", "rejects", "1")

    assert result.returncode == 0, result.stderr
    assert "unparseable date '2024-01-99'" in result.stdout
    assert "22" in rejects.stdout and "unparseable date" in rejects.stdout


def test_user_errors_give_one_line_and_an_exit_code_never_a_traceback(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.csv"
    garbage.write_text("date,product,units\n" + "x,A,1\n" * 10)
    cases = [
        (("ingest", str(tmp_path / "missing.csv")), 3, "no such file"),
        (("ingest", str(garbage)), 3, "refused, 10 of 10 rows (100%) are bad"),
        (("ingest", str(garbage), "--preset", "nope"), 2, "unknown preset 'nope'"),
        (("ingest", str(garbage), "--map", "colour=x"), 2, "unknown field(s) ['colour']"),
    ]
    for args, code, message in cases:
        result = salescast(tmp_path, *args)
        assert result.returncode == code, (args, result.stderr)
        assert message in " ".join(result.stderr.split()), (args, result.stderr)
        assert "Traceback" not in result.stderr + result.stdout


def test_an_unreachable_database_is_reported_plainly(tmp_path: Path) -> None:
    result = salescast(tmp_path, "data", "summary", database_url="postgresql+psycopg://nobody@127.0.0.1:9/none")

    assert result.returncode == 4
    assert "cannot reach the database" in result.stderr
    assert "Traceback" not in result.stderr


def test_generate_ingest_train_and_backtest(tmp_path: Path) -> None:
    generated = salescast(tmp_path, "generate", "--stores", "1", "--products", "5", "--days", "240", "--out", "s.csv")
    loaded = salescast(tmp_path, "ingest", "s.csv")
    trained = salescast(
        tmp_path, "train", "--models", "lgbm", "--horizon", "14", "--model-dir", "model", "--out", "holdout.csv"
    )
    tested = salescast(tmp_path, "backtest", "--models", "lgbm", "--horizon", "7", "--windows", "2", "--out", "bt.csv")
    bad = salescast(tmp_path, "train", "--models", "lgbm,nope")

    assert generated.returncode == 0 and loaded.returncode == 0, generated.stderr + loaded.stderr
    assert trained.returncode == 0, trained.stderr
    assert "hold-out accuracy" in trained.stdout and "snaive" in trained.stdout
    assert (tmp_path / "model" / "manifest.json").is_file()
    assert (tmp_path / "model" / "backtest_metrics.csv").is_file()
    holdout = pd.read_csv(tmp_path / "holdout.csv")
    assert len(holdout) == 14 * 5
    assert {"y", "path", "lgbm", "ensemble", "snaive", "ensemble-p10", "ensemble-p90"} <= set(holdout.columns)
    assert tested.returncode == 0, tested.stderr
    assert "window 2" in tested.stdout
    backtested = pd.read_csv(tmp_path / "bt.csv")
    assert len(backtested) == 2 * 7 * 5
    assert {"lgbm", "ensemble", "snaive"} <= set(backtested.columns)
    assert bad.returncode == 2 and "unknown model(s) ['nope']" in bad.stderr


def test_backtest_runs_to_the_end_on_a_messy_weekly_file_and_counts_series_by_path(tmp_path: Path) -> None:
    # Series of every length down to one week, six-week gaps, returns that make weeks negative.
    messy_weekly_sales().to_csv(tmp_path / "weekly.csv", index=False)
    keep_returns = {"SALESCAST_NEGATIVE_SALES": "keep"}
    loaded = salescast(tmp_path, "ingest", "weekly.csv", env=keep_returns)

    tested = salescast(
        tmp_path,
        "backtest",
        *("--models", "lgbm,theta", "--horizon", "13", "--windows", "3", "--out", "bt.csv"),
        env=keep_returns,
    )

    assert loaded.returncode == 0, loaded.stderr
    assert tested.returncode == 0, tested.stderr
    assert "series by path: full 22, short 8, cold 6" in tested.stdout
    assert "ensemble" in tested.stdout and "hold-out by path" in tested.stdout
    results = pd.read_csv(tmp_path / "bt.csv")
    assert {"lgbm", "theta", "ensemble", "snaive", "path"} <= set(results.columns)
    assert results[["lgbm", "theta", "ensemble", "snaive"]].notna().all().all()
    assert set(results["path"]) == {"full", "short", "cold"}
    assert (results["y"] < 0).any()  # the returns were kept and scored


def test_models_show_prints_the_model_card(tmp_path: Path) -> None:
    salescast(tmp_path, "generate", "--stores", "1", "--products", "4", "--days", "200", "--out", "s.csv")
    ran = salescast(tmp_path, "pipeline", "run", "s.csv", "--models", "lgbm,theta", "--horizon", "7", "--windows", "3")

    shown = salescast(tmp_path, "models", "show", "demand", "1")

    assert ran.returncode == 0, ran.stderr
    assert shown.returncode == 0, shown.stderr
    for label in ("families and weights", "weights chosen by", "point forecast", "hold-out: ensemble"):
        assert label in shown.stdout
    # the plain mean of SeasonalNaive, Theta and LightGBM, scored on the same hold-out
    assert "hold-out: reference" in shown.stdout and "hold-out: snaive" in shown.stdout
    assert "lgbm: median (L1 loss)" in shown.stdout and "path: full" in shown.stdout
    assert "left-out-window check" in shown.stdout  # two calibration windows: learned, then checked
