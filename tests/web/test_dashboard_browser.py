"""The dashboard in a real browser (headless Chromium driven by Playwright) against a live server with
1,000 products: every page shows the API's own numbers, an admin promotes and rolls back behind a
confirmation (and the CLI's audit trail agrees), a read key sees no admin buttons, and no page logs a
console error or a failed request. Each page is photographed at phone (390 px) and desktop (1280 px)
width into test-artifacts/dashboard/, with its load time measured in the browser (load-times.json)."""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from salescast.web.bundle import build_bundle
from tests.conftest import free_port
from tests.web.dashboard_app import (
    PRODUCTS,
    ROLLBACK_REASON,
    ROOT,
    LiveDashboard,
    LiveServer,
    cli,
    empty_server,
    live_dashboard,
)

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
WIDTHS = {"phone": 390, "desktop": 1280}
TIMEOUT_MS = 20_000


@dataclass
class Tab:
    """A browser tab that remembers every console error and failed request it saw."""

    page: Page
    problems: list[str] = field(default_factory=list)

    def open(self, dashboard: LiveServer, hash_: str, name: str) -> float:
        """Load the dashboard afresh at `hash_` and wait until page `name` has rendered; returns the
        milliseconds from navigation start to rendered, as the browser measured them."""
        self.page.goto("about:blank")
        self.page.goto(f"{dashboard.url}/{hash_}")
        self.page.wait_for_selector(f'main[data-ready="true"][data-page="{name}"]', timeout=TIMEOUT_MS)
        timings: list[dict[str, Any]] = self.page.evaluate("window.salescastTimings")
        return float(timings[-1]["ready_ms"])

    def open_at(self, url: str, name: str) -> None:
        self.page.goto("about:blank")
        self.page.goto(url)
        self.page.wait_for_selector(f'main[data-ready="true"][data-page="{name}"]', timeout=TIMEOUT_MS)

    def text(self, selector: str) -> str:
        return self.page.locator(selector).first.inner_text().strip()

    def expect_clean(self, *expected: str) -> None:
        unexpected = [p for p in self.problems if not any(e in p for e in expected)]
        assert unexpected == [], unexpected
        self.problems.clear()


def shown_number(text: str) -> float:
    """The first number in a cell's text: `1,234.5 %` is 1234.5."""
    found = re.search(r"-?[\d,]*\.?\d+", text)
    assert found, f"no number in {text!r}"
    return float(found.group().replace(",", ""))


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDashboard]:
    with live_dashboard(tmp_path_factory.mktemp("dashboard")) as live:
        yield live


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
    yield chromium
    chromium.close()


def new_tab(browser: Browser, dashboard: LiveServer, key: str | None, width: int = 1280) -> tuple[BrowserContext, Tab]:
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    tab = Tab(page)
    page.on(
        "console",
        lambda message: (
            tab.problems.append(f"console {message.type}: {message.text}") if message.type == "error" else None
        ),
    )
    page.on("pageerror", lambda error: tab.problems.append(f"page error: {error}"))
    page.on(
        "requestfailed",
        lambda request: tab.problems.append(f"failed: {request.method} {request.url} {request.failure}"),
    )
    page.on(
        "response",
        lambda response: (
            tab.problems.append(f"HTTP {response.status} {response.url}") if response.status >= 400 else None
        ),
    )
    if key is not None:
        # The key as a user types it into the page: kept in this tab's sessionStorage only.
        page.goto(f"{dashboard.url}/")
        page.wait_for_selector('main[data-ready="true"]', timeout=TIMEOUT_MS)
        page.get_by_role("button", name="Enter an API key").first.click()
        page.fill("#key-input", dashboard.keys[key])
        page.get_by_role("button", name="Use this key").click()
        page.wait_for_selector('main[data-ready="true"][data-page="overview"]', timeout=TIMEOUT_MS)
    return context, tab


