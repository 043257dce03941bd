"""Row validation: turns a raw chunk into typed canonical rows plus one problem per bad cell."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from salescast.config import NegativeSalesPolicy
from salescast.data.fields import STAGED_COLUMNS
from salescast.data.presets import SourceSpec
from salescast.data.sources import LineProblem, RawChunk

_TRUE = {"1", "true", "t", "yes", "y"}
_FALSE = {"0", "false", "f", "no", "n", ""}


@dataclass
class ValidatedChunk:
    rows: pd.DataFrame  # STAGED_COLUMNS, valid rows only
    problems: list[LineProblem]
    rejected_rows: int  # rows with at least one problem (malformed lines included)
    rows_read: int


class _Problems:
    """Collects the problems of one chunk as (row mask, column, reason per row)."""

    def __init__(self, size: int) -> None:
        self.bad = np.zeros(size, dtype=bool)
        self.entries: list[tuple[np.ndarray, str, pd.Series]] = []

    def add(self, mask: pd.Series | np.ndarray, column: str, reasons: pd.Series) -> None:
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            self.bad |= mask
            self.entries.append((mask, column, reasons))


def _text(values: pd.Series) -> pd.Series:
    return values.astype("string").str.strip().fillna("")


def _quoted(values: pd.Series) -> pd.Series:
    return "'" + values.astype("string").fillna("").str.slice(0, 80) + "'"


def _parse_dates(values: pd.Series, date_format: str | None) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.dt.tz_localize(None) if values.dt.tz is not None else values
    text = _text(values)
    return pd.to_datetime(text, format=date_format or "ISO8601", errors="coerce")


def _parse_flags(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Promotion flags: yes/no words, or numbers where any non-zero value (e.g. a discount) means yes."""
    if pd.api.types.is_bool_dtype(values):
        return values.fillna(False).astype(bool), pd.Series(False, index=values.index)
    text = _text(values).str.lower()
    numbers = pd.to_numeric(text, errors="coerce")
    flags = text.isin(_TRUE) | (numbers.fillna(0) != 0)
    invalid = ~(text.isin(_TRUE) | text.isin(_FALSE) | numbers.notna())
    return flags, invalid


def validate_chunk(chunk: RawChunk, spec: SourceSpec, negative_sales: NegativeSalesPolicy) -> ValidatedChunk:
    raw = chunk.frame
    n = len(raw)
    mapping = {f: c for f, c in spec.mapping.items() if c in raw.columns}
    problems = _Problems(n)

    def column(field: str) -> pd.Series | None:
        return raw[mapping[field]] if field in mapping else None

    out = pd.DataFrame(index=raw.index)
    out["line"] = chunk.lines

    product = _text(raw[mapping["product"]])
    problems.add(product == "", mapping["product"], pd.Series("empty product id", index=raw.index))
    out["product"] = product

    dates = _parse_dates(raw[mapping["date"]], spec.date_format)
    problems.add(dates.isna(), mapping["date"], "unparseable date " + _quoted(raw[mapping["date"]]))
    out["date"] = dates.dt.date

    units = pd.to_numeric(raw[mapping["units"]], errors="coerce").astype("float64")
    problems.add(units.isna(), mapping["units"], "units is not a number: " + _quoted(raw[mapping["units"]]))
    negative = units < 0
    if negative_sales == "reject":
        reasons = "negative units " + units.astype("string") + " (negative_sales=reject)"
        problems.add(negative, mapping["units"], reasons)
    elif negative_sales == "clip":
        units = units.clip(lower=0)
    out["units"] = units

    for field in ("revenue", "unit_price"):
        values = column(field)
        if values is None:
            out[field] = np.nan
            continue
        blank = _text(values) == "" if not pd.api.types.is_numeric_dtype(values) else values.isna()
        numbers = pd.to_numeric(values.where(~blank), errors="coerce").astype("float64")
        problems.add(numbers.isna() & ~blank, mapping[field], f"{field} is not a number: " + _quoted(values))
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
        problems.add(invalid, mapping["on_promotion"], "on_promotion is not a yes/no value: " + _quoted(promotion))
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
        for line, reason, raw_json in zip(chunk.lines[mask], reasons[mask], _raw_rows(raw.loc[mask]), strict=True)
    ]
    return ValidatedChunk(
        rows=out.loc[~bad, list(STAGED_COLUMNS)].reset_index(drop=True),
        problems=chunk.malformed + report,
        rejected_rows=int(bad.sum()) + len(chunk.malformed),
        rows_read=n + len(chunk.malformed),
    )


def _raw_rows(frame: pd.DataFrame) -> list[str]:
    return [json.dumps(row, default=str) for row in frame.astype("string").fillna("").to_dict("records")]
