"""Young-series probes calibrate the short and cold paths' bands and are never scored."""

from __future__ import annotations

import pandas as pd

from salescast.features.frame import DS, ID, Y
from salescast.models.catalog import model_factory
from salescast.models.paths import series_paths
from salescast.training.backtest import BacktestSpec, cutoffs, run_backtest
from salescast.training.probes import SEPARATOR, original_id, probe_history
from salescast.training.train import score_backtest
from tests.models.conftest import synthetic_frame
from tests.training.test_backtest import SpyModel
from tests.training.test_train import messy_frame


def test_probe_copies_are_cut_to_the_short_and_cold_lengths_of_their_originals() -> None:
    frame = messy_frame()
    paths = series_paths(frame.lengths(), frame.freq, 13)

    probes = probe_history(frame, paths, min_history=13, count=10, seed=0)

    assert probes is not None
    lengths = probes.lengths()
    copies = lengths[lengths.index.str.contains(SEPARATOR)]
    originals = lengths[~lengths.index.str.contains(SEPARATOR)]
    assert len(originals) == 10 and set(paths[originals.index]) == {"full"}
    short = copies[copies.index.str.endswith("short")]
    cold = copies[copies.index.str.endswith("cold")]
    assert len(short) == len(cold) == 10
    assert short.between(13, 52).all() and cold.between(1, 12).all()
    # a copy is its original's last periods, values and dates alike
    uid = short.index[0]
    copy = probes.data[probes.data[ID] == uid]
    source = frame.data[frame.data[ID] == original_id(pd.Series([uid]))[0]].tail(len(copy))
    assert copy[DS].tolist() == source[DS].tolist() and copy[Y].tolist() == source[Y].tolist()
    assert set(series_paths(copies, frame.freq, 13)) == {"short", "cold"}


def test_probe_fits_see_only_the_history_before_their_window_cutoff() -> None:
    frame = synthetic_frame(stores=1, products=4, days=200)  # daily: a season (7) is under min_history (28)
    spec = BacktestSpec(horizon=14, windows=2, probes=3)
    SpyModel.seen = []

    result = run_backtest(frame, {"spy": SpyModel}, spec)

    # two fits per window (the series, then the probes), none beyond that window's last cutoff
    windows = cutoffs(frame, spec)
    assert len(SpyModel.seen) == 4
    for (seen, _), cutoff in zip(SpyModel.seen, [windows[0], windows[0], windows[1], windows[1]], strict=True):
        assert seen <= cutoff.max()
    assert result.probes is not None
    assert set(result.probes["path"]) == {"cold"}  # no daily series is short: cold copies only
    assert result.probes.groupby("window")[ID].nunique().tolist() == [3, 3]
    assert not result.results[ID].str.contains(SEPARATOR).any()  # probes are never scored
    # a probe's actual is its original's actual on that day
    probe = result.probes.iloc[0]
    original = original_id(pd.Series([probe[ID]]))[0]
    truth = frame.data[(frame.data[ID] == original) & (frame.data[DS] == probe[DS])][Y].iloc[0]
    assert probe[Y] == truth


def test_probes_bring_the_young_series_bands_toward_their_nominal_coverage() -> None:
    """On the messy weekly file, the hold-out's short series fell far under the 80 % their p10-p90
    promises when they borrowed the established series' bands (the calibration windows held no short
    series); the probes' own short-path residuals widen them."""
    frame = messy_frame()
    factories = {name: model_factory(name) for name in ("lgbm", "savg", "snaive")}
    young: dict[int, float] = {}
    overall: dict[int, float] = {}
    full: dict[int, float] = {}
    for probes in (0, 200):
        backtest = run_backtest(frame, factories, BacktestSpec(horizon=13, windows=3, step=26, probes=probes))
        holdout = score_backtest(frame, backtest, ["lgbm", "savg"]).holdout
        assert holdout is not None
        inside = (holdout[Y] >= holdout["ensemble-p10"]) & (holdout[Y] <= holdout["ensemble-p90"])
        young[probes] = float(inside[holdout["path"] != "full"].mean())
        full[probes] = float(inside[holdout["path"] == "full"].mean())
        overall[probes] = float(inside.mean())
    assert full[0] == full[200]  # the established series' bands do not move
    assert young[200] > young[0] + 0.15
    assert overall[0] < 0.75 <= overall[200] <= 0.85