def page_urls(product: str, rejected_run: int) -> dict[str, str]:
    """Each page's deep link, in the order the tests visit them."""
    return {
        "overview": "#/?period=month&limit=20",
        "products": "#/products",
        "product": f"#/product/{product}",
        "whatif": f"#/whatif/{product}",
        "models": "#/models",
        "deployments": "#/deployments",
        "data": f"#/data?run={rejected_run}",
    }


def test_every_page_shows_the_apis_numbers_and_loads_quickly(browser: Browser, dashboard: LiveDashboard) -> None:
    with dashboard.api() as api:
        top = api.get("/forecast/top-products", params={"time_period": "month", "limit": 20}).json()
        product = top["products"][0]["product_id"]
        forecast = api.get(f"/forecast/products/{product}", params={"horizon": 28, "history_days": 56}).json()
        versions = {v["version"]: v for v in api.get("/models/demand/versions").json()}
        item = next(
            p for p in api.get("/products", params={"search": product}).json()["items"] if p["product_id"] == product
        )
        parents = {c["name"]: c["parent"] for c in api.get("/categories").json()}
        runs = api.get("/data/runs", params={"limit": 20}).json()
        rejects = api.get(f"/data/runs/{dashboard.rejected_run}/rejects").json()
        plan = api.get("/deployments/demand").json()
    pages = page_urls(product, dashboard.rejected_run)
    assert top["total"] == PRODUCTS

    context, tab = new_tab(browser, dashboard, "admin")
    # Per page: the first visit (the server's caches cold), then a visit at each width.
    load_ms: dict[str, dict[str, float]] = {}
    try:
        load_ms["overview"] = {"first_visit": tab.open(dashboard, pages["overview"], "overview")}
        assert tab.text('[data-testid="model-version"]') == f"demand v{top['model_version']}"
        assert shown_number(tab.text('[data-testid="total-products"]')) == PRODUCTS
        units = sum(p["units"]["p50"] for p in top["products"])
        assert shown_number(tab.text('[data-testid="total-units"]')) == pytest.approx(units, abs=0.051)
        rows = tab.page.locator('[data-testid="top-products"] tbody tr')
        assert rows.count() == 20
        first = top["products"][0]
        assert tab.text('[data-testid="top-products"] tbody tr:first-child [data-col="product"]') == product
        assert shown_number(
            tab.text('[data-testid="top-products"] tbody tr:first-child [data-col="p50"]')
        ) == pytest.approx(first["units"]["p50"], abs=0.051)

        load_ms["products"] = {"first_visit": tab.open(dashboard, pages["products"], "products")}
        assert "1,000 products" in tab.text('[data-testid="product-count"]')
        assert tab.page.locator('[data-testid="products"] tbody tr').count() == 25  # a page, not the catalogue
        tab.page.get_by_role("link", name="Next →").click()
        tab.page.wait_for_selector('main[data-ready="true"] [data-testid="product-count"]:has-text("page 2 of 40")')
        tab.page.fill("#search", "P0099")
        tab.page.get_by_role("button", name="Search").click()
        tab.page.wait_for_selector('[data-testid="product-count"]:has-text("10 products")', timeout=TIMEOUT_MS)
        shown = tab.page.locator('[data-testid="products"] tbody tr td:first-child').all_inner_texts()
        assert shown == [f"P0099{digit}" for digit in range(10)]

        load_ms["product"] = {"first_visit": tab.open(dashboard, pages["product"], "product")}
        day = forecast["forecast"][10]
        row = f'[data-testid="forecast-days"] tr[data-date="{day["date"]}"]'
        assert shown_number(tab.text(f'{row} [data-col="p50"]')) == pytest.approx(day["p50"], abs=0.0051)
        assert shown_number(tab.text(f'{row} [data-col="p90"]')) == pytest.approx(day["p90"], abs=0.0051)
        served = versions[forecast["model_version"]]
        scored = parents[item["category"]] or item["category"]  # the backtest scores top-level categories
        category_mase = served["metrics"]["card"]["categories"][scored]["ensemble"]["mase"]
        assert shown_number(tab.text('[data-testid="category-mase"]')) == pytest.approx(category_mase, abs=0.00051)
        assert tab.page.locator(".chart canvas").count() == 1

        load_ms["whatif"] = {"first_visit": tab.open(dashboard, pages["whatif"], "whatif")}
        tab.page.fill("#price_change_pct", "-20")
        tab.page.fill("#promo_days", "3")
        tab.page.get_by_role("button", name="Compute the scenario").click()
        tab.page.wait_for_selector(
            '.whatif-result[data-done="true"] [data-testid="scenario-total"]', timeout=TIMEOUT_MS
        )
        with dashboard.api() as api:
            start = api.get(f"/forecast/products/{product}", params={"horizon": 3, "history_days": 0}).json()
            promoted = [d["date"] for d in start["forecast"]]
            scenario = api.post(
                "/forecast/what-if", json={"product": product, "price_change_pct": -20, "promotion_days": promoted}
            ).json()
        assert shown_number(tab.text('[data-testid="scenario-total"]')) == pytest.approx(
            scenario["totals"]["scenario_p50"], abs=0.051
        )
        assert shown_number(tab.text('[data-testid="baseline-total"]')) == pytest.approx(
            scenario["totals"]["baseline_p50"], abs=0.051
        )
        assert scenario["scenario"]["promotion_discount_source"] in tab.text('[data-testid="scenario-discount"]')

        load_ms["models"] = {"first_visit": tab.open(dashboard, pages["models"], "models")}
        for number, version in versions.items():
            row = f'[data-testid="versions"] tr[data-version="{number}"]'
            mase = version["metrics"]["candidate"]["mase"]
            naive = version["metrics"]["baseline"]["mase"]
            assert shown_number(tab.text(f'{row} [data-col="mase"]')) == pytest.approx(mase, abs=0.00051)
            assert shown_number(tab.text(f'{row} [data-col="naive-mase"]')) == pytest.approx(naive, abs=0.00051)
        assert tab.text('[data-testid="alias-production"]') == "v1"

        load_ms["deployments"] = {"first_visit": tab.open(dashboard, pages["deployments"], "deployments")}
        assert tab.text('[data-testid="deploy-production"]') == f"v{plan['production_version']}"
        assert tab.text('[data-testid="deploy-candidate"]') == "none"
        history = tab.text('[data-testid="deploy-history"] tbody tr:first-child')
        assert ROLLBACK_REASON in history and "rolled back" in history

        load_ms["data"] = {"first_visit": tab.open(dashboard, pages["data"], "data")}
        assert tab.text('[data-testid="newest-sales-date"]') == runs["newest_sales_date"]
        for run in runs["runs"]:
            row = f'[data-testid="runs"] tr[data-run="{run["id"]}"]'
            for column, key in (("read", "rows_read"), ("accepted", "rows_accepted"), ("rejected", "rows_rejected")):
                assert shown_number(tab.text(f'{row} [data-col="{column}"]')) == run[key]
        shown = tab.page.locator('[data-testid="rejects"] tbody [data-col="line"]').all_inner_texts()
        assert [int(line) for line in shown] == [r["line"] for r in rejects["rows"]] == [5, 9]
        tab.expect_clean()

        # By keyboard: the first Tab reaches the skip link, which moves focus to the page, not the URL.
        tab.page.keyboard.press("Tab")
        assert tab.page.evaluate("document.activeElement.textContent") == "Skip to content"
        tab.page.keyboard.press("Enter")
        assert tab.page.evaluate("document.activeElement.id") == "main"
        assert tab.page.url.endswith(pages["data"])

        # Each page is a URL of its own: the links change it, the back button walks it back.
        tab.page.locator("#nav").get_by_role("link", name="Models").click()
        tab.page.wait_for_selector('main[data-ready="true"][data-page="models"]', timeout=TIMEOUT_MS)
        tab.page.go_back()
        tab.page.wait_for_selector(
            'main[data-ready="true"][data-page="data"] [data-testid="rejects"]', timeout=TIMEOUT_MS
        )
        tab.expect_clean()
    finally:
        context.close()

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for width_name, width in WIDTHS.items():
        context, tab = new_tab(browser, dashboard, "admin", width)
        try:
            for name, hash_ in pages.items():
                load_ms[name][width_name] = tab.open(dashboard, hash_, name)
                if name == "whatif":  # photographed with a scenario computed
                    tab.page.fill("#price_change_pct", "-20")
                    tab.page.fill("#promo_days", "3")
                    tab.page.get_by_role("button", name="Compute the scenario").click()
                    tab.page.wait_for_selector('.whatif-result[data-done="true"] .chart', timeout=TIMEOUT_MS)
                if width_name == "phone":
                    # Nothing but a wide table's own frame scrolls sideways at phone width.
                    overflow = tab.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                    assert overflow <= 0, f"{name} is {overflow}px wider than a phone"
                tab.page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)
                if (name, width_name) == ("overview", "desktop"):
                    # The first screen alone, small enough for the README (docs/images/dashboard-overview.png).
                    tab.page.screenshot(path=str(ARTIFACTS / "overview-1280-first-screen.png"))
            tab.expect_clean()
        finally:
            context.close()
    (ARTIFACTS / "load-times.json").write_text(
        json.dumps(
            {"products": PRODUCTS, "unit": "ms from navigation start to the page rendered", "pages": load_ms}, indent=2
        )
        + "\n"
    )
    slowest = max(ms for widths in load_ms.values() for ms in widths.values())
    assert slowest < 5000, load_ms


