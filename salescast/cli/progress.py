"""Progress bars for the long commands (ingest, train, backtest, pipeline run).

A bar is drawn on stderr, and only when both stdout and stderr are terminals: in a pipe, a file or a
CI log the command prints its report and nothing else, so what a script reads stays clean.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from salescast.cli.output import console, errors

# Reading a CSV's lines to size its bar costs a pass over the file; past this size the bar goes without.
COUNT_LINES_UP_TO_BYTES = 2 * 1024**3


def shows_progress(out: Console = console, err: Console = errors) -> bool:
    """Whether a person watches: stdout and stderr both on a terminal."""
    return out.is_terminal and err.is_terminal


def _bar(err: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[step]}"),
        console=err,
        transient=True,
    )


class _Steps:
    """Counts named steps: each call says a step starts, so the one before it is done."""

    def __init__(self, progress: Progress, task: TaskID, total: int) -> None:
        self._progress, self._task, self._total, self._started = progress, task, total, 0

    def __call__(self, text: str) -> None:
        self._started += 1
        # A run may take more steps than foreseen (a fallback refit): the bar grows rather than overflow.
        self._total = max(self._total, self._started)
        self._progress.update(self._task, completed=self._started - 1, total=self._total, step=text)


def _ignore(_: object) -> None:
    return None


@contextmanager
def step_bar(
    description: str, total: int, *, out: Console = console, err: Console = errors
) -> Iterator[Callable[[str], None]]:
    """A bar over `total` named steps; yields the callback the training code calls before each step.

    Args:
        description: what the whole run does, printed left of the bar.
        total: the steps foreseen (backtest windows x families, final fits, pipeline stages).
        out: the command's output, which must be a terminal for the bar to be drawn.
        err: where the bar is drawn, also a terminal.
    """
    if not shows_progress(out, err):
        yield _ignore
        return
    with _bar(err) as progress:
        task = progress.add_task(description, total=total, step="")
        yield _Steps(progress, task, total)
        progress.update(task, completed=progress.tasks[0].total)


@contextmanager
def rows_bar(
    description: str, total: int | None, *, out: Console = console, err: Console = errors
) -> Iterator[Callable[[int], None]]:
    """A bar over the rows of a file being loaded; yields the callback that reports rows read so far.

    Args:
        description: what is loaded, printed left of the bar.
        total: the rows expected, or None when unknown (the bar then pulses).
        out: the command's output, which must be a terminal for the bar to be drawn.
        err: where the bar is drawn, also a terminal.
    """
    if not shows_progress(out, err):
        yield _ignore
        return
    with _bar(err) as progress:
        task = progress.add_task(description, total=total, step="rows")

        def read(rows: int) -> None:
            size = progress.tasks[0].total
            progress.update(task, completed=rows, total=None if size is None else max(size, rows))

        yield read


def expected_rows(path: Path, long_layout: bool) -> int | None:
    """Data rows a file holds, cheaply: a Parquet file's metadata, or the lines of a plain CSV/TSV less its
    header. None where that costs too much or says nothing (compressed or wide files, one row per product)."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            rows: int = pq.ParquetFile(path).metadata.num_rows
            return rows if long_layout else None
        if not long_layout or suffix not in (".csv", ".tsv", ".txt") or path.stat().st_size > COUNT_LINES_UP_TO_BYTES:
            return None
        lines, last = 0, b"\n"
        with path.open("rb") as file:
            while block := file.read(1 << 20):
                lines += block.count(b"\n")
                last = block[-1:]
        return max(lines + (last != b"\n") - 1, 0)
    except (OSError, ValueError):
        return None  # unreadable here: ingestion itself reports why, in one line
