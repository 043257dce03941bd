"""Where training runs: the compute engine, chosen by URL like every other backend.

`compute_engine(url)` is the one place that maps a URL to an engine:

- `""` or `local://`: this process, exactly as training runs without an engine;
- `dask://host:port`: a `dask.distributed` client of the scheduler there (port 8786 when left out);
- `dask://local`: a Dask cluster started on this machine, `?workers=N&threads=T` to size it.

On a Dask engine the gradient-boosted families build their features with mlforecast's
`DistributedMLForecast` and train with LightGBM's and XGBoost's own Dask estimators, and the statistical
families (SeasonalNaive, ETS, Theta, ARIMA, the intermittent methods) fit per series through
statsforecast's Fugue backend. Prophet, the ensemble weights, metrics and conformal intervals stay in
this process. The models that come back are local: a gradient-boosted model holds the booster pulled
back from the cluster, so predicting, saving and loading never need the cluster again.

A remote cluster's workers unpickle salescast's feature functions, so they must run the same salescast
version as the client (the same image).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable
from urllib.parse import parse_qs, urlsplit

from salescast.errors import ConfigurationError
from salescast.features.frame import SeriesFrame
from salescast.models.base import Forecaster
from salescast.models.catalog import BASELINE, model_factory
from salescast.models.ensemble import DEFAULT_WEIGHT_METHOD, EnsembleModel, WeightMethod
from salescast.training.backtest import BacktestSpec
from salescast.training.hierarchy import Method
from salescast.training.train import TrainingReport, train

if TYPE_CHECKING:
    from distributed import Client, LocalCluster

DEFAULT_SCHEDULER_PORT = 8786

# The families whose constructors take a client; Prophet fits one Stan model per series in this process.
DISTRIBUTED_FAMILIES = frozenset({"snaive", "lgbm", "xgb", "ets", "theta", "arima"})


class ComputeEngine(Protocol):
    """Where the model families fit. `placement(names)` gives, per family, the constructor arguments that
    put it on the engine (none for the local engine); they are never saved with a model."""

    url: str

    def placement(self, names: Iterable[str]) -> dict[str, dict[str, Any]]: ...

    def close(self) -> None: ...


@runtime_checkable
class _Placed(Protocol):
    """A model that holds the client it fits on."""

    client: Any


class _Closing:
    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


class LocalEngine(_Closing):
    """This process: the families fit as they do without an engine."""

    def __init__(self, url: str = "local://") -> None:
        self.url = url

    def placement(self, names: Iterable[str]) -> dict[str, dict[str, Any]]:
        return {}

    def __repr__(self) -> str:
        return f"LocalEngine({self.url!r})"


class DaskEngine(_Closing):
    """A `dask.distributed` client; closes the cluster too when it started one."""

    def __init__(self, client: Client, url: str, cluster: LocalCluster | None = None) -> None:
        self.client = client
        self.url = url
        self._cluster = cluster

    @property
    def workers(self) -> int:
        return len(self.client.nthreads())

    def placement(self, names: Iterable[str]) -> dict[str, dict[str, Any]]:
        return {name: {"client": self.client} for name in names if name in DISTRIBUTED_FAMILIES}

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()

    def __repr__(self) -> str:
        return f"DaskEngine({self.url!r}, workers={self.workers})"


def compute_engine(url: str) -> LocalEngine | DaskEngine:
    """The engine a URL names; a Dask engine connects (or starts its cluster) here. Close it after use."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if not url.strip() or (scheme == "local" and not parts.netloc and parts.path in ("", "/")):
        return LocalEngine(url.strip() or "local://")
    if scheme != "dask":
        raise ConfigurationError(
            f"unsupported compute URL {url!r}: use local://, dask://host:port or dask://local[?workers=N&threads=T]"
        )
    if not parts.netloc:
        raise ConfigurationError(f"{url!r} names no scheduler: use dask://host:port or dask://local")
    from distributed import Client

    if parts.hostname == "local":
        return _local_cluster(url, parts.query)
    if parts.query:
        raise ConfigurationError(f"{url!r}: options (?…) are for dask://local only; a scheduler sizes itself")
    try:
        port = parts.port or DEFAULT_SCHEDULER_PORT
    except ValueError as exc:
        raise ConfigurationError(f"{url!r}: the port is not a number") from exc
    address = f"tcp://{parts.hostname}:{port}"
    try:
        client = Client(address)
    except OSError as exc:
        raise ConfigurationError(f"no Dask scheduler answers at {address} ({exc})") from exc
    return DaskEngine(client, url)


