"""Loaded model versions for live forecasts, and the what-if forecast computed from them.

Stored forecasts answer every read; only a what-if (another price, a promotion plan) needs the model
itself. `LoadedModels` keeps the last few versions in memory; `what_if` forecasts one product under a
changed plan next to the baseline plan, both through the same `predict` call with a full plan each,
so that the difference is the plan alone.

Cost: a what-if forecasts only the product's series (`Forecaster.predict(ids=...)`), once per plan, and
tells which families responded from the members' forecasts that made the blend, so its time hardly
grows with the catalogue (bench/what_if.py). A product too new to model is the exception: its profile
reads every established series' forecast.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import aliased

from salescast.data.schema import ModelVersion, Product, SalesFact, Store
from salescast.errors import (
    ArtifactIntegrityError,
    DataValidationError,
    ModelUnavailableError,
    NotFoundError,
    SalescastError,
)
from salescast.features.frame import DS, ID
from salescast.models.ensemble import EnsembleModel
from salescast.models.paths import COLD_METHOD
from salescast.registry.versions import PRODUCTION, ModelRegistry
from salescast.serving.promotions import UsualDiscount, usual_discount
from salescast.serving.queries import interval_of_sum

Json = dict[str, Any]


class LoadedModels:
    """Up to `max_loaded` model versions in memory, the least recently used dropped first.

    Thread-safe: concurrent first requests for one version wait on that version's lock and share one
    load, while other versions load in parallel. A loaded model is not safe to predict from two threads
    at once (mlforecast keeps the recursion's state on the object), so `predicting` hands it out under a
    lock of its own.

    An artifact that is missing or fails its checksum raises ModelUnavailableError, whose message names
    the version only: what the registry said (the artifact's path, both checksums) goes to
    `on_unusable` (the log and an alert, once per version until it loads again). The version is then
    known bad for `recheck_seconds`, so requests do not each fetch and hash it again; nothing is kept, so
    a repaired artifact loads afterwards.
    """

    def __init__(
        self,
        registry: ModelRegistry,
        cache_dir: Path,
        max_loaded: int = 3,
        on_unusable: Callable[[ModelVersion, SalescastError], None] | None = None,
        recheck_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_loaded < 1:
            raise ValueError(f"max_loaded must be at least 1, got {max_loaded}")
        self.registry = registry
        self.cache_dir = cache_dir
        self.max_loaded = max_loaded
        self.on_unusable = on_unusable
        self.recheck_seconds = recheck_seconds
        self._clock = clock
        self._unusable: dict[int, float] = {}  # version id -> when its artifact last failed
        self.loads = 0  # artifacts loaded so far (a hit loads nothing)
        self._models: OrderedDict[int, EnsembleModel] = OrderedDict()
        self._version_locks: dict[int, threading.Lock] = {}
        self._predict_locks: dict[int, threading.Lock] = {}
        self._lock = threading.Lock()

    @contextmanager
    def predicting(self, version: ModelVersion) -> Iterator[EnsembleModel]:
        """The version's model, for this thread alone until the block ends."""
        model = self.get(version)
        with self._lock:
            lock = self._predict_locks.setdefault(version.id, threading.Lock())
        with lock:
            yield model

    def get(self, version: ModelVersion) -> EnsembleModel:
        with self._lock:
            model = self._hit(version.id)
            if model is not None:
                return model
            version_lock = self._version_locks.setdefault(version.id, threading.Lock())
        with version_lock:
            with self._lock:
                model = self._hit(version.id)  # loaded by the thread we waited for
                if model is not None:
                    return model
            model = self._load_checked(version)
            with self._lock:
                self.loads += 1
                self._models[version.id] = model
                while len(self._models) > self.max_loaded:
                    evicted, _ = self._models.popitem(last=False)
                    self._version_locks.pop(evicted, None)
                    self._predict_locks.pop(evicted, None)
        return model

    def usable(self, version: ModelVersion) -> bool:
        """Whether `version` can serve what-ifs: loads it (once; it stays loaded for the requests to come)
        unless it failed within `recheck_seconds`."""
        try:
            self.get(version)
        except ModelUnavailableError:
            return False
        return True

    def _load_checked(self, version: ModelVersion) -> EnsembleModel:
        failed = self._unusable.get(version.id)
        if failed is not None and self._clock() - failed < self.recheck_seconds:
            raise _unavailable(version)
        try:
            model = self._load(version)
        except (ArtifactIntegrityError, NotFoundError) as exc:  # corrupt, missing, or never recorded
            first = failed is None
            self._unusable[version.id] = self._clock()
            if first and self.on_unusable is not None:
                self.on_unusable(version, exc)
            raise _unavailable(version) from exc
        self._unusable.pop(version.id, None)
        return model

    def loaded(self) -> list[int]:
        """Ids of the versions held, least recently used first."""
        with self._lock:
            return list(self._models)

    def _hit(self, version_id: int) -> EnsembleModel | None:
        model = self._models.get(version_id)
        if model is not None:
            self._models.move_to_end(version_id)
        return model

    def _load(self, version: ModelVersion) -> EnsembleModel:
        # Loading reads every file into memory, so the unpacked folder is only needed meanwhile.
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f"v{version.id}-", dir=self.cache_dir))
        try:
            return EnsembleModel.load(self.registry.fetch(version, scratch / "model"))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def _unavailable(version: ModelVersion) -> ModelUnavailableError:
    return ModelUnavailableError(
        f"model {version.name} v{version.version} cannot compute forecasts right now; the request id names "
        "the details in the server's log"
    )