def models_history(dashboard: LiveDashboard) -> list[dict[str, Any]]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "salescast.cli",
            "models",
            "history",
            "demand",
            "--alias",
            "production",
            "--format",
            "json",
        ],
        env=dashboard.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    events: list[dict[str, Any]] = json.loads(done.stdout)
    return events


def test_an_admin_promotes_and_rolls_back_behind_a_confirmation(browser: Browser, dashboard: LiveDashboard) -> None:
    context, tab = new_tab(browser, dashboard, "admin")
    try:
        tab.open(dashboard, "#/models", "models")
        assert tab.text('[data-testid="alias-production"]') == "v1"

        tab.page.get_by_role("button", name="Promote v2").click()
        tab.page.get_by_role("button", name="Cancel").last.click()  # a cancelled confirmation moves nothing
        assert tab.text('[data-testid="alias-production"]') == "v1"

        tab.page.get_by_role("button", name="Promote v2").click()
        tab.page.fill("#confirm-reason", "browser test promotion")
        tab.page.get_by_role("button", name="Promote", exact=True).click()
        tab.page.wait_for_selector('[data-testid="alias-production"]:text-is("v2")', timeout=TIMEOUT_MS)
        assert "browser test promotion" in tab.text('[data-testid="alias-history"] tbody tr:first-child')
        latest = models_history(dashboard)[-1]
        assert (latest["from"], latest["to"], latest["reason"]) == (1, 2, "browser test promotion")

        # Escape closes the confirmation without acting, though the last one was confirmed.
        tab.page.get_by_role("button", name="Roll production back").click()
        tab.page.keyboard.press("Escape")
        tab.page.wait_for_timeout(300)
        assert tab.text('[data-testid="alias-production"]') == "v2" and models_history(dashboard)[-1]["to"] == 2

        # By keyboard: Enter on the button, the reason typed into the dialog, Enter confirms.
        tab.page.get_by_role("button", name="Roll production back").focus()
        tab.page.keyboard.press("Enter")
        tab.page.keyboard.type("keyboard rollback")
        tab.page.keyboard.press("Enter")
        tab.page.wait_for_selector('[data-testid="alias-production"]:text-is("v1")', timeout=TIMEOUT_MS)
        latest = models_history(dashboard)[-1]
        assert (latest["from"], latest["to"], latest["reason"]) == (2, 1, "keyboard rollback")
        tab.expect_clean()
    finally:
        context.close()


