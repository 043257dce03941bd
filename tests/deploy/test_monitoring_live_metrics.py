"""Every metric the alert rules and the Grafana dashboard read is one the app really exports: a live app on
127.0.0.1 answers a few requests (served, cached, refused, rate-limited, with its Redis down), then its
/api/v1/metrics is scraped and every name the rules and panels reference must be in it."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest

from salescast.data.ingest import ingest_file
from salescast.data.presets import resolve_spec
from salescast.data.synthetic import SyntheticConfig, generate_sales, write_sales
from salescast.monitoring.alerts import LogAlertSink
from salescast.monitoring.drift import check_all
from salescast.monitoring.live_accuracy import update_live_accuracy
from tests.conftest import free_port
from tests.deploy.monitoring_files import dashboard_queries, metric_names, recorded_names, rules
from tests.serving.conftest import LiveServer, live_server
from tests.serving.served_store import StoreTemplate, build_template, drop_template

# Metrics the rules or the dashboard may read before the app exports them (written against the names a
# change is about to ship), the only names allowed to be missing. Empty: live accuracy, drift and data
# freshness (issue 19) ship now and are checked like any other.
PLANNED_METRICS: frozenset[str] = frozenset()
# Series Prometheus writes itself for every target it scrapes.
PROMETHEUS_SERIES = frozenset({"up"})
# Declared by the app (a `# TYPE` line) but only counted when a rollout moves, which these requests do not
# do; tests/registry/test_deployments.py counts its events.
DECLARED_WITHOUT_SAMPLES = frozenset({"salescast_deployment_events_total"})

_TYPE = re.compile(r"# TYPE (\S+) (\S+)")
_SAMPLE = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)[{ ]")
_SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count", "")}


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreTemplate]:
    template = build_template("sqlite", tmp_path_factory.mktemp("live-metrics"))
    yield template
    drop_template(template)


def record_monitoring(server: LiveServer, folder: Path) -> None:
    """What the worker records after a month of actuals: the template's last 30 days, a month later, are
    ingested (live accuracy of the production version) and drift is checked."""
    sales = generate_sales(SyntheticConfig(stores=2, products=8, days=420, seed=5))
    month = sales[pd.to_datetime(sales["date"]) > pd.to_datetime(sales["date"]).max() - pd.Timedelta(days=30)]
    path = folder / "month.csv"
    write_sales(month.assign(date=(pd.to_datetime(month["date"]) + pd.Timedelta(days=30)).dt.date), path)
    assert ingest_file(server.engine, path, resolve_spec(None), server.settings).status == "succeeded"
    assert update_live_accuracy(server.engine, "demand") > 0
    assert check_all(server.engine, "demand", server.settings, LogAlertSink()).drift


def scrape_after_traffic(template: StoreTemplate, folder: Path) -> str:
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"  # nobody listens: the cache and limiter fall back
    overrides = {
        "cache_url": dead_redis,
        "rate_limit_url": dead_redis,
        "rate_limit_per_second": 0.5,
        "rate_limit_burst": 12,
        "metrics_database_seconds": 0.0,
    }
    with live_server(template, folder, **overrides) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        record_monitoring(server, folder)
        assert client.get("/api/v1/health").status_code == 200
        assert client.get("/api/v1/ready").status_code == 200
        assert client.get("/api/v1/forecast/top-products", headers={"Authorization": "Bearer nope"}).status_code == 401
        assert client.get("/api/v1/forecast/top-products").status_code == 401
        statuses = [
            client.get("/api/v1/forecast/top-products", params={"limit": 3}, headers=server.headers()).status_code
            for _ in range(20)
        ]
        assert statuses[0] == 200 and 429 in statuses, statuses
        deadline = time.monotonic() + 10
        while True:  # the prediction log writes in the background
            text = client.get("/api/v1/metrics").text
            written = re.search(r"^salescast_prediction_log_written_total (\S+)$", text, re.MULTILINE)
            if (written and float(written[1]) > 0) or time.monotonic() > deadline:
                return text
            time.sleep(0.1)


def exported_names(text: str) -> tuple[set[str], set[str]]:
    """(names with samples, names only declared by a `# TYPE` line, with the suffixes their type implies)."""
    sampled = {m[1] for line in text.splitlines() if not line.startswith("#") and (m := _SAMPLE.match(line))}
    declared: set[str] = set()
    for name, kind in _TYPE.findall(text):
        declared.update(name + suffix for suffix in _SUFFIXES.get(kind, ("",)))
    return sampled, declared - sampled


def referenced_names() -> dict[str, set[str]]:
    """Metric name -> where it is read (rule or panel), recorded series excluded."""
    recorded = recorded_names()
    where: dict[str, set[str]] = {}
    sources = [(rule.get("alert") or rule["record"], rule["expr"]) for rule in rules()]
    sources += [(f"panel {title}", expr) for title, expr in dashboard_queries()]
    for source, expr in sources:
        for name in metric_names(expr) - recorded:
            where.setdefault(name, set()).add(source)
    return where


def test_every_metric_the_rules_and_the_dashboard_read_is_exported(sqlite_store: StoreTemplate, tmp_path: Path) -> None:
    sampled, declared_only = exported_names(scrape_after_traffic(sqlite_store, tmp_path))
    referenced = referenced_names()

    unknown = {
        name: sorted(sources)
        for name, sources in referenced.items()
        if name not in sampled | declared_only | PLANNED_METRICS | PROMETHEUS_SERIES
    }
    assert unknown == {}, "referenced but not exported (a typo, or a metric that was renamed or removed)"
    assert {name for name in referenced if name in declared_only} <= DECLARED_WITHOUT_SAMPLES
    # The allow-list only holds what is still missing and still read.
    assert PLANNED_METRICS & (sampled | declared_only) == set(), "a planned metric ships now: drop it from the list"
    assert set(referenced) >= PLANNED_METRICS
    # Sanity of the scrape itself: the latency histogram shows as its three series.
    assert {
        "salescast_http_request_duration_seconds_bucket",
        "salescast_http_request_duration_seconds_sum",
        "salescast_http_request_duration_seconds_count",
    } <= sampled


def test_names_are_read_from_promql_as_prometheus_would() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (route, le) (rate(a_bucket{route!~".*/(metrics|x)"}[5m]))) > 1e3 '
        "and on (service) b_total > on (service) group_left () 2 * min by (service) (c:d:e offset 1h) "
        'or absent(up{job="x"}) unless sum without (instance) (f)'
    )

    assert metric_names(expr) == {"a_bucket", "b_total", "c:d:e", "up", "f"}