def fallback_version(registry: ModelRegistry, models: LoadedModels, broken: ModelVersion) -> ModelVersion | None:
    """The version to serve what-ifs while `broken` cannot: the latest one production pointed to before it
    whose artifact loads; None when there is none."""
    rows = {row.id: row for row in registry.versions(broken.name)}
    tried = {broken.id}
    for event in reversed(registry.history(broken.name, PRODUCTION)):
        for version_id in (event.to_version_id, event.from_version_id):
            if version_id is None or version_id in tried or version_id not in rows:
                continue
            tried.add(version_id)
            if models.usable(rows[version_id]):
                return rows[version_id]
    return None


def what_if(
    engine: Engine,
    models: LoadedModels,
    version: ModelVersion,
    product: str,
    store: str | None,
    horizon: int,
    price: float | None = None,
    price_change_pct: float | None = None,
    promotion_days: list[dt.date] | None = None,
    promotion: bool | None = None,
    promotion_discount_pct: float | None = None,
    price_factor: float = 100.0,
) -> Json:
    """One product's forecast (in `store`, or summed over the stores it sold in) under a changed plan,
    next to the baseline plan: its last known price carried forward and no promotion.

    The scenario sets the price (`price`, absolute, or `price_change_pct` against each store's last
    price) and promotion days (`promotion_days`, or `promotion=True` for the whole horizon); what it
    leaves out stays as in the baseline. A promoted day's price is the scenario's price less
    `promotion_discount_pct`; left out, that is the product's usual promotional discount (see
    `salescast.serving.promotions`) when the scenario names no price, and none when it does (the price
    named is then taken as the promoted price). Sums over stores follow the interval rule of
    `salescast.serving.queries`. `responsive_families` names the model's families whose forecast of the
    product moved with the plan (statistical families ignore prices and promotions).

    A scenario's price must lie within `price_factor` of the prices the product is known at (from 1/factor
    of its lowest to factor x its highest; the catalogue's prices for a product never priced): a model
    asked about a price it has never seen the like of answers nonsense, and 1e300 answers overflow.
    """
    _check_inputs(version, horizon, price, price_change_pct, promotion_days, promotion, promotion_discount_pct)
    series = _series_of(engine, version, product, store)
    dates = {str(uid): _future(last, horizon, version.freq) for uid, last in series["last"].items()}
    horizon_dates = sorted({day for days in dates.values() for day in days})
    promoted = _promotion_dates(promotion_days, promotion, horizon_dates)
    discount = _promotion_discount(engine, version, product, promoted, price, price_change_pct, promotion_discount_pct)

    baseline_plan = _plan(dates, series["price"], set())
    scenario_price = series["price"].copy()
    if price is not None:
        scenario_price[:] = price
    elif price_change_pct is not None:
        if scenario_price.isna().any():
            missing = ", ".join(scenario_price.index[scenario_price.isna()])
            raise DataValidationError(f"no known price to change for {missing}; give an absolute price instead")
        scenario_price = scenario_price * (1 + price_change_pct / 100)
    if price is not None or price_change_pct is not None:
        _check_price_range(engine, product, scenario_price, price_factor)
    scenario_plan = _plan(dates, scenario_price, promoted, discount.pct if discount else 0.0)

    ids = list(series.index)
    with models.predicting(version) as model:
        baseline, baseline_members = model.predict_with_members(horizon, baseline_plan, ids)
        scenario, scenario_members = model.predict_with_members(horizon, scenario_plan, ids)
    responsive = [
        name
        for name, forecast in baseline_members.items()
        if model.members[name].uses_exog and not _same(forecast, scenario_members[name])
    ]
    if baseline.empty:
        raise NotFoundError(f"model version {version.name} v{version.version} has no series of product {product!r}")
    if "method" in baseline and (baseline["method"] == COLD_METHOD).all():
        # A cold start is the category's profile scaled to the product's first sales: no plan moves it,
        # and a 0 % change would read as "price does not matter".
        raise DataValidationError(
            f"product {product!r} is too new for model version {version.name} v{version.version} to respond to "
            f"price or promotion plans: it is forecast by the cold start (its category's profile) until it has "
            f"{model.params['min_history']} periods of sales"
        )
    baseline_total = float(baseline["p50"].sum())
    scenario_total = float(scenario["p50"].sum())
    return {
        "product_id": product,
        "store": store,
        "horizon": horizon,
        "model_version": version.version,
        "scenario": {
            "price": price,
            "price_change_pct": price_change_pct,
            "promotion_days": [day.isoformat() for day in sorted(promoted)],
            "promotion_discount_pct": discount.pct if discount else None,
            "promotion_discount_source": discount.source if discount else None,
        },
        "baseline": _daily(baseline),
        "scenario_forecast": _daily(scenario),
        "totals": {
            "baseline_p50": round(baseline_total, 3),
            "scenario_p50": round(scenario_total, 3),
            "change_pct": round((scenario_total - baseline_total) / baseline_total * 100, 1)
            if baseline_total > 0
            else None,
        },
        "responsive_families": responsive,
    }


