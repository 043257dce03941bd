"""Readers that stream a source file as chunks of raw rows, each row tagged with its line in the file."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from pandas.errors import ParserError

from salescast.data.presets import SourceSpec
from salescast.errors import FileRefusedError

# C0 and C1 control characters and DEL: never part of an id or a name, and PostgreSQL refuses NUL in text.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` with each control character written as an escape (NUL as \\x00): safe to show and to store."""
    return CONTROL_CHARACTERS.sub(lambda found: f"\\x{ord(found.group()):02x}", text)


@dataclass(frozen=True)
class LineProblem:
    """A problem found on one line (or one cell) of the source file."""

    line: int
    column: str | None
    reason: str
    raw: str | None = None


@dataclass
class RawChunk:
    """Rows as read, before validation; `lines` holds each row's line number in the source file."""

    frame: pd.DataFrame
    lines: np.ndarray
    malformed: list[LineProblem] = field(default_factory=list)


def file_format(path: Path, spec: SourceSpec) -> str:
    if spec.file_format:
        return spec.file_format
    suffix = path.suffix.lower()
    if suffix in {".parquet", ".pq"}:
        return "parquet"
    if suffix in {".csv", ".tsv", ".txt", ".gz", ".zip", ".bz2", ".xz", ".zst"}:
        return "csv"
    raise FileRefusedError(f"{path}: cannot tell the format from the extension {suffix!r}; use --format")


def iter_raw_chunks(path: Path, spec: SourceSpec, chunk_rows: int) -> Iterator[RawChunk]:
    """The file as raw chunks of at most about `chunk_rows` rows: memory stays bounded by the chunk size."""
    if not path.is_file():
        raise FileRefusedError(f"{path}: no such file")
    if spec.layout == "m5_wide":
        yield from _iter_m5_wide(path, spec, chunk_rows)
    elif file_format(path, spec) == "parquet":
        yield from _iter_parquet(path, spec, chunk_rows)
    else:
        yield from _iter_csv(path, spec, chunk_rows)


def _separator(path: Path, spec: SourceSpec) -> str:
    if spec.sep is not None:
        return spec.sep
    return "\t" if ".tsv" in path.suffixes else ","


def _check_columns(path: Path, spec: SourceSpec, columns: list[str]) -> None:
    missing = {f: c for f, c in spec.mapping.items() if c not in columns}
    required_missing = {f: c for f, c in missing.items() if f in {"date", "product", "units"}}
    if required_missing:
        wanted = ", ".join(f"{c!r} (for {f})" for f, c in required_missing.items())
        raise FileRefusedError(
            f"{path}: missing column(s) {wanted}; the file has: {', '.join(map(repr, columns[:30]))}"
        )


def _csv_header(path: Path, spec: SourceSpec, sep: str) -> list[str]:
    try:
        header = pd.read_csv(path, sep=sep, encoding=spec.encoding, nrows=0, dtype=str)
    except pd.errors.EmptyDataError as exc:
        raise FileRefusedError(f"{path}: the file is empty") from exc
    except (UnicodeDecodeError, ParserError) as exc:
        raise FileRefusedError(f"{path}: cannot read the header: {exc}") from exc
    return [str(c) for c in header.columns]


