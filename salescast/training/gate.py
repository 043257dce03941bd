"""The promotion gate: the seed's "pass threshold?" and "comparison vs previous model version".

Each check is a `MetricThreshold` with the semantics of MLflow's: a direction (`greater_is_better`),
an optional absolute bound (`threshold`), and optional minimum absolute and relative changes against
a reference model (the SeasonalNaive baseline or the production champion). A negative minimum change
is a tolerance: the candidate may be worse than the reference by at most that much.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class MetricThreshold:
    metric: str
    greater_is_better: bool = False
    threshold: float | None = None
    min_absolute_change: float | None = None
    min_relative_change: float | None = None


@dataclass(frozen=True)
class Check:
    metric: str
    against: str  # "bound" | "baseline" | "champion"
    value: float
    reference: float | None
    required: str  # the rule in words, e.g. "<= 0.95 x baseline"
    passed: bool


@dataclass
class GateVerdict:
    passed: bool
    checks: list[Check] = field(default_factory=list)

    @property
    def reasons(self) -> list[str]:
        """One line per failed check."""
        return [
            f"{c.metric} {c.value:.4g} fails {c.required}"
            + ("" if c.reference is None else f" ({c.against} {c.reference:.4g})")
            for c in self.checks
            if not c.passed
        ]

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "checks": [asdict(c) for c in self.checks]}


@dataclass(frozen=True)
class GateConfig:
    """Defaults: beat SeasonalNaive's MASE by 5 %, and be at most 2 % worse than the champion's MASE."""

    vs_baseline: tuple[MetricThreshold, ...] = (MetricThreshold("mase", min_relative_change=0.05),)
    vs_champion: tuple[MetricThreshold, ...] = (MetricThreshold("mase", min_relative_change=-0.02),)
    bounds: tuple[MetricThreshold, ...] = ()


def _compare(rule: MetricThreshold, value: float, reference: float, against: str) -> list[Check]:
    sign = 1.0 if rule.greater_is_better else -1.0
    improvement = sign * (value - reference)  # > 0: the candidate is better
    checks = []
    if rule.min_absolute_change is not None:
        required = f"an improvement of at least {rule.min_absolute_change:g} over the {against}"
        checks.append(Check(rule.metric, against, value, reference, required, improvement >= rule.min_absolute_change))
    if rule.min_relative_change is not None:
        needed = rule.min_relative_change * abs(reference)
        required = f"an improvement of at least {rule.min_relative_change:.0%} over the {against}"
        checks.append(Check(rule.metric, against, value, reference, required, improvement >= needed - 1e-12))
    return checks


def evaluate_gate(
    candidate: dict[str, float],
    baseline: dict[str, float],
    champion: dict[str, float] | None,
    config: GateConfig = GateConfig(),
) -> GateVerdict:
    """Every configured check of the candidate's metrics; a metric that is missing or not finite fails."""
    checks: list[Check] = []
    for rule in config.bounds:
        value = candidate.get(rule.metric, math.nan)
        if rule.threshold is None:
            continue
        ok = value >= rule.threshold if rule.greater_is_better else value <= rule.threshold
        op = ">=" if rule.greater_is_better else "<="
        checks.append(
            Check(rule.metric, "bound", value, None, f"{op} {rule.threshold:g}", bool(ok and math.isfinite(value)))
        )
    for rules, reference, against in (
        (config.vs_baseline, baseline, "baseline"),
        (config.vs_champion, champion, "champion"),
    ):
        if reference is None:
            continue
        for rule in rules:
            value = candidate.get(rule.metric, math.nan)
            ref = reference.get(rule.metric, math.nan)
            if not (math.isfinite(value) and math.isfinite(ref)):
                checks.append(Check(rule.metric, against, value, ref, "a finite value on both sides", False))
                continue
            checks.extend(_compare(rule, value, ref, against))
            if rule.threshold is not None:
                ok = value >= rule.threshold if rule.greater_is_better else value <= rule.threshold
                checks.append(Check(rule.metric, "bound", value, None, f"bound {rule.threshold:g}", ok))
    return GateVerdict(all(c.passed for c in checks), checks)
