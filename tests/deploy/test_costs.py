"""deploy/costs: the monthly estimate in docs/deploy.md is what deploy/costs/estimate.py computes from the prices
table and the tfvars sizings, it moves with a price as the sizing says it should, and each environment's
AWS Budgets limit covers its estimate."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.deploy.tooling import DEPLOY, ROOT, TERRAFORM_DIR

SCRIPT = DEPLOY / "costs" / "estimate.py"
PRICES = DEPLOY / "costs" / "prices.csv"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cost_estimate", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_docs_show_what_the_script_computes() -> None:
    doc = (ROOT / "docs" / "deploy.md").read_text()
    block = re.search(r"<!-- cost-estimate:begin -->\n(?P<table>.*?)<!-- cost-estimate:end -->", doc, re.S)
    assert block, "docs/deploy.md has no cost-estimate block"
    printed = subprocess.run([sys.executable, SCRIPT], capture_output=True, text=True, check=True, timeout=60).stdout
    assert block["table"] == printed
    assert re.search(r"\| \*\*total\*\* \| \*\*[\d,]+\.\d\d\*\* \| \*\*[\d,]+\.\d\d\*\* \|", printed)


def test_a_price_moves_the_total_as_the_sizing_says(tmp_path: Path) -> None:
    script = load_script()
    prices = script.read_prices(PRICES)
    before = script.totals(prices)
    dearer = {**prices, "rds_db.r6g.large_hour": prices["rds_db.r6g.large_hour"] + 0.1}
    after = script.totals(dearer)
    # prod: a Multi-AZ primary (two instances) and a read replica, 730 hours each; dev runs a t4g.
    assert after["prod"] - before["prod"] == pytest.approx(0.1 * 730 * 3, abs=0.01)
    assert after["dev"] == before["dev"]


def test_an_instance_class_without_a_price_is_one_clear_line(tmp_path: Path) -> None:
    script = load_script()
    prices = {k: v for k, v in script.read_prices(PRICES).items() if k != "elasticache_cache.r6g.large_hour"}
    with pytest.raises(SystemExit, match=re.escape("the prices table has no row 'elasticache_cache.r6g.large_hour'")):
        script.estimate("prod", prices)


def test_each_environments_budget_covers_its_estimate() -> None:
    totals = load_script().totals(load_script().read_prices(PRICES))
    for env, total in totals.items():
        tfvars = (TERRAFORM_DIR / "envs" / f"{env}.tfvars").read_text()
        budget = re.search(r"^monthly_budget_usd\s*=\s*(\d+)", tfvars, re.M)
        assert budget and total < float(budget[1]), f"{env}: estimate {total} over budget"
