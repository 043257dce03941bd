"""Loaded model versions and live what-if forecasts, from real models trained on generated sales."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from salescast.config import Settings
from salescast.data.ingest import ingest_file
from salescast.data.presets import resolve_spec
from salescast.data.schema import ModelVersion
from salescast.data.synthetic import SyntheticConfig
from salescast.errors import DataValidationError, ModelUnavailableError, NotFoundError
from salescast.features.frame import DS, ID, SeriesFrame
from salescast.models.ensemble import EnsembleModel
from salescast.models.gbm import LightGBMModel
from salescast.models.statistical import StatisticalModel
from salescast.registry.artifacts import LocalArtifactStore
from salescast.registry.versions import ModelRegistry
from salescast.serving.models import LoadedModels, what_if
from tests.serving.catalog_fixtures import generated_sales_frame, register_frame_model
from tests.serving.clocks import FakeClock

HORIZON = 14


@dataclass
class Trained:
    sales_file: Path
    frame: SeriesFrame
    folders: dict[str, Path]  # family -> saved ensemble
    product: str  # the best seller, whose demand follows its price most visibly


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """An lgbm-only and an ets-only ensemble, trained once on the series the sales store will hold."""
    root = tmp_path_factory.mktemp("what_if")
    sales_file, frame = generated_sales_frame(root, SyntheticConfig(stores=2, products=6, days=420, seed=5))
    families = {
        "lgbm": LightGBMModel(n_estimators=80, num_threads=1),
        "ets": StatisticalModel(method="ets"),
    }
    folders = {}
    for name, member in families.items():
        ensemble = EnsembleModel(members={name: member.fit(frame)}, weights={name: 1.0}).fit(frame)
        folders[name] = root / name
        ensemble.save(folders[name])
    static = frame.static.set_index(ID)
    totals = frame.data.groupby(frame.data[ID].map(static["product"]))["y"].sum()
    return Trained(sales_file, frame, folders, str(totals.idxmax()))


@dataclass
class Served:
    registry: ModelRegistry
    versions: dict[str, ModelVersion]
    models: LoadedModels
    artifacts: Path


def register(registry: ModelRegistry, folder: Path, family: str, frame: SeriesFrame) -> ModelVersion:
    return register_frame_model(registry, folder, frame, f"demand-{family}", family, HORIZON)


@pytest.fixture
def served(engine: Engine, trained: Trained, tmp_path: Path) -> Served:
    ingest_file(engine, trained.sales_file, resolve_spec(None), Settings(_env_file=None, home=tmp_path / "home"))
    registry = ModelRegistry(engine, LocalArtifactStore(tmp_path / "artifacts"))
    versions = {family: register(registry, folder, family, trained.frame) for family, folder in trained.folders.items()}
    return Served(registry, versions, LoadedModels(registry, tmp_path / "cache"), tmp_path / "artifacts")


def p50s(days: list[dict[str, object]]) -> list[float]:
    return [float(day["p50"]) for day in days]  # type: ignore[arg-type]


# -- what-if --------------------------------------------------------------------------------------------


def test_a_price_cut_raises_the_gbm_forecast(engine: Engine, served: Served, trained: Trained) -> None:
    result = what_if(
        engine, served.models, served.versions["lgbm"], trained.product, None, HORIZON, price_change_pct=-30
    )

    assert result["totals"]["scenario_p50"] > result["totals"]["baseline_p50"]
    assert result["totals"]["change_pct"] > 0
    assert result["responsive_families"] == ["lgbm"]
    assert result["scenario"] == {
        "price": None,
        "price_change_pct": -30,
        "promotion_days": [],
        "promotion_discount_pct": None,
        "promotion_discount_source": None,
    }
    assert len(result["baseline"]) == len(result["scenario_forecast"]) == HORIZON


def test_a_price_rise_lowers_it(engine: Engine, served: Served, trained: Trained) -> None:
    result = what_if(
        engine, served.models, served.versions["lgbm"], trained.product, None, HORIZON, price_change_pct=50
    )

    assert result["totals"]["scenario_p50"] < result["totals"]["baseline_p50"]


def test_promotion_days_are_priced_at_the_usual_discount_and_raise_the_forecast(
    engine: Engine, served: Served, trained: Trained
) -> None:
    start = trained.frame.data[DS].max().date() + dt.timedelta(days=1)
    promoted = [start + dt.timedelta(days=i) for i in range(3)]

    result = what_if(
        engine, served.models, served.versions["lgbm"], trained.product, None, HORIZON, promotion_days=promoted
    )

    baseline, scenario = p50s(result["baseline"]), p50s(result["scenario_forecast"])
    # The generator discounts promotions by 10-40 % (about 21 % on average).
    assert result["scenario"]["promotion_discount_source"] == "product history"
    assert 12 <= result["scenario"]["promotion_discount_pct"] <= 30
    assert all(s > b for s, b in zip(scenario[:3], baseline[:3], strict=True))
    assert result["totals"]["change_pct"] > 5
    assert result["scenario"]["promotion_days"] == [day.isoformat() for day in promoted]


def test_a_named_discount_or_price_replaces_the_usual_one(engine: Engine, served: Served, trained: Trained) -> None:
    start = trained.frame.data[DS].max().date() + dt.timedelta(days=1)
    promoted = [start + dt.timedelta(days=i) for i in range(3)]
    version = served.versions["lgbm"]

    def promote(discount_pct: float | None = None, price_change_pct: float | None = None) -> dict[str, Any]:
        return what_if(
            engine,
            served.models,
            version,
            trained.product,
            None,
            HORIZON,
            promotion_days=promoted,
            promotion_discount_pct=discount_pct,
            price_change_pct=price_change_pct,
        )

    usual, flag_only, deeper = promote(), promote(discount_pct=0), promote(discount_pct=40)
    priced = promote(price_change_pct=-20)

    assert (flag_only["scenario"]["promotion_discount_pct"], flag_only["scenario"]["promotion_discount_source"]) == (
        0,
        "request",
    )
    assert (priced["scenario"]["promotion_discount_pct"], priced["scenario"]["promotion_discount_source"]) == (
        0,
        "price given",
    )
    # The model reads a promotion mostly through its price: the flag alone moves it little.
    totals = [r["totals"]["scenario_p50"] for r in (flag_only, usual, deeper)]
    assert totals == sorted(totals) and totals[0] < totals[2]
    assert abs(flag_only["totals"]["change_pct"]) < usual["totals"]["change_pct"]
    with pytest.raises(DataValidationError, match="applies to promotion days"):
        what_if(engine, served.models, version, trained.product, None, HORIZON, promotion_discount_pct=10)
    with pytest.raises(DataValidationError, match="from 0 to below 100"):
        what_if(
            engine, served.models, version, trained.product, None, HORIZON, promotion=True, promotion_discount_pct=100
        )


def test_the_baseline_is_the_models_own_forecast_summed_over_stores(
    engine: Engine, served: Served, trained: Trained
) -> None:
    result = what_if(engine, served.models, served.versions["lgbm"], trained.product, None, HORIZON, price=1.0)

    model = served.models.get(served.versions["lgbm"])
    plain = model.predict(HORIZON)
    plain = plain[plain[ID].str.endswith(f"/{trained.product}")]
    expected = plain.groupby(DS)["p50"].sum()
    assert p50s(result["baseline"]) == pytest.approx(expected.round(3).tolist())
    assert [day["date"] for day in result["baseline"]] == [d.date().isoformat() for d in expected.index]


def test_one_store_forecasts_that_stores_series_only(engine: Engine, served: Served, trained: Trained) -> None:
    version = served.versions["lgbm"]
    everywhere = what_if(engine, served.models, version, trained.product, None, HORIZON, promotion=True)
    per_store = [
        what_if(engine, served.models, version, trained.product, store, HORIZON, promotion=True)
        for store in ("S001", "S002")
    ]

    assert [r["store"] for r in per_store] == ["S001", "S002"]
    summed = [a + b for a, b in zip(*(p50s(r["scenario_forecast"]) for r in per_store), strict=True)]
    assert p50s(everywhere["scenario_forecast"]) == pytest.approx(summed, abs=2e-3)
    assert len(everywhere["scenario"]["promotion_days"]) == HORIZON


def test_a_statistical_model_ignores_the_plan(engine: Engine, served: Served, trained: Trained) -> None:
    result = what_if(
        engine,
        served.models,
        served.versions["ets"],
        trained.product,
        None,
        HORIZON,
        price_change_pct=-40,
        promotion=True,
    )

    assert result["scenario_forecast"] == result["baseline"]
    assert result["totals"]["change_pct"] == 0.0
    assert result["responsive_families"] == []


def test_a_product_too_new_to_model_says_its_what_if_cannot_respond(
    engine: Engine, served: Served, trained: Trained, tmp_path: Path
) -> None:
    # The model saw only the product's last 10 days (a launch): it forecasts it by the cold start.
    frame = trained.frame
    product_ids = frame.static.loc[frame.static["product"] == trained.product, ID]
    young = frame.data[ID].isin(set(product_ids)) & (frame.data[DS] <= frame.data[DS].max() - dt.timedelta(days=10))
    launched = SeriesFrame(frame.data[~young].reset_index(drop=True), frame.freq, frame.static)
    ensemble = EnsembleModel(members={"ets": StatisticalModel(method="ets")}, weights={"ets": 1.0}).fit(launched)
    ensemble.save(tmp_path / "launched")
    version = register(served.registry, tmp_path / "launched", "ets-launch", launched)

    forecast = ensemble.predict(HORIZON, ids=list(product_ids))
    assert set(forecast["method"]) == {"cold_start"}
    assert (forecast["p10"] <= forecast["p50"]).all()
    with pytest.raises(DataValidationError, match=r"too new .* to respond to price or promotion plans"):
        what_if(engine, served.models, version, trained.product, None, HORIZON, price_change_pct=-30)


def test_impossible_scenarios_are_refused(engine: Engine, served: Served, trained: Trained) -> None:
    version = served.versions["lgbm"]
    product = trained.product

    with pytest.raises(DataValidationError, match="price must be a positive number, got -2"):
        what_if(engine, served.models, version, product, None, HORIZON, price=-2.0)
    with pytest.raises(DataValidationError, match="the model's horizon of 14 periods, got 15"):
        what_if(engine, served.models, version, product, None, HORIZON + 1)
    with pytest.raises(DataValidationError, match="either price or price_change_pct"):
        what_if(engine, served.models, version, product, None, HORIZON, price=2.0, price_change_pct=5)
    late = trained.frame.data[DS].max().date() + dt.timedelta(days=HORIZON + 1)
    with pytest.raises(DataValidationError, match=f"promotion days {late.isoformat()} are outside the forecast"):
        what_if(engine, served.models, version, product, None, HORIZON, promotion_days=[late])
    with pytest.raises(NotFoundError, match="unknown product 'P99999'"):
        what_if(engine, served.models, version, "P99999", None, HORIZON)
    with pytest.raises(NotFoundError, match="unknown store 'S999'"):
        what_if(engine, served.models, version, product, "S999", HORIZON)
    assert served.models.loads == 0  # refused before any model was loaded


# -- loaded models --------------------------------------------------------------------------------------


def test_concurrent_first_requests_load_a_version_once(served: Served) -> None:
    version = served.versions["lgbm"]
    got: list[EnsembleModel] = []
    barrier = threading.Barrier(8)

    def request() -> None:
        barrier.wait()
        got.append(served.models.get(version))

    threads = [threading.Thread(target=request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert served.models.loads == 1
    assert len(got) == 8 and all(model is got[0] for model in got)
    assert served.models.loaded() == [version.id]
    assert list((served.models.cache_dir).iterdir()) == []  # the unpacked folder is gone once loaded


def test_concurrent_what_ifs_on_one_model_equal_sequential_ones(
    engine: Engine, served: Served, trained: Trained
) -> None:
    # A loaded model keeps prediction state on itself: unguarded, concurrent predictions crashed
    # ("All arrays must be of the same length") or mixed their answers.
    version = served.versions["lgbm"]
    changes = [-40, -20, 0, 20, 40, 60, -10, 10]
    expected = [
        what_if(engine, served.models, version, trained.product, None, HORIZON, price_change_pct=c) for c in changes
    ]
    results: dict[int, dict[str, object]] = {}
    barrier = threading.Barrier(len(changes))

    def request(i: int) -> None:
        barrier.wait()
        results[i] = what_if(
            engine, served.models, version, trained.product, None, HORIZON, price_change_pct=changes[i]
        )

    threads = [threading.Thread(target=request, args=(i,)) for i in range(len(changes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [results[i] for i in range(len(changes))] == expected


def test_the_least_recently_used_version_is_dropped(served: Served) -> None:
    models = LoadedModels(served.registry, served.models.cache_dir, max_loaded=1)
    lgbm, ets = served.versions["lgbm"], served.versions["ets"]

    models.get(lgbm)
    models.get(ets)
    models.get(ets)

    assert models.loaded() == [ets.id]
    assert models.loads == 2
    models.get(lgbm)
    assert models.loads == 3


def test_a_tampered_artifact_is_refused_without_its_details_and_loads_once_repaired(served: Served) -> None:
    clock = FakeClock()
    reported: list[tuple[int, str]] = []
    models = LoadedModels(
        served.registry,
        served.models.cache_dir,
        on_unusable=lambda version, error: reported.append((version.version, str(error))),
        recheck_seconds=60,
        clock=clock,
    )
    version = served.versions["lgbm"]
    assert version.artifact_uri is not None and version.artifact_sha256 is not None
    artifact = Path(version.artifact_uri.removeprefix("file://"))
    original = artifact.read_bytes()
    artifact.write_bytes(original[:-10] + b"x" * 10)

    with pytest.raises(ModelUnavailableError) as refused:
        models.get(version)
    with pytest.raises(ModelUnavailableError):
        models.get(version)  # known bad: not fetched and hashed again, not reported twice

    message = str(refused.value)
    assert f"v{version.version} cannot compute forecasts" in message
    assert str(artifact) not in message and version.artifact_sha256 not in message
    assert len(reported) == 1 and str(artifact) in reported[0][1] and version.artifact_sha256 in reported[0][1]
    assert models.loaded() == [] and models.loads == 0

    artifact.write_bytes(original)
    clock.now += 61
    assert isinstance(models.get(version), EnsembleModel)
    assert models.loads == 1