def test_a_read_key_sees_no_admin_buttons_and_a_forged_admin_call_is_refused(
    browser: Browser, dashboard: LiveDashboard
) -> None:
    context, tab = new_tab(browser, dashboard, "read")
    try:
        tab.open(dashboard, "#/models", "models")
        assert tab.page.locator('[data-testid^="promote-"]').count() == 0
        assert tab.page.locator('[data-testid="rollback"]').count() == 0
        status = tab.page.evaluate(
            """async ([url, key]) => (await fetch(url + '/api/v1/models/demand/aliases', {
                method: 'POST',
                headers: {'Authorization': 'Bearer ' + key, 'Content-Type': 'application/json'},
                body: JSON.stringify({alias: 'production', version: 2}),
            })).status""",
            [dashboard.url, dashboard.keys["read"]],
        )
        assert status == 403
        tab.expect_clean("403")
        assert models_history(dashboard)[-1]["to"] == 1

        # A what-if needs the predict scope: the page says so plainly.
        tab.open(dashboard, "#/whatif/P00001", "whatif")
        tab.page.get_by_role("button", name="Compute the scenario").click()
        tab.page.wait_for_selector('.whatif-result[data-done="true"] .notice.error', timeout=TIMEOUT_MS)
        assert "Not allowed with this key" in tab.text(".whatif-result")
        tab.expect_clean("403")
    finally:
        context.close()


