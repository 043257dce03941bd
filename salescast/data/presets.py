"""How each known layout maps onto the canonical fields: the real data sets and common public ones."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

from salescast.data.fields import ALL_FIELDS, REQUIRED_FIELDS
from salescast.errors import ConfigurationError

Layout = Literal["long", "m5_wide"]


class SourceSpec(BaseModel):
    """How to read one file: its layout, parsing options and which column holds which field."""

    layout: Layout = "long"
    mapping: dict[str, str] = Field(default_factory=dict, description="canonical field -> source column")
    file_format: Literal["csv", "parquet"] | None = None  # None: from the file's extension
    sep: str | None = None  # None: "," for .csv, tab for .tsv
    encoding: str = "utf-8-sig"  # utf-8-sig also reads files that start with a byte-order mark
    date_format: str | None = None  # strptime format; None: ISO 8601
    aggregate: bool = False  # order lines: sum all rows of a (product, store, date)
    default_store: str = "all"

    @field_validator("mapping")
    @classmethod
    def _known_fields(cls, mapping: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(mapping) - set(ALL_FIELDS))
        if unknown:
            raise ValueError(f"unknown field(s) {unknown}; known fields: {', '.join(ALL_FIELDS)}")
        return mapping

    def with_mapping(self, overrides: dict[str, str]) -> SourceSpec:
        return self.model_copy(update={"mapping": {**self.mapping, **overrides}})


_GENERIC_MAPPING = {field: field for field in ALL_FIELDS}

PRESETS: dict[str, SourceSpec] = {
    # salescast's own long format, as written by `salescast generate`; optional columns may be absent.
    "salescast": SourceSpec(mapping=_GENERIC_MAPPING),
    # Tableau "Sample - Superstore": one row per order line, dd/mm/yy dates, Region used as the store.
    "superstore": SourceSpec(
        mapping={
            "date": "Order Date",
            "product": "Product ID",
            "product_name": "Product Name",
            "category": "Category",
            "subcategory": "Sub-Category",
            "store": "Region",
            "units": "Quantity",
            "revenue": "Sales",
            "on_promotion": "Discount",
        },
        date_format="%d/%m/%y",
        aggregate=True,
    ),
    # Kaggle "Store Item Demand Forecasting": date,store,item,sales.
    "store_item": SourceSpec(mapping={"date": "date", "store": "store", "product": "item", "units": "sales"}),
    # M5 (Walmart): wide d_1..d_N units, calendar.csv and optional sell prices beside the sales file.
    "m5": SourceSpec(
        layout="m5_wide",
        mapping={
            "date": "date",
            "product": "item_id",
            "store": "store_id",
            "category": "cat_id",
            "subcategory": "dept_id",
            "units": "units",
            "unit_price": "sell_price",
        },
    ),
    # fpp2/fpp3 monthly series in long format (series_id, month, value).
    "au_monthly": SourceSpec(mapping={"date": "month", "product": "series_id", "units": "value"}),
}


def resolve_spec(preset: str | None, overrides: dict[str, str] | None = None) -> SourceSpec:
    """The preset's spec (default `salescast`) with `overrides` applied to its mapping."""
    name = preset or "salescast"
    if name not in PRESETS:
        raise ConfigurationError(f"unknown preset {name!r}; known presets: {', '.join(sorted(PRESETS))}")
    spec = PRESETS[name]
    if overrides:
        try:
            spec = SourceSpec.model_validate({**spec.model_dump(), "mapping": {**spec.mapping, **overrides}})
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from exc
    missing = [field for field in REQUIRED_FIELDS if field not in spec.mapping]
    if missing:
        raise ConfigurationError(f"the mapping gives no column for required field(s) {missing}")
    return spec


def parse_mapping_options(options: list[str]) -> dict[str, str]:
    """`["units=Qty", "date=Day"]` -> `{"units": "Qty", "date": "Day"}`."""
    mapping: dict[str, str] = {}
    for option in options:
        field, sep, column = option.partition("=")
        if not sep or not field.strip() or not column.strip():
            raise ConfigurationError(f"--map expects FIELD=COLUMN, got {option!r}")
        mapping[field.strip()] = column.strip()
    return mapping
