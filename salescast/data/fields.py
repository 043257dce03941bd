"""The canonical fields of a sales row, which every source is mapped onto."""

from __future__ import annotations

from typing import Final

REQUIRED_FIELDS: Final = ("date", "product", "units")
OPTIONAL_FIELDS: Final = (
    "store",
    "revenue",
    "unit_price",
    "on_promotion",
    "category",
    "subcategory",
    "product_name",
    "store_name",
)
ALL_FIELDS: Final = REQUIRED_FIELDS + OPTIONAL_FIELDS

# Columns of a validated chunk, in the order the staging table stores them.
STAGED_COLUMNS: Final = (
    "line",
    "date",
    "product",
    "product_name",
    "category",
    "subcategory",
    "store",
    "store_name",
    "units",
    "revenue",
    "unit_price",
    "on_promotion",
)
