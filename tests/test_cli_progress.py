"""Progress bars of the long commands: drawn for a person at a terminal, never in a pipe."""

from __future__ import annotations

import gzip
import io
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pandas as pd
from rich.console import Console

from salescast.cli.progress import expected_rows, rows_bar, shows_progress, step_bar
from salescast.cli.training import training_steps

BAR = "━"  # what rich draws a bar with


def terminal() -> tuple[Console, io.StringIO]:
    screen = io.StringIO()
    return Console(file=screen, force_terminal=True, width=100, color_system=None), screen


def pipe() -> tuple[Console, io.StringIO]:
    screen = io.StringIO()
    return Console(file=screen, force_terminal=False, width=100), screen


def test_a_bar_is_shown_only_when_stdout_and_stderr_are_both_terminals() -> None:
    (on_screen, _), (in_pipe, _) = terminal(), pipe()

    assert shows_progress(on_screen, on_screen)
    assert not shows_progress(in_pipe, on_screen)  # `salescast train > report.txt`
    assert not shows_progress(on_screen, in_pipe)  # `salescast train 2> log`


def test_the_step_bar_counts_steps_on_a_terminal() -> None:
    console, screen = terminal()

    with step_bar("training", 5, out=console, err=console) as step_started:
        step_started("window 1/2: lgbm")
        step_started("window 1/2: snaive")
        step_started("final fit: lgbm")

    drawn = screen.getvalue()
    assert "training" in drawn and BAR in drawn
    assert "final fit: lgbm" in drawn
    assert "5/5" in drawn  # a finished run shows its bar full, whatever steps it skipped


def test_a_run_with_more_steps_than_foreseen_grows_its_bar() -> None:
    console, screen = terminal()

    with step_bar("pipeline", 2, out=console, err=console) as step_started:
        for name in ("ingest", "features", "train", "gate"):
            step_started(name)

    assert "4/4" in screen.getvalue()


def test_the_rows_bar_shows_rows_read_against_the_file() -> None:
    console, screen = terminal()

    with rows_bar("loading sales.csv", 1000, out=console, err=console) as rows_read:
        rows_read(400)
        rows_read(1000)

    assert "loading sales.csv" in screen.getvalue() and "1000/1000" in screen.getvalue()


def test_nothing_is_drawn_when_the_output_or_the_errors_go_to_a_pipe() -> None:
    on_screen, screen = terminal()
    in_pipe, piped = pipe()

    with (
        step_bar("training", 3, out=in_pipe, err=on_screen) as step_started,
        rows_bar("loading", 10, out=on_screen, err=in_pipe) as rows_read,
    ):
        step_started("window 1/1: lgbm")
        rows_read(5)

    assert screen.getvalue() == "" and piped.getvalue() == ""


def test_expected_rows_reads_the_size_of_a_file_cheaply(tmp_path: Path) -> None:
    frame = pd.DataFrame({"date": ["2024-01-01"] * 3, "product": ["a", "b", "c"], "units": [1, 2, 3]})
    frame.to_csv(tmp_path / "sales.csv", index=False)
    (tmp_path / "unterminated.csv").write_text("date,product,units\n2024-01-01,a,1\n2024-01-02,a,2")
    frame.to_parquet(tmp_path / "sales.parquet")
    with gzip.open(tmp_path / "sales.csv.gz", "wt") as file:
        frame.to_csv(file, index=False)

    assert expected_rows(tmp_path / "sales.csv", long_layout=True) == 3
    assert expected_rows(tmp_path / "unterminated.csv", long_layout=True) == 2
    assert expected_rows(tmp_path / "sales.parquet", long_layout=True) == 3
    assert expected_rows(tmp_path / "sales.csv.gz", long_layout=True) is None  # would mean reading it all
    assert expected_rows(tmp_path / "sales.csv", long_layout=False) is None  # wide: a row per product
    assert expected_rows(tmp_path / "missing.csv", long_layout=True) is None


def test_training_foresees_a_fit_per_window_and_family_then_the_final_fits() -> None:
    # SeasonalNaive is backtested beside the families, once even when named.
    assert training_steps(["lgbm", "savg"], 3, final_fit=True) == 3 * 3 + 2
    assert training_steps(["lgbm", "snaive"], 2, final_fit=False) == 2 * 2
    assert training_steps(["lgbm"], 1, final_fit=True, reconcile=True) == 2 + 1 + 1


def _ingest(tmp_path: Path, *, on_terminal: bool) -> tuple[int, str, str]:
    """`salescast ingest` with stdout and stderr on a pseudo-terminal, or on pipes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESCAST_")}
    env.update(SALESCAST_HOME=str(tmp_path / "home"), TERM="xterm-256color", COLUMNS="120")
    env.pop("NO_COLOR", None)
    command = [sys.executable, "-m", "salescast.cli", "ingest", str(tmp_path / "sales.csv")]
    if not on_terminal:
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        return done.returncode, done.stdout, done.stderr
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower
    )
    os.close(follower)
    seen = bytearray()
    while True:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: the process is gone
                break
            if not chunk:
                break
            seen += chunk
        elif process.poll() is not None:
            break
    os.close(leader)
    return process.wait(timeout=120), seen.decode(errors="replace"), ""


def test_ingest_draws_its_bar_on_a_terminal_and_nothing_in_a_pipe(tmp_path: Path) -> None:
    days = pd.date_range("2024-01-01", periods=200, freq="D").strftime("%Y-%m-%d")
    pd.DataFrame({"date": days, "product": "p1", "units": 1}).to_csv(tmp_path / "sales.csv", index=False)

    code, screen, _ = _ingest(tmp_path, on_terminal=True)
    piped_code, stdout, stderr = _ingest(tmp_path, on_terminal=False)

    assert code == 0, screen
    assert "loading sales.csv" in screen and BAR in screen
    assert piped_code == 0, stderr
    assert stderr == ""
    assert "loading" not in stdout and BAR not in stdout
    assert "sales rows unchanged" in stdout  # the report itself is all a pipe gets (second load: no change)