def test_a_missing_or_rejected_key_an_unknown_product_or_page_are_plain_messages(
    browser: Browser, dashboard: LiveDashboard
) -> None:
    context, tab = new_tab(browser, dashboard, None)
    try:
        tab.page.goto(f"{dashboard.url}/#/models")
        tab.page.wait_for_selector('main[data-ready="true"]', timeout=TIMEOUT_MS)
        assert "An API key is needed" in tab.text("main")
        tab.expect_clean()

        tab.page.get_by_role("button", name="Enter an API key").first.click()
        tab.page.fill("#key-input", "sc_00000000_" + "x" * 43)
        tab.page.get_by_role("button", name="Use this key").click()
        tab.page.wait_for_selector('main[data-ready="true"][data-page="models"]', timeout=TIMEOUT_MS)
        assert "Key rejected" in tab.text("main") and "Traceback" not in tab.text("main")
        tab.expect_clean("401")

        tab.page.get_by_role("button", name="Enter another key").click()
        tab.page.fill("#key-input", dashboard.keys["read"])
        tab.page.get_by_role("button", name="Use this key").click()
        tab.page.wait_for_selector('main[data-ready="true"][data-page="models"] [data-testid="versions"]')
        tab.open(dashboard, "#/product/NO-SUCH-PRODUCT", "product")
        assert "Not found" in tab.text("main") and "unknown product" in tab.text("main")
        tab.expect_clean("401", "404")

        tab.page.goto(f"{dashboard.url}/#/nowhere")
        tab.page.wait_for_selector('main[data-ready="true"]', timeout=TIMEOUT_MS)
        assert "No such page" in tab.text("main")
    finally:
        context.close()