def _check_inputs(
    version: ModelVersion,
    horizon: int,
    price: float | None,
    price_change_pct: float | None,
    promotion_days: list[dt.date] | None,
    promotion: bool | None,
    promotion_discount_pct: float | None,
) -> None:
    if not 1 <= horizon <= version.horizon:
        raise DataValidationError(
            f"horizon must be between 1 and the model's horizon of {version.horizon} periods, got {horizon}"
        )
    if price is not None and price_change_pct is not None:
        raise DataValidationError("give either price or price_change_pct, not both")
    if price is not None and not (np.isfinite(price) and price > 0):
        raise DataValidationError(f"price must be a positive number, got {price}")
    if price_change_pct is not None and not (np.isfinite(price_change_pct) and price_change_pct > -100):
        raise DataValidationError(f"price_change_pct must be above -100, got {price_change_pct}")
    if promotion_days is not None and promotion is not None:
        raise DataValidationError("give either promotion_days or promotion, not both")
    if promotion_discount_pct is not None:
        if not (np.isfinite(promotion_discount_pct) and 0 <= promotion_discount_pct < 100):
            raise DataValidationError(
                f"promotion_discount_pct must be from 0 to below 100, got {promotion_discount_pct}"
            )
        if not promotion_days and not promotion:
            raise DataValidationError("promotion_discount_pct applies to promotion days: name some (or promotion)")


def _check_price_range(engine: Engine, product: str, prices: pd.Series, factor: float) -> None:
    s = SalesFact
    known = select(func.min(s.unit_price), func.max(s.unit_price)).where(s.unit_price > 0)
    with engine.connect() as conn:
        low, high = conn.execute(known.join(Product, Product.id == s.product_id).where(Product.sku == product)).one()
        whose = "its"
        if low is None:
            low, high = conn.execute(known).one()
            whose = "the catalogue's"
    if low is None or high is None:
        return  # no price known anywhere: nothing to compare with
    lowest, highest = float(low) / factor, float(high) * factor
    outside = prices[(prices < lowest) | (prices > highest)]
    if not outside.empty:
        raise DataValidationError(
            f"price {float(outside.iloc[0]):g} is outside the range product {product!r} can be forecast at: "
            f"{lowest:g} to {highest:g} (1/{factor:g} of {whose} lowest known price {float(low):g} to "
            f"{factor:g}x {whose} highest {float(high):g})"
        )


def _promotion_discount(
    engine: Engine,
    version: ModelVersion,
    product: str,
    promoted: set[dt.date],
    price: float | None,
    price_change_pct: float | None,
    promotion_discount_pct: float | None,
) -> UsualDiscount | None:
    """The discount on promoted days, and where it came from; None without promoted days."""
    if not promoted:
        return None
    if promotion_discount_pct is not None:
        return UsualDiscount(float(promotion_discount_pct), "request")
    if price is not None or price_change_pct is not None:
        return UsualDiscount(0.0, "price given")
    return usual_discount(engine, product, version.data_end)


