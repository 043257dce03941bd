"""Request limits that come from the settings, stated in the OpenAPI document as the server enforces them.

The routes' parameter models are made at import, before any settings exist, so they carry a static
ceiling (MAX_HORIZON); the real bound is checked in the route (`check_horizon`, a 422) and written into
the document when the app makes it (`document_limits`): a product's forecast reaches as far as the
stored forecasts (`stored_forecast_days`), a what-if as far as the models are trained to forecast
(`pipeline_horizon`; a version trained for fewer periods answers 422 beyond its own horizon).
"""

from __future__ import annotations

from typing import Any

from salescast.config import Settings
from salescast.errors import DataValidationError
from salescast.serving.routes import API_PREFIX

MAX_HORIZON = 366  # the parameter models' ceiling; the settings' bound is at most this
PRODUCT_FORECAST = f"{API_PREFIX}/forecast/products/{{product_id}}"


def check_horizon(horizon: int | None, limit: int, what: str) -> None:
    """Refuse a horizon beyond `limit` (422), naming `what` the limit is."""
    bound = min(limit, MAX_HORIZON)
    if horizon is not None and horizon > bound:
        raise DataValidationError(f"horizon must be between 1 and {bound} ({what}), got {horizon}")


def document_limits(document: dict[str, Any], settings: Settings) -> None:
    """Write the settings' bounds into an OpenAPI document made from the routes (in place)."""
    for parameter in document["paths"][PRODUCT_FORECAST]["get"]["parameters"]:
        if parameter["name"] == "horizon":
            parameter["schema"]["maximum"] = min(settings.stored_forecast_days, MAX_HORIZON)
            parameter["description"] = "Days ahead, at most the days of forecasts stored per version"
    horizon = document["components"]["schemas"]["WhatIfRequest"]["properties"]["horizon"]
    for option in horizon.get("anyOf", [horizon]):
        if option.get("type") == "integer":
            option["maximum"] = min(settings.pipeline_horizon, MAX_HORIZON)