def _local_cluster(url: str, query: str) -> DaskEngine:
    from distributed import Client, LocalCluster

    options = {key: values[-1] for key, values in parse_qs(query, strict_parsing=False).items()}
    unknown = set(options) - {"workers", "threads"}
    if unknown:
        raise ConfigurationError(f"{url!r}: unknown option(s) {sorted(unknown)}; dask://local takes workers, threads")
    try:
        sizes = {key: int(value) for key, value in options.items()}
    except ValueError as exc:
        raise ConfigurationError(f"{url!r}: workers and threads are whole numbers") from exc
    if any(size < 1 for size in sizes.values()):
        raise ConfigurationError(f"{url!r}: workers and threads are at least 1")
    # Worker processes, not threads: LightGBM's network and XGBoost's collective are set up once per
    # process, so two workers sharing one process would share (and break) them.
    cluster = LocalCluster(
        n_workers=sizes.get("workers"),
        threads_per_worker=sizes.get("threads"),
        processes=True,
        dashboard_address=None,
    )
    try:
        return DaskEngine(Client(cluster), url, cluster)
    except BaseException:
        cluster.close()
        raise


def _release(model: Forecaster) -> None:
    """Drop the client from a fitted model (and an ensemble's members), so that it predicts here and
    pickles without the cluster."""
    if isinstance(model, _Placed):
        model.client = None
    if isinstance(model, EnsembleModel):
        for member in model.members.values():
            _release(member)


def fit_on(engine: ComputeEngine, name: str, frame: SeriesFrame, **params: Any) -> Forecaster:
    """One family fitted on the engine; the returned model predicts in this process."""
    model = model_factory(name, **params, **engine.placement([name]).get(name, {}))().fit(frame)
    _release(model)
    return model


def train_on(
    engine: ComputeEngine,
    frame: SeriesFrame,
    models: list[str],
    spec: BacktestSpec,
    weight_method: WeightMethod = DEFAULT_WEIGHT_METHOD,
    fixed_weights: dict[str, float] | None = None,
    model_params: dict[str, dict[str, object]] | None = None,
    progress: Callable[[str], None] | None = None,
    min_history: int | None = None,
    reconcile: Sequence[Method] = (),
) -> tuple[EnsembleModel, TrainingReport]:
    """`train` with every backtest and final fit of the distributable families on `engine`.

    The returned ensemble is released from the engine: it forecasts in this process and saves as a
    locally trained one does. The engine stays open; its owner closes it."""
    names = list(dict.fromkeys([*models, BASELINE]))
    placed = engine.placement(names)
    params: dict[str, dict[str, object]] = {
        name: {**(model_params or {}).get(name, {}), **placed.get(name, {})}
        for name in dict.fromkeys([*names, *(model_params or {})])
    }
    ensemble, report = train(
        frame,
        models,
        spec,
        weight_method=weight_method,
        fixed_weights=fixed_weights,
        model_params=params,
        progress=progress,
        min_history=min_history,
        reconcile=reconcile,
    )
    _release(ensemble)
    return ensemble, report


__all__ = [
    "DISTRIBUTED_FAMILIES",
    "ComputeEngine",
    "DaskEngine",
    "LocalEngine",
    "compute_engine",
    "fit_on",
    "train_on",
]
