"""Readers stream files in bounded chunks and keep each row's line number."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from salescast.data.presets import resolve_spec
from salescast.data.sources import iter_raw_chunks
from tests.conftest import FIXTURES


def test_csv_is_read_in_chunks_no_larger_than_asked(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("date,product,units\n" + "".join(f"2024-01-01,P{i},1\n" for i in range(1050)))

    chunks = list(iter_raw_chunks(path, resolve_spec(None), chunk_rows=100))

    assert max(len(c.frame) for c in chunks) <= 100
    assert sum(len(c.frame) for c in chunks) == 1050
    lines = np.concatenate([c.lines for c in chunks])
    assert lines.tolist() == list(range(2, 1052))


def test_lines_after_a_malformed_row_keep_their_file_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(
        "date,product,units\n2024-01-01,A,1\n2024-01-02,A,1,x\n2024-01-03,A,3\n2024-01-04,A,4,y,z\n2024-01-05,A,5\n"
    )

    chunks = list(iter_raw_chunks(path, resolve_spec(None), chunk_rows=2))

    lines = np.concatenate([c.lines for c in chunks]).tolist()
    dates = [d for c in chunks for d in c.frame["date"]]
    assert dict(zip(lines, dates, strict=True)) == {2: "2024-01-01", 4: "2024-01-03", 6: "2024-01-05"}
    assert sorted(p.line for c in chunks for p in c.malformed) == [3, 5]


def test_m5_wide_rows_are_melted_in_bounded_chunks() -> None:
    path = FIXTURES / "m5/sales_train_validation_2.csv"

    chunks = list(iter_raw_chunks(path, resolve_spec("m5"), chunk_rows=2000))

    assert all(len(c.frame) <= 2000 for c in chunks)
    assert sum(len(c.frame) for c in chunks) == 2 * 1913
    assert {"date", "item_id", "store_id", "units", "sell_price"} <= set(chunks[0].frame.columns)
    assert set(np.concatenate([c.lines for c in chunks]).tolist()) == {2, 3}


def test_a_malformed_last_line_is_still_reported(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("date,product,units\n2024-01-01,A,1\n2024-01-02,A,2,oops\n")

    chunks = list(iter_raw_chunks(path, resolve_spec(None), chunk_rows=100))

    assert sum(len(c.frame) for c in chunks) == 1
    assert [(p.line, p.reason) for c in chunks for p in c.malformed] == [(3, "malformed row: expected 3 fields, saw 4")]


def test_empty_lines_are_skipped_and_lines_after_them_keep_their_numbers(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("date,product,units\n2024-01-01,A,1\n\n2024-01-02,A,2\n,,\n \t \n2024-01-03,A,3\n\n\n")

    chunks = list(iter_raw_chunks(path, resolve_spec(None), chunk_rows=2))

    lines = np.concatenate([c.lines for c in chunks]).tolist()
    dates = [d for c in chunks for d in c.frame["date"]]
    assert dict(zip(lines, dates, strict=True)) == {2: "2024-01-01", 4: "2024-01-02", 7: "2024-01-03"}
    # A line of spaces and tabs is not empty: it is reported, as a line that holds only whitespace.
    assert [(p.line, p.reason) for c in chunks for p in c.malformed] == [(6, "blank line: only whitespace")]
