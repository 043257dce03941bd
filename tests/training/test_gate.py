"""The gate follows MetricThreshold semantics and explains every verdict."""

from __future__ import annotations

import math

from salescast.training.gate import GateConfig, MetricThreshold, evaluate_gate


def test_a_candidate_that_beats_the_baseline_and_matches_the_champion_passes() -> None:
    verdict = evaluate_gate({"mase": 0.80}, baseline={"mase": 1.00}, champion={"mase": 0.79})

    assert verdict.passed
    assert [(c.against, c.passed) for c in verdict.checks] == [("baseline", True), ("champion", True)]


def test_a_candidate_worse_than_the_champion_beyond_the_tolerance_fails_with_reasons() -> None:
    verdict = evaluate_gate({"mase": 0.90}, baseline={"mase": 1.00}, champion={"mase": 0.80})

    assert not verdict.passed
    assert verdict.reasons == ["mase 0.9 fails an improvement of at least -2% over the champion (champion 0.8)"]


def test_the_margin_over_the_baseline_is_relative() -> None:
    close = evaluate_gate({"mase": 0.96}, baseline={"mase": 1.00}, champion=None)
    enough = evaluate_gate({"mase": 0.95}, baseline={"mase": 1.00}, champion=None)

    assert not close.passed and enough.passed


def test_absolute_bounds_changes_and_directions() -> None:
    config = GateConfig(
        vs_baseline=(MetricThreshold("r2", greater_is_better=True, min_absolute_change=0.1),),
        vs_champion=(),
        bounds=(MetricThreshold("coverage", greater_is_better=True, threshold=70.0),),
    )

    good = evaluate_gate({"r2": 0.6, "coverage": 75.0}, {"r2": 0.45}, None, config)
    bad = evaluate_gate({"r2": 0.5, "coverage": 65.0}, {"r2": 0.45}, None, config)

    assert good.passed
    assert not bad.passed and len(bad.reasons) == 2


def test_a_missing_or_nan_metric_fails() -> None:
    verdict = evaluate_gate({"mase": math.nan}, baseline={"mase": 1.0}, champion=None)

    assert not verdict.passed
    assert verdict.as_dict()["checks"][0]["required"] == "a finite value on both sides"
