"""A messy weekly retail assortment, as users bring it: series of every length down to one week, late
starts, gaps, zero weeks and returns that make a week's net sales negative."""

from __future__ import annotations

import numpy as np
import pandas as pd

WEEKS = 160


def messy_weekly_sales(seed: int = 3, stores: int = 3, departments: int = 12) -> pd.DataFrame:
    """Long rows (date, store, product, category, units): one product per store and department.

    Lengths: a fifth of the series start in the last year (shorter than a season), a few in the last
    weeks (cold starts), two have a single week; a tenth have a gap of several weeks with no rows; a
    few weeks are net negative (returns)."""
    rng = np.random.default_rng(seed)
    end = pd.Timestamp("2026-11-29")  # a Sunday
    dates = pd.date_range(end=end, periods=WEEKS, freq="W-SUN")
    week = np.arange(WEEKS)
    rows = []
    for store in range(stores):
        for dept in range(departments):
            number = store * departments + dept
            level = rng.gamma(2.0, 40.0)
            seasonal = 1 + 0.35 * np.sin(2 * np.pi * (week + dept) / 52) + 0.5 * (week % 52 >= 47)
            trend = 1 + rng.normal(0, 0.002) * week
            units = rng.poisson(np.maximum(level * seasonal * trend, 0.1)).astype(float)
            start = 0
            kind = number % 10
            if kind in (1, 2):
                start = WEEKS - int(rng.integers(14, 52))  # short: under a season
            elif kind == 3:
                start = WEEKS - int(rng.integers(2, 10))  # cold: a few weeks
            if number in (5, 17):
                start = WEEKS - 1  # a single week
            keep = week >= start
            if kind == 4:
                gap = int(rng.integers(40, 100))
                keep &= ~((week >= gap) & (week < gap + 6))  # no rows at all for six weeks
            if kind == 6:
                returns = rng.choice(week[week >= start], size=2, replace=False)
                units[returns] = -rng.integers(1, 15, size=2)  # returns exceed sales
            rows.append(
                pd.DataFrame(
                    {
                        "date": dates[keep],
                        "store": f"S{store + 1}",
                        "product": f"D{dept + 1:02d}",
                        "category": f"C{dept % 3 + 1}",
                        "units": units[keep],
                    }
                )
            )
    return pd.concat(rows, ignore_index=True)