def _series_of(engine: Engine, version: ModelVersion, product: str, store: str | None) -> pd.DataFrame:
    """The product's series the model learned from: index unique_id, columns last (date) and price
    (its last known unit price, NaN if none), from the sales up to the end of the model's data."""
    s = SalesFact
    with engine.connect() as conn:
        product_id = conn.scalar(select(Product.id).where(Product.sku == product))
        if product_id is None:
            raise NotFoundError(f"unknown product {product!r}")
        where = [s.product_id == product_id]
        if version.data_end is not None:
            where.append(s.date <= version.data_end)
        if store is not None:
            store_id = conn.scalar(select(Store.id).where(Store.code == store))
            if store_id is None:
                raise NotFoundError(f"unknown store {store!r}")
            where.append(s.store_id == store_id)
        inner = aliased(SalesFact)
        last_price = (
            select(inner.unit_price)
            .where(
                inner.product_id == product_id,
                inner.store_id == Store.id,
                inner.unit_price.is_not(None),
                *([inner.date <= version.data_end] if version.data_end is not None else []),
            )
            .order_by(inner.date.desc())
            .limit(1)
            .scalar_subquery()
        )
        rows = conn.execute(
            select(Store.code, func.max(s.date), last_price)
            .join(Store, Store.id == s.store_id)
            .where(*where)
            .group_by(Store.id, Store.code)
        ).all()
    if not rows:
        where_label = f" in store {store!r}" if store is not None else ""
        raise NotFoundError(f"product {product!r} has no sales{where_label} up to the model's data end")
    return pd.DataFrame(
        {"last": [row[1] for row in rows], "price": [np.nan if row[2] is None else float(row[2]) for row in rows]},
        index=pd.Index([f"{row[0]}/{product}" for row in rows], name=ID),
    ).astype({"price": "float64"})


def _future(last: dt.date, horizon: int, freq: str) -> list[dt.date]:
    offset = pd.tseries.frequencies.to_offset(freq)
    return [(pd.Timestamp(last) + offset * (i + 1)).date() for i in range(horizon)]


def _promotion_dates(
    promotion_days: list[dt.date] | None, promotion: bool | None, horizon_dates: list[dt.date]
) -> set[dt.date]:
    if promotion:
        return set(horizon_dates)
    days = set(promotion_days or [])
    outside = sorted(days - set(horizon_dates))
    if outside:
        raise DataValidationError(
            f"promotion days {', '.join(d.isoformat() for d in outside)} are outside the forecast horizon "
            f"{horizon_dates[0].isoformat()} to {horizon_dates[-1].isoformat()}"
        )
    return days


def _plan(
    dates: dict[str, list[dt.date]], prices: pd.Series, promoted: set[dt.date], discount_pct: float = 0.0
) -> pd.DataFrame:
    """future_exog: unique_id, ds, price and on_promotion for every series and future period; promoted
    days priced `discount_pct` below the series' price."""
    promoted_factor = 1 - discount_pct / 100
    rows = [
        (uid, pd.Timestamp(day), prices[uid] * promoted_factor, 1.0)
        if day in promoted
        else (uid, pd.Timestamp(day), prices[uid], 0.0)
        for uid, days in dates.items()
        for day in days
    ]
    plan = pd.DataFrame(rows, columns=[ID, DS, "price", "on_promotion"])
    return plan.astype({DS: "datetime64[ns]", "price": "float64"})


def _same(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    return a.shape == b.shape and bool(np.allclose(a["p50"].to_numpy(), b["p50"].to_numpy(), rtol=1e-9, atol=1e-9))


def _daily(forecast: pd.DataFrame) -> list[Json]:
    """Per date, summed over the series (interval rule of the queries module)."""
    frame = forecast.assign(
        low=(forecast["p50"] - forecast["p10"]) ** 2,
        high=(forecast["p90"] - forecast["p50"]) ** 2,
    )
    daily = frame.groupby(DS, sort=True).agg(
        p50=("p50", "sum"), low=("low", "sum"), high=("high", "sum"), min_p10=("p10", "min")
    )
    return [
        {"date": day.date().isoformat(), **interval_of_sum(p50, low, high, min_p10)}
        for day, p50, low, high, min_p10 in zip(
            pd.DatetimeIndex(daily.index), daily["p50"], daily["low"], daily["high"], daily["min_p10"], strict=True
        )
    ]