@contextmanager
def static_host(folder: Path, origin: str) -> Iterator[str]:
    """`folder` served as plain files at `origin` (as an S3 bucket would: no API, no headers of ours)."""
    port = int(origin.rsplit(":", 1)[1])
    handler = functools.partial(QuietFiles, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield origin
    finally:
        server.shutdown()
        server.server_close()


class QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_static_bundle_calls_the_api_across_origins_and_says_when_it_is_unreachable(
    browser: Browser, dashboard: LiveDashboard, tmp_path: Path
) -> None:
    build_bundle(dashboard.url, tmp_path / "site")
    context, tab = new_tab(browser, dashboard, None)
    try:
        with static_host(tmp_path / "site", dashboard.bundle_origin) as origin:
            tab.page.goto(f"{origin}/#/models")
            tab.page.wait_for_selector('main[data-ready="true"]', timeout=TIMEOUT_MS)
            tab.page.get_by_role("button", name="Enter an API key").first.click()
            tab.page.fill("#key-input", dashboard.keys["read"])
            tab.page.get_by_role("button", name="Use this key").click()
            tab.page.wait_for_selector('main[data-ready="true"] [data-testid="versions"]', timeout=TIMEOUT_MS)
            assert tab.text('[data-testid="alias-production"]') == "v1"
            tab.expect_clean()

            # The same bundle set to an API that is down: a plain message, no blank page.
            dead = f"http://127.0.0.1:{free_port()}"
            build_bundle(dead, tmp_path / "site")
            tab.open_at(f"{origin}/#/data", "data")
            assert "API unreachable" in tab.text("main") and dead in tab.text("main")
            tab.expect_clean("ERR_CONNECTION_REFUSED", "Failed to fetch")
    finally:
        context.close()


def test_the_deployments_page_shows_an_active_rollout_and_why_it_was_rolled_back(
    browser: Browser, dashboard: LiveDashboard
) -> None:
    cli(dashboard.env, "deploy", "start", "demand", "2", "--strategy", "canary", "--steps", "0.25,1.0", "--bake", "900")
    context, tab = new_tab(browser, dashboard, "read")
    try:
        tab.open(dashboard, "#/deployments", "deployments")
        with dashboard.api("read") as api:
            active = api.get("/deployments/demand").json()["active"]
        assert tab.text('[data-testid="deploy-candidate"]') == f"v{active['candidate_version']}" == "v2"
        assert tab.text('[data-testid="deploy-production"]') == "v1"
        assert tab.text('[data-testid="deploy-share"]') == "25 %"
        assert tab.text('[data-testid="deploy-strategy"]') == "canary"
        assert tab.text('[data-testid="deploy-step"]') == "1 of 2"
        assert re.fullmatch(r"1[45] min \d+ s", tab.text('[data-testid="deploy-bake"]'))
        assert "candidate" in tab.text('[data-testid="deploy-health"]')

        cli(dashboard.env, "deploy", "rollback", "demand", "--reason", "latency doubled in the browser test")
        tab.open(dashboard, "#/deployments", "deployments")
        assert tab.text('[data-testid="deploy-candidate"]') == "none"
        latest = tab.text('[data-testid="deploy-history"] tbody tr:first-child')
        assert "latency doubled in the browser test" in latest and "rolled back" in latest
        tab.expect_clean()
    finally:
        context.close()


# What a page must never show a person: a Python or JavaScript error's insides, or a value the page
# failed to compute.
RAW_ERRORS = re.compile(r"Traceback|Error:|\bundefined\b|\bNaN\b|\[object |Exception")


def shows_plainly(tab: Tab, name: str, title: str, text: str) -> None:
    """Page `name` rendered (not blank, not stuck loading) with the notice `title` saying `text`."""
    assert tab.page.locator(f'main[data-ready="true"][data-page="{name}"]').count() == 1
    shown = tab.text("main")
    assert tab.page.locator("main h1").count() == 1, shown
    assert not RAW_ERRORS.search(shown), shown
    notices = tab.page.locator("main .notice")
    assert notices.count() == 1, shown
    assert notices.locator("h2").inner_text() == title
    assert notices.locator("p").first.inner_text() == text


def expect_only_the_missing_model(tab: Tab) -> None:
    """The overview asks for the top products, which the API answers 503 (no production version):
    that one refusal, and the console's note of it, are expected; anything else is not."""
    refused = [p for p in tab.problems if p.startswith("HTTP")]
    assert len(refused) == 1 and refused[0].startswith("HTTP 503 "), tab.problems
    assert "/api/v1/forecast/top-products?" in refused[0], refused
    tab.expect_clean(refused[0], "status of 503")


EMPTY_CATALOGUE = "The catalogue is empty: ingest sales first (salescast ingest FILE)."
NO_MODELS = ("No models yet", "Train one: salescast pipeline run.")


def test_an_empty_store_and_one_without_a_model_show_plain_messages_on_every_page(
    browser: Browser, tmp_path: Path
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with empty_server(tmp_path) as server:
        context, tab = new_tab(browser, server, "admin")
        try:
            # Just `salescast init`: no sales, no model.
            shows_plainly(
                tab,
                "overview",
                "The catalogue is empty",
                "Nothing has been ingested yet: load sales (salescast ingest FILE), then train a model "
                "(salescast pipeline run).",
            )
            tab.page.screenshot(path=str(ARTIFACTS / "empty-overview-1280.png"), full_page=True)
            expect_only_the_missing_model(tab)
            empty = {
                "products": ("#/products", "No products", EMPTY_CATALOGUE),
                "whatif": ("#/whatif", None, None),
                "models": ("#/models", *NO_MODELS),
                "deployments": ("#/deployments", *NO_MODELS),
                "data": ("#/data", "The store is empty", "Nothing has been ingested yet: salescast ingest FILE."),
            }
            for name, (hash_, title, text) in empty.items():
                tab.open(server, hash_, name)
                if title is None or text is None:  # the what-if page asks for a product: a form, no notice
                    assert tab.page.locator("main form #product").count() == 1
                    assert not RAW_ERRORS.search(tab.text("main"))
                else:
                    shows_plainly(tab, name, title, text)
                tab.page.screenshot(path=str(ARTIFACTS / f"empty-{name}-1280.png"), full_page=True)
            tab.expect_clean()

            # Sales ingested, still no model: the overview says so, the data page shows the run.
            cli(
                server.env,
                "generate",
                "--stores",
                "1",
                "--products",
                "5",
                "--days",
                "60",
                "--out",
                "sales.csv",
                cwd=tmp_path,
            )
            cli(server.env, "ingest", "sales.csv", cwd=tmp_path)
            with server.api() as api:
                runs = api.get("/data/runs", params={"limit": 20}).json()
            rows = len((tmp_path / "sales.csv").read_text().splitlines()) - 1  # the header is no row
            assert [(run["rows_read"], run["rows_rejected"]) for run in runs["runs"]] == [(rows, 0)]

            tab.open(server, "#/", "overview")
            shows_plainly(
                tab,
                "overview",
                "No production model yet",
                "No model is in production yet: run `salescast pipeline run` first.",
            )
            tab.page.screenshot(path=str(ARTIFACTS / "no-model-overview-1280.png"), full_page=True)
            expect_only_the_missing_model(tab)

            tab.open(server, "#/data", "data")
            assert not RAW_ERRORS.search(tab.text("main"))
            assert tab.text('[data-testid="newest-sales-date"]') == runs["newest_sales_date"]
            assert shown_number(tab.text('[data-testid="data-products"]')) == 5
            run = runs["runs"][0]
            row = f'[data-testid="runs"] tr[data-run="{run["id"]}"]'
            assert "succeeded" in tab.text(row)
            for column, key in (("read", "rows_read"), ("accepted", "rows_accepted"), ("rejected", "rows_rejected")):
                assert shown_number(tab.text(f'{row} [data-col="{column}"]')) == run[key]
            assert shown_number(tab.text(f'{row} [data-col="accepted"]')) == rows
            tab.page.screenshot(path=str(ARTIFACTS / "no-model-data-1280.png"), full_page=True)

            tab.open(server, "#/products", "products")
            assert tab.text('[data-testid="product-count"]') == "5 products, page 1 of 1"
            tab.open(server, "#/models", "models")
            shows_plainly(tab, "models", *NO_MODELS)
            tab.expect_clean()
        finally:
            context.close()
