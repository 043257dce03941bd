"""Row validation: turns a raw chunk into typed canonical rows plus one problem per bad cell."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from salescast.config import NegativeSalesPolicy
from salescast.data.fields import STAGED_COLUMNS
from salescast.data.presets import SourceSpec
from salescast.data.sources import LineProblem, RawChunk

_TRUE = ["1", "true", "t", "yes", "y"]
_FALSE = ["0", "false", "f", "no", "n", ""]
_ARROW_STRING = pd.StringDtype("pyarrow")


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
    return "'" + values[mask].astype("string").fillna("").str.slice(0, 80) + "'"


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
    problems.add(dates.isna(), mapping["date"], lambda m: "unparseable date " + _quoted(date_values, m))
    out["date"] = dates

    unit_values = raw[mapping["units"]]
    units, _ = _numbers(unit_values)
    problems.add(np.isnan(units), mapping["units"], lambda m: "units is not a number: " + _quoted(unit_values, m))
    negative = units < 0
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


def _raw_rows(frame: pd.DataFrame) -> list[str]:
    return [json.dumps(row, default=str) for row in frame.astype("string").fillna("").to_dict("records")]
