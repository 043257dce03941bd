"""Row validation: turns a raw chunk into typed canonical rows plus one problem per bad cell."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import String

from salescast.config import NegativeSalesPolicy
from salescast.data.fields import STAGED_COLUMNS
from salescast.data.presets import SourceSpec
from salescast.data.schema import Base
from salescast.data.sources import CONTROL_CHARACTERS, LineProblem, RawChunk, printable

_TRUE = ["1", "true", "t", "yes", "y"]
_FALSE = ["0", "false", "f", "no", "n", ""]
_ARROW_STRING = pd.StringDtype("pyarrow")

# Sales dates accepted: wide enough for any sales history, and far enough inside pandas' nanosecond range
# (1677-09-21 .. 2262-04-11) that the dates of forecasts after the last sale stay representable.
EARLIEST_DATE: Final = dt.date(1900, 1, 1)
LATEST_DATE: Final = dt.date(2199, 12, 31)

# Each text field and the (table, column) that stores it: the longest value accepted is that column's length.
_TEXT_COLUMNS: Final = {
    "product": ("products", "sku"),
    "product_name": ("products", "name"),
    "category": ("categories", "name"),
    "subcategory": ("categories", "name"),
    "store": ("stores", "code"),
    "store_name": ("stores", "name"),
}


def _column_length(table: str, column: str) -> int:
    kind = Base.metadata.tables[table].c[column].type
    assert isinstance(kind, String) and kind.length, f"{table}.{column} is a string column of bounded length"
    return kind.length


# In characters. PostgreSQL refuses a longer value, and with it the whole load; SQLite would store it, out of
# reach of the API, whose ids are capped at the same length.
MAX_LENGTHS: Final = {field: _column_length(table, column) for field, (table, column) in _TEXT_COLUMNS.items()}


@dataclass
class ValidatedChunk:
    rows: pd.DataFrame  # STAGED_COLUMNS, valid rows only
    problems: list[LineProblem]
    rejected_rows: int  # rows with at least one problem (malformed lines included)
    rows_read: int


Reasons = Callable[[np.ndarray], pd.Series]  # the reasons for the rows of a mask, built only when needed


class _Problems:
    """Collects the problems of one chunk; reason texts are built for the bad rows only."""

    def __init__(self, size: int) -> None:
        self.bad = np.zeros(size, dtype=bool)
        self.entries: list[tuple[np.ndarray, str, pd.Series]] = []

    def add(self, mask: pd.Series | np.ndarray, column: str, reasons: Reasons) -> None:
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            self.bad |= mask
            self.entries.append((mask, column, reasons(mask)))


def _text(values: pd.Series) -> pd.Series:
    return values.astype(_ARROW_STRING).str.strip().fillna("")


def _quoted(values: pd.Series, mask: np.ndarray) -> pd.Series:
    shown = values[mask].astype("string").fillna("").str.slice(0, 80).astype(object).map(printable)
    return "'" + shown.astype(str) + "'"


def _numbers(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(float values, blank mask): blanks become NaN without being errors; other non-numbers are NaN too."""
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        numbers = values.to_numpy(dtype="float64", na_value=np.nan)
        return numbers, np.isnan(numbers)
    text = _text(values)
    blank = (text == "").to_numpy(dtype=bool)
    present = text.where(pd.Series(~blank, index=text.index))
    arrow = pa.array(present, type=pa.string())
    try:  # Arrow's cast is fast on clean data; a bad cell makes it raise, then pandas coerces cell by cell
        numbers = pc.cast(arrow, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        numbers = pd.to_numeric(present, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    return numbers.astype("float64", copy=False), blank


def _parse_dates(values: pd.Series, date_format: str | None) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.dt.tz_localize(None) if values.dt.tz is not None else values
    return pd.to_datetime(_text(values), format=date_format or "ISO8601", errors="coerce")


def _is_date(text: str, date_format: str | None) -> bool:
    """Whether `text` is a date, one pandas cannot hold (such as 0001-01-01) included."""
    try:
        if date_format:
            dt.datetime.strptime(text, date_format)
        else:
            dt.datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _check_dates(dates: pd.Series, values: pd.Series, date_format: str | None) -> tuple[np.ndarray, np.ndarray]:
    """The (unparseable, out of range) masks of the parsed `dates`, whose raw cells are `values`."""
    unparseable = dates.isna().to_numpy(dtype=bool)
    out_of_range = ((dates < pd.Timestamp(EARLIEST_DATE)) | (dates > pd.Timestamp(LATEST_DATE))).to_numpy(dtype=bool)
    if unparseable.any() and not pd.api.types.is_datetime64_any_dtype(values):
        missing = np.flatnonzero(unparseable)
        beyond = missing[[_is_date(text, date_format) for text in _text(values).iloc[missing]]]
        unparseable[beyond], out_of_range[beyond] = False, True
    return unparseable, out_of_range


def _parse_flags(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Promotion flags: yes/no words, or numbers where any non-zero value (e.g. a discount) means yes."""
    if pd.api.types.is_bool_dtype(values):
        return values.fillna(False).to_numpy(dtype=bool), np.zeros(len(values), dtype=bool)
    if pd.api.types.is_numeric_dtype(values):
        numbers = values.to_numpy(dtype="float64", na_value=0.0)
        return numbers != 0, np.zeros(len(values), dtype=bool)
    text = _text(values).str.lower()
    is_true = text.isin(_TRUE).to_numpy(dtype=bool)
    is_false = text.isin(_FALSE).to_numpy(dtype=bool)
    words = is_true | is_false
    if words.all():
        return is_true, ~words
    numbers, _ = _numbers(text.where(pd.Series(~words, index=text.index)))
    numeric = ~np.isnan(numbers)
    return is_true | (numeric & (np.nan_to_num(numbers) != 0)), ~(words | numeric)


def validate_chunk(chunk: RawChunk, spec: SourceSpec, negative_sales: NegativeSalesPolicy) -> ValidatedChunk:
    raw = chunk.frame
    n = len(raw)
    mapping = {f: c for f, c in spec.mapping.items() if c in raw.columns}
    problems = _Problems(n)

    def column(field: str) -> pd.Series | None:
        return raw[mapping[field]] if field in mapping else None

    def constant(reason: str) -> Reasons:
        return lambda mask: pd.Series(reason, index=raw.index[mask])

    out = pd.DataFrame(index=raw.index)
    out["line"] = chunk.lines

    product = _text(raw[mapping["product"]])
    problems.add(product == "", mapping["product"], constant("empty product id"))
    out["product"] = product

    date_values = raw[mapping["date"]]
    dates = _parse_dates(date_values, spec.date_format)
    unparseable, out_of_range = _check_dates(dates, date_values, spec.date_format)
    problems.add(unparseable, mapping["date"], lambda m: "unparseable date " + _quoted(date_values, m))
    accepted = f"is out of range (accepted: {EARLIEST_DATE} to {LATEST_DATE})"
    problems.add(out_of_range, mapping["date"], lambda m: "date " + _quoted(date_values, m) + " " + accepted)
    out["date"] = dates

    unit_values = raw[mapping["units"]]
    units, _ = _numbers(unit_values)
    problems.add(np.isnan(units), mapping["units"], lambda m: "units is not a number: " + _quoted(unit_values, m))
    problems.add(np.isinf(units), mapping["units"], _not_finite("units", unit_values))
    negative = np.isfinite(units) & (units < 0)
    returns = negative.copy()  # before clipping: only a return may have a negative revenue
    if negative_sales == "reject":
        problems.add(
            negative,
            mapping["units"],
            lambda m: pd.Series([f"negative units {u} (negative_sales=reject)" for u in units[m]], index=raw.index[m]),
        )
    elif negative_sales == "clip":
        units = np.clip(units, 0.0, None)
    out["units"] = units

    for field in ("revenue", "unit_price"):
        values = column(field)
        if values is None:
            out[field] = np.nan
            continue
        numbers, blank = _numbers(values)
        problems.add(np.isnan(numbers) & ~blank, mapping[field], _not_a_number(field, values))
        problems.add(np.isinf(numbers), mapping[field], _not_finite(field, values))
        negative_number = np.isfinite(numbers) & (numbers < 0)
        if field == "unit_price":
            rule = "negative unit_price {}: a price is never negative"
            problems.add(negative_number, mapping[field], _negative(rule, numbers))
        else:  # a sale brings money in, a return pays it back
            rule = "negative revenue {} on a row of {} units: only a return (negative units) has negative revenue"
            problems.add(negative_number & ~returns, mapping[field], _negative(rule, numbers, units))
        out[field] = numbers
    if "revenue" in mapping or "unit_price" in mapping:
        # Revenue follows from the price when only the price is given.
        out["revenue"] = out["revenue"].fillna(out["unit_price"] * out["units"])
    if negative_sales == "clip":
        out["revenue"] = out["revenue"].where(out["units"] > 0, out["revenue"].clip(lower=0))

    promotion = column("on_promotion")
    if promotion is None:
        out["on_promotion"] = False
    else:
        flags, invalid = _parse_flags(promotion)
        problems.add(
            invalid, mapping["on_promotion"], lambda m: "on_promotion is not a yes/no value: " + _quoted(promotion, m)
        )
        out["on_promotion"] = flags

    for field in ("product_name", "category", "subcategory", "store_name"):
        values = column(field)
        out[field] = None if values is None else _text(values).replace("", None)
    store = column("store")
    out["store"] = spec.default_store if store is None else _text(store).replace("", spec.default_store)
    for field in MAX_LENGTHS:
        if field in mapping:
            _check_text(problems, out[field], field, mapping[field])

    bad = problems.bad
    report = [
        LineProblem(int(line), col, str(reason), raw_json)
        for mask, col, reasons in problems.entries
        for line, reason, raw_json in zip(chunk.lines[mask], reasons, _raw_rows(raw.loc[mask]), strict=True)
    ]
    return ValidatedChunk(
        rows=out.loc[~bad, list(STAGED_COLUMNS)].reset_index(drop=True),
        problems=chunk.malformed + report,
        rejected_rows=int(bad.sum()) + len(chunk.malformed),
        rows_read=n + len(chunk.malformed),
    )


def _not_a_number(field: str, values: pd.Series) -> Reasons:
    return lambda mask: f"{field} is not a number: " + _quoted(values, mask)


def _not_finite(field: str, values: pd.Series) -> Reasons:
    return lambda mask: f"{field} is not a finite number: " + _quoted(values, mask)


def _negative(template: str, *numbers: np.ndarray) -> Reasons:
    """Reasons that put each bad row's `numbers` (one array per pair of braces) into `template`."""
    return lambda mask: pd.Series([template.format(*row) for row in zip(*(n[mask] for n in numbers), strict=True)])


def _check_text(problems: _Problems, text: pd.Series, field: str, column: str) -> None:
    """Ids and names longer than their column holds, or holding a control character."""
    limit = MAX_LENGTHS[field]
    lengths = text.str.len().fillna(0).to_numpy(dtype="int64")
    problems.add(
        lengths > limit,
        column,
        lambda m: pd.Series([f"{field} is {n:,} characters long; at most {limit} fit" for n in lengths[m]]),
    )

    def first_control(mask: np.ndarray) -> pd.Series:
        found = [CONTROL_CHARACTERS.search(value) for value in text[mask].astype(str)]
        return pd.Series([f"{field} contains a control character (U+{ord(f[0]) if f else 0:04X})" for f in found])

    control = text.str.contains(CONTROL_CHARACTERS.pattern, regex=True).fillna(False).to_numpy(dtype=bool)
    problems.add(control, column, first_control)


RAW_CELL_CHARS: Final = 500  # of each cell kept with a rejected row: a 100,000-character id need not be stored whole


def _raw_rows(frame: pd.DataFrame) -> list[str]:
    cells = frame.astype("string").fillna("").apply(lambda column: column.str.slice(0, RAW_CELL_CHARS))
    return [json.dumps(row, default=str) for row in cells.to_dict("records")]
