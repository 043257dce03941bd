"""Young-series probes: backtest residuals for the short and cold paths when the data has few young series.

The bands of a short or cold series are pooled from the residuals of that path (models/base.py). In a
backtest's calibration windows, a year before the hold-out, the series that are young at the hold-out
did not exist yet or were colder still, so those windows hold few short-path rows or none: the hold-out's
young series then got the established series' narrower bands and were under-covered (on a generated
messy weekly file, 55 % of short-path and 42 % of cold-path actuals fell inside p10-p90).

A probe is an established series cut to its last few periods, as if it had started recently: a `short`
copy keeps between `min_history` periods and a season, a `cold` copy fewer than `min_history`. Each
window forecasts the copies along their paths exactly as it forecasts a real young series (the copies
join a sample of the established series they came from, which carries the global models' training data
and the cold start's category profiles), and their errors against the original series' actuals become
residuals of that path. They calibrate intervals only: the metrics never see them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from salescast.features.frame import DS, ID, SeriesFrame
from salescast.models.base import seasonal_period
from salescast.models.paths import COLD, FULL, SHORT

SEPARATOR = "\x1f"  # unit separator: cannot occur in an ingested id (control characters are rejected)
DEFAULT_PROBES = 200  # established series sampled per window; each gives one short and one cold copy


def probe_id(unique_id: str, path: str) -> str:
    return f"{unique_id}{SEPARATOR}{path}"


def original_id(ids: pd.Series) -> pd.Series:
    """The established series each probe id was cut from."""
    return ids.str.rsplit(SEPARATOR, n=1).str[0]


def probe_history(
    history: SeriesFrame, paths: pd.Series, min_history: int, count: int, seed: int
) -> SeriesFrame | None:
    """Up to `count` established series of `history` (path `full`), each with a short and a cold copy cut
    to its last periods; None when there is no established series or no room for a path."""
    season = seasonal_period(history.freq)
    full = paths.index[paths.to_numpy() == FULL].to_numpy()
    if count < 1 or len(full) == 0:
        return None
    rng = np.random.default_rng(seed)
    sampled = np.sort(rng.choice(full, size=min(count, len(full)), replace=False))
    base = history.subset(sampled)
    lengths: dict[str, tuple[int, int]] = {}
    if season >= min_history:
        lengths[SHORT] = (min_history, season)
    if min_history > 1:
        lengths[COLD] = (1, min_history - 1)
    if not lengths:
        return None
    data_parts = [base.data]
    static_parts = [base.static]
    from_end = base.data.groupby(ID, sort=False).cumcount(ascending=False)  # 0 on a series' last period
    for path, (low, high) in lengths.items():
        keep = pd.Series(rng.integers(low, high + 1, size=len(sampled)), index=sampled)
        cut = base.data[from_end < base.data[ID].map(keep)]
        data_parts.append(cut.assign(**{ID: cut[ID].astype(str) + SEPARATOR + path}))
        if not base.static.empty:
            static_parts.append(base.static.assign(**{ID: base.static[ID].astype(str) + SEPARATOR + path}))
    data = pd.concat(data_parts, ignore_index=True).sort_values([ID, DS], kind="stable").reset_index(drop=True)
    return SeriesFrame(data, history.freq, pd.concat(static_parts, ignore_index=True))


def copies_of(probes: SeriesFrame) -> pd.DataFrame:
    """unique_id (a short or cold copy) and the `original` series it was cut from, one row per copy."""
    ids = pd.Series(probes.ids)
    copies = ids[is_probe(ids)]
    return pd.DataFrame({ID: copies.to_numpy(), "original": original_id(copies).to_numpy()})


def probe_plan(plan: pd.DataFrame, probes: SeriesFrame, copies: pd.DataFrame) -> pd.DataFrame:
    """The future plan rows (prices, promotions) of every series of `probes`: the originals' own, and each
    copy's taken from its original (`copies`, as `copies_of` gives them)."""
    by_original = copies.rename(columns={ID: "copy", "original": ID})
    rows = plan.merge(by_original, on=ID, how="inner").drop(columns=[ID]).rename(columns={"copy": ID})
    originals = plan[plan[ID].isin(set(probes.ids))]
    return pd.concat([originals, rows[plan.columns]], ignore_index=True)


def is_probe(ids: pd.Series) -> pd.Series:
    return ids.astype(str).str.contains(SEPARATOR, regex=False)