def _iter_csv(path: Path, spec: SourceSpec, chunk_rows: int) -> Iterator[RawChunk]:
    sep = _separator(path, spec)
    columns = _csv_header(path, spec, sep)
    _check_columns(path, spec, columns)
    used = [c for c in dict.fromkeys(spec.mapping.values()) if c in columns]
    # Arrow's reader reports every row with a wrong field count (pandas drops extra fields silently at
    # chunk boundaries), and it streams: memory stays bounded by the block size.
    malformed: list[LineProblem] = []

    def on_invalid_row(row: pa_csv.InvalidRow) -> str:
        if row.text.strip():
            reason = f"malformed row: expected {row.expected_columns} fields, saw {row.actual_columns}"
        else:  # a single field of spaces or tabs: a line that looks empty but is not
            reason = "blank line: only whitespace"
        malformed.append(LineProblem(int(row.number or 0), None, reason, printable(row.text[:500])))
        return "skip"

    try:
        reader = pa_csv.open_csv(
            path,
            read_options=pa_csv.ReadOptions(
                encoding=_arrow_encoding(spec.encoding),
                block_size=_block_size(path, chunk_rows),
                use_threads=False,
            ),
            parse_options=pa_csv.ParseOptions(
                delimiter=sep, invalid_row_handler=on_invalid_row, newlines_in_values=True, ignore_empty_lines=False
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types={c: pa.string() for c in columns},
                include_columns=used,
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise FileRefusedError(f"{path}: cannot parse as CSV: {exc}") from exc
    skipped: list[int] = []
    good_rows = 0
    pending: pa.Table | None = None
    found: list[LineProblem] = []
    finished = False
    while not finished:
        try:
            batch = reader.read_next_batch()
            table = pa.Table.from_batches([batch])
            pending = table if pending is None else pa.concat_tables([pending, table])
        except StopIteration:
            finished = True
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            raise FileRefusedError(f"{path}: cannot parse as CSV after line {good_rows + 1}: {exc}") from exc
        skipped.extend(p.line for p in malformed)
        skipped.sort()
        found.extend(malformed)
        malformed.clear()
        # Small Arrow blocks gathered into chunks of `chunk_rows`: Arrow reads several blocks ahead, so
        # its memory is bounded by the block size, and validation still sees large, efficient chunks.
        while pending is not None and (pending.num_rows >= chunk_rows or (finished and pending.num_rows)):
            piece = pending.slice(0, chunk_rows)
            pending = pending.slice(chunk_rows)
            lines = _physical_lines(np.arange(good_rows, good_rows + piece.num_rows), skipped)
            good_rows += piece.num_rows
            # An empty line (or one of separators only) holds no sale: it is skipped, not counted as a row,
            # and the lines after it keep their numbers (Arrow reads it as a row of empty fields).
            holds_values = _holds_values(piece)
            frame = piece.filter(holds_values).to_pandas(types_mapper=_ARROW_STRINGS.get)
            yield RawChunk(frame, lines[holds_values], found)
            found = []
    if found:  # malformed lines after the last good row
        yield RawChunk(pd.DataFrame({c: pd.Series(dtype="string") for c in used}), np.array([], dtype=int), found)


# Arrow-backed pandas strings: validation's string operations then run in Arrow's compute kernels.
_ARROW_STRINGS = {pa.string(): pd.StringDtype("pyarrow"), pa.large_string(): pd.StringDtype("pyarrow")}


def _holds_values(table: pa.Table) -> np.ndarray:
    """Which rows of a chunk of string columns have at least one non-empty field."""
    holds = np.zeros(table.num_rows, dtype=bool)
    for column in table.columns:
        holds |= pc.not_equal(column, "").to_numpy(zero_copy_only=False)
    return holds


def _arrow_encoding(encoding: str) -> str:
    # Arrow skips a UTF-8 byte-order mark by itself and names UTF-8 "utf8".
    return "utf8" if encoding.lower().replace("-", "").replace("_", "") in {"utf8", "utf8sig"} else encoding


def _block_size(path: Path, chunk_rows: int) -> int:
    """Bytes per Arrow block: about `chunk_rows` rows (from the first lines' length), at most 2 MiB."""
    with path.open("rb") as handle:
        sample = handle.read(1 << 16)
    line_bytes = max(1, len(sample) // max(1, sample.count(b"\n")))
    return int(min(max(chunk_rows * line_bytes, 1 << 16), 1 << 21))


def _physical_lines(ordinals: np.ndarray, skipped: list[int]) -> np.ndarray:
    """Line numbers of good rows (0-based `ordinals`) in a file whose header is line 1 and that had
    the malformed lines `skipped` (sorted) removed from the data."""
    if not skipped:
        return ordinals + 2
    # Bad line j sits before the good row whose ordinal is skipped[j] - j - 2.
    thresholds = np.asarray(skipped) - np.arange(len(skipped)) - 2
    return ordinals + 2 + np.searchsorted(thresholds, ordinals, side="right")


def _iter_parquet(path: Path, spec: SourceSpec, chunk_rows: int) -> Iterator[RawChunk]:
    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a corrupt file
        raise FileRefusedError(f"{path}: not a readable Parquet file: {exc}") from exc
    columns = list(parquet.schema_arrow.names)
    _check_columns(path, spec, columns)
    used = [c for c in dict.fromkeys(spec.mapping.values()) if c in columns]
    start = 0
    for batch in parquet.iter_batches(batch_size=chunk_rows, columns=used):
        frame = batch.to_pandas()
        # Parquet has no header line: a row's "line" is its 1-based position.
        yield RawChunk(frame, np.arange(start, start + len(frame)) + 1)
        start += len(frame)


M5_ID_COLUMNS = ("id", "item_id", "dept_id", "cat_id", "store_id", "state_id")


def _iter_m5_wide(path: Path, spec: SourceSpec, chunk_rows: int) -> Iterator[RawChunk]:
    """M5 wide rows (one per item and store, d_1..d_N units) melted to long rows.

    The calendar (d -> date, week) must lie beside the file as calendar.csv; weekly sell prices
    (sell_prices*.csv/tsv) are joined when present.
    """
    calendar_path = path.with_name("calendar.csv")
    if not calendar_path.is_file():
        raise FileRefusedError(f"{path}: the m5 preset needs calendar.csv beside the sales file")
    calendar = pd.read_csv(calendar_path, usecols=["date", "wm_yr_wk", "d"], dtype=str)
    prices = _m5_prices(path)
    columns = _csv_header(path, spec, ",")
    missing = [c for c in ("item_id", "store_id") if c not in columns]
    day_columns = [c for c in columns if c.startswith("d_")]
    if missing or not day_columns:
        raise FileRefusedError(f"{path}: not an M5 wide file (needs item_id, store_id and d_1..d_N columns)")
    id_columns = [c for c in M5_ID_COLUMNS if c in columns]
    rows_per_chunk = max(1, chunk_rows // len(day_columns))
    for wide in pd.read_csv(path, dtype=str, keep_default_na=False, chunksize=rows_per_chunk):
        wide_lines = wide.index.to_numpy() + 2
        wide = wide.assign(_line=wide_lines)
        long = wide.melt(id_vars=[*id_columns, "_line"], value_vars=day_columns, var_name="d", value_name="units")
        long = long.merge(calendar, on="d", how="left")
        long["date"] = long["date"].fillna("")
        if prices is not None:
            long = long.merge(prices, on=["store_id", "item_id", "wm_yr_wk"], how="left")
            long["sell_price"] = long["sell_price"].fillna("")
        lines = long.pop("_line").to_numpy()
        yield RawChunk(long.drop(columns=["wm_yr_wk"]), lines)


def _m5_prices(path: Path) -> pd.DataFrame | None:
    for candidate in sorted(path.parent.glob("sell_prices*")):
        if candidate.suffix.lower() not in {".csv", ".tsv"}:
            continue
        frame = pd.read_csv(candidate, sep="\t" if candidate.suffix.lower() == ".tsv" else ",", dtype=str)
        frame = frame.loc[:, [c for c in frame.columns if c in {"store_id", "item_id", "wm_yr_wk", "sell_price"}]]
        if len(frame.columns) == 4:
            return frame
    return None
