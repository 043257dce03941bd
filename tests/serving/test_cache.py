"""The response cache: hits, misses and expiry on both backends, single-flight, and a Redis that goes down."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from salescast.config import Settings
from salescast.errors import ConfigurationError
from salescast.serving.cache import (
    CacheBackend,
    MemoryCacheBackend,
    NoCacheBackend,
    RedisCacheBackend,
    ResponseCache,
    cache_key,
    make_cache,
)
from tests.serving.clocks import FakeClock
from tests.serving.redis_servers import SHARED_REDIS_URL, delete_prefix, throwaway_redis, unique_prefix

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[CacheBackend]:
    """Each backend: the in-process one, and the shared Redis under a prefix of this test alone."""
    if request.param == "memory":
        memory = MemoryCacheBackend(max_entries=100)
        yield memory
        await memory.close()
    else:
        prefix = unique_prefix()
        shared = RedisCacheBackend(SHARED_REDIS_URL, key_prefix=prefix)
        yield shared
        await shared.close()
        delete_prefix(SHARED_REDIS_URL, prefix)


def counted(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Computation:
    """A compute function that counts its calls and answers `body`, optionally only once released."""

    def __init__(self, body: bytes = b'{"p50": 12.5}') -> None:
        self.body = body
        self.calls = 0
        self.started = asyncio.Event()
        self.release: asyncio.Event | None = None
        self.error: Exception | None = None

    async def __call__(self) -> bytes:
        self.calls += 1
        self.started.set()
        if self.release is not None:
            await self.release.wait()
        if self.error is not None:
            raise self.error
        return self.body


def gated(computation: Computation) -> Computation:
    computation.release = asyncio.Event()
    return computation


# Hits, misses, expiry


async def test_a_miss_computes_and_stores_then_the_same_key_hits(backend: CacheBackend) -> None:
    cache = ResponseCache(backend, default_ttl_seconds=60)
    compute = Computation()

    first = await cache.get_or_compute("forecast:demand:v1", compute)
    second = await cache.get_or_compute("forecast:demand:v1", compute)

    assert first == (b'{"p50": 12.5}', False)
    assert second == (b'{"p50": 12.5}', True)
    assert compute.calls == 1
    assert await backend.get("forecast:demand:v1") == b'{"p50": 12.5}'


async def test_lookups_and_computations_are_counted(backend: CacheBackend) -> None:
    cache = ResponseCache(backend, default_ttl_seconds=60)
    hits, misses = (counted("salescast_cache_lookups_total", backend=backend.name, result=r) for r in ("hit", "miss"))
    computes = counted("salescast_cache_computes_total")

    await cache.get_or_compute("k", Computation())
    await cache.get_or_compute("k", Computation())
    await cache.get_or_compute("k", Computation())

    assert counted("salescast_cache_lookups_total", backend=backend.name, result="miss") == misses + 1
    assert counted("salescast_cache_lookups_total", backend=backend.name, result="hit") == hits + 2
    assert counted("salescast_cache_computes_total") == computes + 1


async def test_an_entry_expires_after_its_ttl(backend: CacheBackend) -> None:
    cache = ResponseCache(backend, default_ttl_seconds=60)
    compute = Computation()

    await cache.get_or_compute("short", compute, ttl_seconds=0.3)
    assert (await cache.get_or_compute("short", compute))[1] is True
    await asyncio.sleep(0.5)
    value, hit = await cache.get_or_compute("short", compute)

    assert (value, hit) == (compute.body, False)
    assert compute.calls == 2


async def test_the_default_ttl_applies_when_none_is_given(backend: CacheBackend) -> None:
    cache = ResponseCache(backend, default_ttl_seconds=0.3)

    await cache.get_or_compute("k", Computation())
    await asyncio.sleep(0.5)

    assert await backend.get("k") is None


async def test_a_new_model_version_is_a_different_key_and_misses(backend: CacheBackend) -> None:
    cache = ResponseCache(backend, default_ttl_seconds=60)
    params = {"category": "Electronics", "limit": 10}
    await cache.get_or_compute(cache_key("forecast:top-products", params, "demand", 3), Computation(b"v3"))

    value, hit = await cache.get_or_compute(cache_key("forecast:top-products", params, "demand", 4), Computation(b"v4"))

    assert (value, hit) == (b"v4", False)


async def test_delete_prefix_removes_only_the_matching_keys(backend: CacheBackend) -> None:
    await backend.set("forecast:a:v1", b"1", 60)
    await backend.set("forecast:b:v1", b"2", 60)
    await backend.set("summary:v1", b"3", 60)

    assert await backend.delete_prefix("forecast:") == 2
    assert await backend.get("forecast:a:v1") is None
    assert await backend.get("summary:v1") == b"3"


async def test_the_memory_backend_evicts_the_least_recently_used_entry() -> None:
    memory = MemoryCacheBackend(max_entries=2)
    await memory.set("a", b"1", 60)
    await memory.set("b", b"2", 60)
    await memory.get("a")  # a is now more recent than b

    await memory.set("c", b"3", 60)

    assert len(memory) == 2
    assert await memory.get("b") is None
    assert await memory.get("a") == b"1"
    assert await memory.get("c") == b"3"


async def test_the_memory_backend_expires_each_entry_on_its_own_clock() -> None:
    clock = FakeClock()
    memory = MemoryCacheBackend(max_entries=10, clock=clock)
    await memory.set("short", b"1", 10)
    await memory.set("long", b"2", 100)

    clock.advance(10)

    assert await memory.get("short") is None
    assert await memory.get("long") == b"2"
    assert len(memory) == 1


def test_the_memory_backend_needs_room_for_one_entry() -> None:
    with pytest.raises(ConfigurationError, match="cache_max_entries must be at least 1"):
        MemoryCacheBackend(max_entries=0)


async def test_a_ttl_must_be_positive() -> None:
    cache = ResponseCache(MemoryCacheBackend(10), default_ttl_seconds=60)
    with pytest.raises(ConfigurationError, match="TTL must be > 0"):
        await cache.get_or_compute("k", Computation(), ttl_seconds=0)


# Single-flight


async def test_concurrent_misses_for_one_key_compute_once(backend: CacheBackend) -> None:
    cache = ResponseCache(backend, default_ttl_seconds=60)
    compute = gated(Computation(b'{"rows": []}'))
    computes = counted("salescast_cache_computes_total")

    callers = [asyncio.create_task(cache.get_or_compute("hot", compute)) for _ in range(50)]
    await compute.started.wait()
    assert compute.release is not None
    compute.release.set()
    results = await asyncio.gather(*callers)

    assert compute.calls == 1
    assert counted("salescast_cache_computes_total") == computes + 1
    assert results == [(b'{"rows": []}', False)] * 50
    assert (await cache.get_or_compute("hot", compute))[1] is True


async def test_a_failed_computation_raises_in_every_waiter_and_is_not_cached(backend: CacheBackend) -> None:
    cache = ResponseCache(backend, default_ttl_seconds=60)
    failing = gated(Computation())
    failing.error = RuntimeError("model artifact unreadable")

    callers = [asyncio.create_task(cache.get_or_compute("k", failing)) for _ in range(10)]
    await failing.started.wait()
    assert failing.release is not None
    failing.release.set()
    outcomes = await asyncio.gather(*callers, return_exceptions=True)

    assert failing.calls == 1
    assert all(isinstance(o, RuntimeError) and str(o) == "model artifact unreadable" for o in outcomes)
    assert await backend.get("k") is None
    retry = Computation(b"fine")
    assert await cache.get_or_compute("k", retry) == (b"fine", False)
    assert retry.calls == 1


async def test_a_caller_that_goes_away_does_not_cancel_the_computation_for_the_others() -> None:
    cache = ResponseCache(MemoryCacheBackend(10), default_ttl_seconds=60)
    compute = gated(Computation(b"body"))
    leaving = asyncio.create_task(cache.get_or_compute("k", compute))
    staying = asyncio.create_task(cache.get_or_compute("k", compute))
    await compute.started.wait()

    leaving.cancel()
    assert compute.release is not None
    compute.release.set()

    assert await staying == (b"body", False)
    assert leaving.cancelled()
    assert compute.calls == 1


# Redis going down and coming back


async def test_a_down_redis_serves_uncached_skips_redis_for_a_while_then_recovers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    with throwaway_redis() as server:
        cache = ResponseCache(RedisCacheBackend(server.url), default_ttl_seconds=60, retry_after_seconds=5, clock=clock)
        await cache.get_or_compute("before", Computation(b"cached"))
        assert await cache.get_or_compute("before", Computation()) == (b"cached", True)
        get_errors = counted("salescast_cache_errors_total", backend="redis", operation="get")

        server.stop()
        with caplog.at_level(logging.WARNING, logger="salescast.serving.breaker"):
            down = await cache.get_or_compute("during", Computation(b"computed"))
            assert down == (b"computed", False)
            assert counted("salescast_cache_errors_total", backend="redis", operation="get") == get_errors + 1
            assert cache.breaker.is_open

            # Within the window Redis is not even asked: no new error, yet the request is served.
            assert await cache.get_or_compute("during", Computation(b"again")) == (b"again", False)
            assert counted("salescast_cache_errors_total", backend="redis", operation="get") == get_errors + 1
            assert not cache.breaker.allows()

            # After the window one probe tries Redis, which is still down; it fails quietly (one warning).
            clock.advance(5)
            assert await cache.get_or_compute("during", Computation(b"third")) == (b"third", False)
            assert counted("salescast_cache_errors_total", backend="redis", operation="get") == get_errors + 2
        warnings = [r.getMessage() for r in caplog.records if r.getMessage().startswith("cache.unavailable")]
        assert len(warnings) == 1
        assert "backend=redis" in warnings[0]
        assert "operation=get" in warnings[0]

        server.start()  # same port, empty (no persistence)
        assert cache.breaker.is_open
        clock.advance(5)
        assert await cache.get_or_compute("after", Computation(b"fresh")) == (b"fresh", False)
        assert not cache.breaker.is_open
        assert await cache.get_or_compute("after", Computation()) == (b"fresh", True)
        await cache.close()


# Keys


def test_equal_parameters_in_another_order_give_the_same_key() -> None:
    one = cache_key("forecast:top-products", {"category": "Electronics", "limit": 10, "period": "month"}, "demand", 3)
    other = cache_key("forecast:top-products", {"period": "month", "limit": 10, "category": "Electronics"}, "demand", 3)

    assert one == other == "forecast:top-products:category=Electronics:limit=10:period=month:demand:v3"


def test_the_version_is_the_last_part_so_a_new_version_gives_a_new_key() -> None:
    v3 = cache_key("forecast:product", {"product_id": "P1"}, "demand", 3)
    v4 = cache_key("forecast:product", {"product_id": "P1"}, "demand", 4)

    assert v3 != v4
    assert v4.endswith(":demand:v4")


def test_none_parameters_are_dropped_and_values_keep_their_case() -> None:
    assert cache_key("summary", {"category": None, "store": "North"}, "demand", 1) == "summary:store=North:demand:v1"
    assert cache_key("summary", {"category": "electronics"}, "demand", 1) != cache_key(
        "summary", {"category": "Electronics"}, "demand", 1
    )


def test_colons_in_values_cannot_forge_another_key() -> None:
    forged = cache_key("forecast", {"category": "a:limit=5"}, "demand", 1)
    honest = cache_key("forecast", {"category": "a", "limit": 5}, "demand", 1)

    assert forged != honest
    assert forged == "forecast:category=a%3Alimit=5:demand:v1"


def test_a_request_without_parameters_still_names_model_and_version() -> None:
    assert cache_key("forecast:categories", {}, "demand", 7) == "forecast:categories:demand:v7"


def test_long_parameter_lists_are_hashed_into_a_short_key() -> None:
    many = {"product_ids": ",".join(f"P{i:05d}" for i in range(500))}

    key = cache_key("forecast:what-if", many, "demand", 2)

    assert len(key) < 120
    assert key.startswith("forecast:what-if:sha256=")
    assert key.endswith(":demand:v2")
    assert key != cache_key("forecast:what-if", {"product_ids": many["product_ids"] + ",P99999"}, "demand", 2)


def test_parameter_names_must_be_identifiers() -> None:
    with pytest.raises(ConfigurationError, match="identifiers"):
        cache_key("forecast", {"a:b": 1}, "demand", 1)


# Choosing the backend


async def test_make_cache_picks_the_backend_by_the_url_scheme(tmp_path: Path) -> None:
    memory = make_cache(Settings(home=tmp_path, cache_url="memory://", cache_ttl_seconds=120, cache_max_entries=7))
    redis_cache = make_cache(Settings(home=tmp_path, cache_url="redis://127.0.0.1:6379/0"))
    from_redis_url = make_cache(Settings(home=tmp_path, redis_url="rediss://127.0.0.1:6380/0"))
    default = make_cache(Settings(home=tmp_path))

    assert isinstance(memory.backend, MemoryCacheBackend)
    assert memory.backend.max_entries == 7
    assert memory.default_ttl_seconds == 120
    assert isinstance(redis_cache.backend, RedisCacheBackend)
    assert isinstance(from_redis_url.backend, RedisCacheBackend)
    assert isinstance(default.backend, MemoryCacheBackend)
    for cache in (memory, redis_cache, from_redis_url, default):
        await cache.close()


async def test_the_none_backend_computes_every_request(tmp_path: Path) -> None:
    cache = make_cache(Settings(home=tmp_path, cache_url="none://"))
    calls = 0

    async def compute() -> bytes:
        nonlocal calls
        calls += 1
        return b"fresh"

    assert isinstance(cache.backend, NoCacheBackend)
    assert await cache.get_or_compute("k", compute) == (b"fresh", False)
    assert await cache.get_or_compute("k", compute) == (b"fresh", False)
    assert calls == 2


@pytest.mark.parametrize(
    ("cache_url", "redis_url", "setting"),
    [("memcached://:secret@cache:11211", None, "cache_url"), ("", "http://:secret@x", "redis_url")],
)
def test_an_unknown_cache_scheme_names_the_setting_and_hides_the_url(
    cache_url: str, redis_url: str | None, setting: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError, match=f"^{setting}: unsupported cache URL scheme") as error:
        make_cache(Settings(home=tmp_path, cache_url=cache_url, redis_url=redis_url))
    assert "secret" not in str(error.value)


async def test_a_redis_cache_keeps_hot_entries_near_for_a_while() -> None:
    with throwaway_redis() as server:
        near = MemoryCacheBackend(10)
        cache = ResponseCache(RedisCacheBackend(server.url), default_ttl_seconds=60, near=near, near_seconds=0.3)
        compute = Computation(b"ranked")
        assert await cache.get_or_compute("k", compute) == (b"ranked", False)
        assert server.client().get("salescast:cache:k") == b"ranked"  # shared with other replicas

        server.stop()
        assert await cache.get_or_compute("k", compute) == (b"ranked", True)
        assert compute.calls == 1
        await asyncio.sleep(0.4)
        assert await cache.get_or_compute("k", compute) == (b"ranked", False)
        assert compute.calls == 2  # the near copy expired and Redis is down: computed again
        await cache.close()


async def test_a_replica_fills_its_near_cache_from_redis() -> None:
    with throwaway_redis() as server:
        other = ResponseCache(RedisCacheBackend(server.url), default_ttl_seconds=60)
        await other.get_or_compute("k", Computation(b"from another replica"))
        cache = ResponseCache(
            RedisCacheBackend(server.url), default_ttl_seconds=60, near=MemoryCacheBackend(10), near_seconds=60
        )

        first = await cache.lookup("k")
        server.stop()
        second = await cache.lookup("k")

        assert first == second == b"from another replica"
        await cache.close()
        await other.close()
