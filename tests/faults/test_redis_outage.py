"""Redis killed by pid under bounded load: no 5xx, the cache is bypassed and the rate limiter falls back to
its in-process buckets; both use Redis again once it is back, without a restart of the app."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.faults.conftest import TrainedStore, app_settings, running_app
from tests.serving.redis_servers import ThrowawayRedis

TOP = "/api/v1/forecast/top-products"
LIMITS = (1, 2, 3, 4)  # four cacheable answers the load cycles through
BREAKER_SECONDS = 5.0  # how long the cache and the limiter leave Redis alone after a failure (their default)

pytestmark = pytest.mark.faults


class Load:
    """Threads that each send cached reads with a key of their own, paced (bounded), until stopped."""

    def __init__(self, url: str, keys: list[str], per_second: float) -> None:
        self.url, self.keys, self.pause = url, keys, 1.0 / per_second
        self.phase = "before"
        self.seen: Counter[tuple[str, int, str]] = Counter()  # (phase, status, X-Cache)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(key,), daemon=True) for key in keys]

    def _run(self, key: str) -> None:
        with httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {key}"}, timeout=10) as client:
            turn = 0
            while not self._stop.is_set():
                phase = self.phase
                response = client.get(TOP, params={"limit": LIMITS[turn % len(LIMITS)]})
                with self._lock:
                    self.seen[(phase, response.status_code, response.headers.get("X-Cache", "-"))] += 1
                turn += 1
                time.sleep(self.pause)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def count(self, phase: str, status: int | None = None, cache: str | None = None) -> int:
        with self._lock:
            return sum(
                n
                for (p, s, c), n in self.seen.items()
                if p == phase and (status is None or s == status) and (cache is None or c == cache)
            )


def burst(url: str, key: str, requests: int) -> tuple[Counter[int], float]:
    """`requests` reads back to back with one key: the statuses and the seconds they took."""
    started = time.monotonic()
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=10) as client:
        statuses = Counter(client.get(TOP, params={"limit": 1}).status_code for _ in range(requests))
    return statuses, time.monotonic() - started


def test_redis_killed_under_load_costs_no_5xx_and_both_uses_recover_without_a_restart(
    trained_store: TrainedStore, store_copy: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    url, keys = store_copy
    redis_server = ThrowawayRedis()
    redis_server.start()
    rate, burst_size = 5.0, 20  # the probe key outruns 5 a second even on a crowded machine
    settings = app_settings(
        trained_store,
        url,
        tmp_path / "home",
        redis_url=redis_server.url,
        cache_url="",
        rate_limit_url="",
        cache_near_seconds=0.0,  # every lookup goes to Redis: the outage shows in X-Cache
        rate_limit_per_second=rate,
        rate_limit_burst=burst_size,
        rate_limit_lease=0,
    )
    try:
        with running_app(settings, keys) as app, Load(app.url, [keys["read"], keys["admin"]], per_second=4) as load:
            time.sleep(1.5)
            with redis_server.client() as client:
                cached_before = len(list(client.scan_iter(match="salescast:cache:*")))

            redis_server.stop()  # SIGKILL by pid
            load.phase = "down"
            time.sleep(1.0)
            down_burst, down_seconds = burst(app.url, keys["predict"], 3 * burst_size)
            time.sleep(1.0)

            redis_server.start()
            load.phase = "back"
            deadline = time.monotonic() + BREAKER_SECONDS + 10
            while load.count("back", 200, "hit") < 8 and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(BREAKER_SECONDS)  # the limiter's breaker too has let Redis back in
            back_burst, _ = burst(app.url, keys["predict"], 5)
            with redis_server.client() as client:
                cached_after = len(list(client.scan_iter(match="salescast:cache:*")))
                buckets = len(list(client.scan_iter(match="salescast:rl:*")))
    finally:
        redis_server.stop()

    statuses = {status for (_, status, _) in load.seen}
    assert not [s for s in statuses if s >= 500], load.seen
    assert all(load.count(phase) > 5 for phase in ("before", "down", "back")), load.seen
    # Before: answered from Redis. Down: every answer computed (the cache bypassed), none failed.
    assert cached_before == len(LIMITS) and load.count("before", 200, "hit") > 0
    assert load.count("down", 200, "hit") == 0 and load.count("down", 200, "miss") == load.count("down")
    # The fallback limiter still limits: one key's burst beyond its bucket is refused, not let through.
    assert set(down_burst) <= {200, 429} and down_burst[429] > 0
    assert down_burst[200] <= burst_size + rate * down_seconds + 1
    # Back: Redis holds the answers again (a fresh server: filled anew) and the buckets.
    assert load.count("back", 200, "hit") >= 8 and cached_after == len(LIMITS)
    assert buckets >= 1 and set(back_burst) <= {200, 429}
