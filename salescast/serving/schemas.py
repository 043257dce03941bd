"""Response and request bodies of the API, for validation and the OpenAPI document.

Routes send pre-encoded bytes on the hot path; these models are the contract those bytes keep (the
schemathesis test checks every response against them).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from salescast.config import ALIAS_PATTERN

# Text a client sends: anything but NUL, which PostgreSQL cannot store or compare (it would be a 500).
TEXT = r"^[^\x00]*$"
TimePeriod = Literal["week", "month", "quarter"]
ALIAS_DESCRIPTION = (
    "One of the server's alias names (SALESCAST_MODEL_ALIASES; production, candidate, staging and challenger "
    "by default); this document lists them"
)
RankBy = Literal["units", "revenue"]


class TopProductsQuery(BaseModel):
    """The query of GET /forecast/top-products; unknown parameters are refused."""

    model_config = ConfigDict(extra="forbid")

    time_period: TimePeriod = Field(default="month", description="week = 7 days, month = 30, quarter = 91")
    category: str | None = Field(
        default=None, min_length=1, max_length=200, pattern=TEXT, description="A category and its sub-categories"
    )
    store: str | None = Field(default=None, min_length=1, max_length=200, pattern=TEXT, description="One store")
    limit: int = Field(default=10, ge=1, le=100)
    rank_by: RankBy = "units"


class Served(BaseModel):
    model: str = Field(description="Registered model name")
    model_version: int = Field(description="The version that computed this answer")
    generated_at: str = Field(description="When the answer was computed (ISO 8601, UTC)")


class Interval(BaseModel):
    p10: float
    p50: float
    p90: float


class RankedProduct(BaseModel):
    rank: int
    product_id: str
    name: str | None
    category: str | None
    units: Interval
    revenue: float | None = Field(description="p50 units x the latest known unit price")
    trend_pct: float | None = Field(description="Forecast vs the same number of days just before, in %")
    history_units: float
    method: Literal["model", "cold_start"]


class TopProducts(Served):
    products: list[RankedProduct]
    total: int = Field(description="Products that matched, before the limit")
    time_period: TimePeriod
    period_start: str
    period_end: str
    category: str | None
    store: str | None
    rank_by: RankBy


class ForecastDay(BaseModel):
    date: str
    p10: float
    p50: float
    p90: float
    mean: float = Field(
        description="The mean forecast: the days' means add up to a period's total, their p50s fall short"
    )
    method: Literal["model", "cold_start"]


class HistoryDay(BaseModel):
    date: str
    units: float


class ProductForecast(Served):
    product_id: str
    store: str | None
    horizon: int
    forecast_start: str
    forecast: list[ForecastDay]
    history: list[HistoryDay]


class WhatIfRequest(BaseModel):
    product: str = Field(min_length=1, max_length=200, pattern=TEXT, description="Product id (sku)")
    store: str | None = Field(
        default=None, max_length=200, pattern=TEXT, description="One store; all of them when omitted"
    )
    horizon: int | None = Field(
        default=None,
        ge=1,
        le=366,  # the document states the configured bound (salescast/serving/limits.py)
        description="Periods ahead; at most the horizon the models are trained for (the model's own, the default)",
    )
    price: float | None = Field(default=None, gt=0, description="New unit price over the horizon")
    price_change_pct: float | None = Field(default=None, gt=-100, le=1000, description="Or a change vs today, %")
    promotion_days: list[dt.date] | None = Field(default=None, max_length=366, description="Days on promotion")
    promotion: bool | None = Field(default=None, description="true: every day of the horizon on promotion")
    promotion_discount_pct: float | None = Field(
        default=None,
        ge=0,
        lt=100,
        description="Discount on the promotion days, %. Default: the product's usual promotional discount "
        "(its category's if it was never promoted) when no price is given, else none",
    )

    # The schema states the rules between fields too, so that generated clients and contract tests know
    # them: a price or a change, not both; promotion days or the whole horizon, not both; a discount
    # only with promotion days.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "allOf": [
                {"not": {"required": ["price", "price_change_pct"]}},
                {"not": {"required": ["promotion_days", "promotion"]}},
                {
                    "if": {
                        "required": ["promotion_discount_pct"],
                        "properties": {"promotion_discount_pct": {"type": "number"}},
                    },
                    "then": {
                        "anyOf": [
                            {
                                "required": ["promotion_days"],
                                "properties": {"promotion_days": {"type": "array", "minItems": 1}},
                            },
                            {"required": ["promotion"], "properties": {"promotion": {"const": True}}},
                        ]
                    },
                },
            ]
        },
    )

    @model_validator(mode="after")
    def _consistent(self) -> WhatIfRequest:
        given = self.model_fields_set  # as the schema's `required`: a field sent as null is given
        if {"price", "price_change_pct"} <= given:
            raise ValueError("give price or price_change_pct, not both")
        if {"promotion_days", "promotion"} <= given:
            raise ValueError("give either promotion_days or promotion, not both")
        if self.promotion_discount_pct is not None and not self.promotion_days and not self.promotion:
            raise ValueError("promotion_discount_pct applies to promotion days: name some (or promotion)")
        return self


class WhatIfPoint(BaseModel):
    date: str
    p10: float
    p50: float
    p90: float


class WhatIf(Served):
    product_id: str
    store: str | None
    horizon: int
    scenario: dict[str, object]
    baseline: list[WhatIfPoint]
    scenario_forecast: list[WhatIfPoint]
    totals: dict[str, float | None]
    responsive_families: list[str]


class Category(BaseModel):
    name: str
    parent: str | None
    products: int
    subcategories: list[str]


class ProductItem(BaseModel):
    product_id: str
    name: str | None
    category: str | None
    stores: list[str] = Field(description="Codes of the stores that sold it")


class ProductPage(BaseModel):
    items: list[ProductItem]
    page: int
    page_size: int
    total: int


class ModelSummary(BaseModel):
    name: str
    versions: int
    aliases: dict[str, int]
    latest_version: int


class VersionSummary(BaseModel):
    version: int
    status: str
    created_at: str
    families: list[str]
    weights: dict[str, float]
    freq: str
    horizon: int
    series: int
    data_start: str | None
    data_end: str | None
    metrics: dict[str, object]
    reason: str | None
    gate: dict[str, object] | None = Field(description="The gate's verdict: passed, its checks and reasons")
    aliases: list[str]


class SetAlias(BaseModel):
    """Point an alias at a version (for production: promote)."""

    model_config = ConfigDict(extra="forbid")

    alias: str = Field(pattern=ALIAS_PATTERN, description=ALIAS_DESCRIPTION)
    version: int = Field(ge=1, le=2**31 - 1)
    action: Literal["set"] = "set"
    reason: str | None = Field(default=None, max_length=500, pattern=TEXT)


class RollbackAlias(BaseModel):
    """Point an alias back at the version it pointed to before."""

    model_config = ConfigDict(extra="forbid")

    alias: str = Field(pattern=ALIAS_PATTERN, description=ALIAS_DESCRIPTION)
    action: Literal["rollback"]
    reason: str | None = Field(default=None, max_length=500, pattern=TEXT)


AliasChange = SetAlias | RollbackAlias


class AliasEventOut(BaseModel):
    name: str
    alias: str
    from_version: int | None
    to_version: int | None
    actor: str
    reason: str | None
    at: str
    changed: bool = Field(description="false: the alias pointed there already; nothing moved, nothing audited")


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready", "degraded"] = Field(
        description="degraded: the production version's model artifact is unusable; stored forecasts still "
        "answer and `detail` says what computes what-ifs"
    )
    model: str
    model_version: int
    database: str
    detail: str | None = Field(description="Why the service is degraded; null when ready")


class IngestionRunOut(BaseModel):
    id: int
    source: str
    preset: str | None
    status: str = Field(description="running, succeeded, failed or interrupted")
    message: str | None
    started_at: str | None
    finished_at: str | None
    seconds: float | None
    rows_read: int
    rows_accepted: int
    rows_rejected: int
    facts_inserted: int
    facts_updated: int
    facts_unchanged: int


class IngestionOverview(BaseModel):
    first_sales_date: str | None
    newest_sales_date: str | None = Field(description="The newest sales date the store holds (its freshness)")
    sales_rows: int
    products: int
    runs: list[IngestionRunOut] = Field(description="The newest runs first")


class RejectedRowOut(BaseModel):
    line: int = Field(description="Line of the file (the header is line 1)")
    column: str | None
    reason: str
    raw: str | None


class RunRejects(BaseModel):
    run_id: int
    rows_rejected: int = Field(description="Rows the run rejected in all; at most ingest_max_stored_rejects are kept")
    rows: list[RejectedRowOut]


class VariantHealth(BaseModel):
    requests: int
    errors: int = Field(description="Answers with a status of 500 or more")
    error_rate: float
    mean_latency_ms: float
    p99_latency_ms: float | None


class DeploymentOut(BaseModel):
    id: int
    strategy: str
    status: str = Field(description="active, completed, rolled_back or stopped")
    production_version: int = Field(description="The version traffic moves from")
    candidate_version: int
    steps: list[float]
    step: int
    share: float = Field(description="The candidate's share of traffic now")
    bake_seconds: float
    reason: str | None = Field(description="Why it ended (a rollback's reason)")
    actor: str
    created_at: str
    updated_at: str


class ActiveDeployment(DeploymentOut):
    step_started_at: str
    bake_seconds_left: float
    verdict: Literal["healthy", "breach", "insufficient"]
    verdict_reason: str


class DeploymentStatus(BaseModel):
    name: str
    production_version: int | None
    active: ActiveDeployment | None
    health_since: str = Field(description="Start of the window the health figures cover")
    candidate: VariantHealth | None
    production: VariantHealth | None
    history: list[DeploymentOut] = Field(description="The latest deployments, newest first")


class HolidayOut(BaseModel):
    date: str
    name: str


class ProductCalendar(BaseModel):
    product_id: str
    start: str
    end: str
    promotion_days: list[str] = Field(description="Days the product sold on promotion in any store")
    holidays: list[HolidayOut]


class KeyIdentity(BaseModel):
    name: str
    prefix: str | None = Field(description="The key's public prefix; null without a key (open-read mode)")
    scopes: list[Literal["read", "predict", "admin"]] = Field(description="Every scope the key grants")


class StoreOut(BaseModel):
    code: str
    name: str | None
