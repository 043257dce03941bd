"""Rate limiting: the token bucket on both backends, shared buckets across replicas, atomicity, and the
in-process fallback while Redis is down."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
from prometheus_client import REGISTRY

from salescast.config import Settings
from salescast.errors import ConfigurationError, RateLimitedError
from salescast.serving.rate_limit import (
    FallbackRateLimiter,
    MemoryRateLimiter,
    RateDecision,
    RateLimiter,
    RedisRateLimiter,
    enforce,
    make_rate_limiter,
)
from tests.serving.clocks import FakeClock
from tests.serving.redis_servers import SHARED_REDIS_URL, delete_prefix, throwaway_redis, unique_prefix

pytestmark = pytest.mark.anyio

# A rate so slow that no token comes back during a test: the burst is all there is.
NEGLIGIBLE_RATE = 1e-6


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def prefix() -> Iterator[str]:
    """A prefix of this test alone on the shared Redis; its keys are deleted afterwards."""
    value = unique_prefix()
    yield value
    delete_prefix(SHARED_REDIS_URL, value)


@pytest.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[RateLimiter]:
    chosen: RateLimiter = (
        MemoryRateLimiter() if request.param == "memory" else RedisRateLimiter(SHARED_REDIS_URL, key_prefix=prefix)
    )
    yield chosen
    await chosen.close()


def counted(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def hits(limiter: RateLimiter, key: str, times: int, rate: float, burst: int) -> list[RateDecision]:
    return [await limiter.hit(key, rate, burst) for _ in range(times)]


# The bucket


async def test_a_burst_is_allowed_then_refused_until_a_token_refills(limiter: RateLimiter) -> None:
    decisions = await hits(limiter, "key-1", 6, rate=1.0, burst=5)

    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0]
    assert all(d.retry_after == 0 for d in decisions[:5])
    refused = decisions[5]
    assert 0 < refused.retry_after <= 1

    await asyncio.sleep(refused.retry_after)
    assert (await limiter.hit("key-1", 1.0, 5)).allowed


async def test_each_key_has_its_own_bucket(limiter: RateLimiter) -> None:
    await hits(limiter, "busy", 3, rate=NEGLIGIBLE_RATE, burst=3)

    assert not (await limiter.hit("busy", NEGLIGIBLE_RATE, 3)).allowed
    assert (await limiter.hit("quiet", NEGLIGIBLE_RATE, 3)).allowed


async def test_concurrent_hits_never_allow_more_than_the_burst(limiter: RateLimiter) -> None:
    decisions = await asyncio.gather(*(limiter.hit("crowd", NEGLIGIBLE_RATE, 20) for _ in range(100)))

    assert sum(d.allowed for d in decisions) == 20


async def test_a_hit_may_cost_several_tokens_and_a_refused_one_takes_none(limiter: RateLimiter) -> None:
    assert (await limiter.hit("batch", NEGLIGIBLE_RATE, 5, cost=3)).remaining == 2
    refused = await limiter.hit("batch", NEGLIGIBLE_RATE, 5, cost=3)

    assert not refused.allowed
    assert (await limiter.hit("batch", NEGLIGIBLE_RATE, 5, cost=2)).allowed


@pytest.mark.parametrize(
    ("rate", "burst", "cost", "message"),
    [
        (0.0, 5, 1, "rate_limit_per_second must be > 0"),
        (1.0, 0, 1, "rate_limit_burst must be at least 1"),
        (1.0, 5, 6, "between 1 and the burst"),
    ],
)
async def test_impossible_limits_are_configuration_errors(
    limiter: RateLimiter, rate: float, burst: int, cost: int, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        await limiter.hit("k", rate, burst, cost)


async def test_the_memory_bucket_refills_continuously_up_to_the_burst() -> None:
    clock = FakeClock()
    memory = MemoryRateLimiter(clock=clock)
    await hits(memory, "k", 5, rate=2.0, burst=5)

    clock.advance(1.25)  # 2.5 tokens back
    assert (await memory.hit("k", 2.0, 5)).remaining == 1
    clock.advance(3600)
    assert (await memory.hit("k", 2.0, 5)).remaining == 4


async def test_the_memory_limiter_forgets_the_least_recent_bucket_beyond_max_keys() -> None:
    memory = MemoryRateLimiter(clock=FakeClock(), max_keys=2)
    await hits(memory, "a", 2, rate=NEGLIGIBLE_RATE, burst=2)
    await hits(memory, "b", 1, rate=NEGLIGIBLE_RATE, burst=2)

    await memory.hit("c", NEGLIGIBLE_RATE, 2)

    # a was the least recently used: forgotten, it starts full again; b is still remembered.
    assert (await memory.hit("a", NEGLIGIBLE_RATE, 2)).remaining == 1
    assert (await memory.hit("c", NEGLIGIBLE_RATE, 2)).remaining == 0


# Redis: shared buckets, bounded keys


async def test_two_replicas_share_one_bucket_in_redis(prefix: str) -> None:
    one = RedisRateLimiter(SHARED_REDIS_URL, key_prefix=prefix)
    two = RedisRateLimiter(SHARED_REDIS_URL, key_prefix=prefix)

    decisions = [
        await one.hit("shared", NEGLIGIBLE_RATE, 5),
        await two.hit("shared", NEGLIGIBLE_RATE, 5),
        await one.hit("shared", NEGLIGIBLE_RATE, 5),
        await two.hit("shared", NEGLIGIBLE_RATE, 5),
        await two.hit("shared", NEGLIGIBLE_RATE, 5),
        await one.hit("shared", NEGLIGIBLE_RATE, 5),
    ]

    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    await one.close()
    await two.close()


async def test_a_redis_bucket_expires_once_it_would_be_full_again(prefix: str) -> None:
    limiter = RedisRateLimiter(SHARED_REDIS_URL, key_prefix=prefix)
    await limiter.hit("k", 10.0, 5, cost=3)  # 3 tokens missing: full again after 0.3 s

    with redis.Redis.from_url(SHARED_REDIS_URL) as client:
        ttl_ms = client.pttl(f"{prefix}k")

    assert 0 < ttl_ms <= 300 + 1000
    await limiter.close()


# Redis going down


async def test_while_redis_is_down_the_fallback_still_limits_and_redis_is_used_again_later(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    with throwaway_redis() as server:
        limiter = FallbackRateLimiter(
            RedisRateLimiter(server.url), MemoryRateLimiter(), retry_after_seconds=5, clock=clock
        )
        assert (await limiter.hit("k", NEGLIGIBLE_RATE, 5)).allowed
        with server.client() as client:
            assert client.exists("salescast:rl:k")
        errors = counted("salescast_rate_limit_errors_total")

        server.stop()
        with caplog.at_level(logging.WARNING, logger="salescast.serving.breaker"):
            decisions = await hits(limiter, "k", 6, rate=NEGLIGIBLE_RATE, burst=5)
        # The in-process bucket decides: the burst still holds, nothing fails.
        assert [d.allowed for d in decisions] == [True] * 5 + [False]
        assert limiter.breaker.is_open
        assert counted("salescast_rate_limit_errors_total") == errors + 1  # later hits skipped Redis
        assert [r.getMessage().split(" ")[0] for r in caplog.records] == ["rate_limit.unavailable"]

        server.start()  # same port, empty
        clock.advance(5)
        assert (await limiter.hit("k", NEGLIGIBLE_RATE, 5)).allowed
        assert not limiter.breaker.is_open
        with server.client() as client:
            assert client.exists("salescast:rl:k")
        await limiter.close()


# enforce, for the routes


async def test_enforce_returns_the_decision_while_allowed_and_raises_429_beyond() -> None:
    limiter = MemoryRateLimiter(clock=FakeClock())
    refused = counted("salescast_rate_limited_total", backend="memory")

    assert (await enforce(limiter, "key-9", 0.5, 1)).allowed
    with pytest.raises(RateLimitedError, match=r"rate limit exceeded .*retry in 2 s") as error:
        await enforce(limiter, "key-9", 0.5, 1)

    assert error.value.retry_after == 2.0
    assert error.value.http_status == 429
    assert counted("salescast_rate_limited_total", backend="memory") == refused + 1


# Choosing the limiter


async def test_make_rate_limiter_picks_the_limiter_by_the_url_scheme(tmp_path: Path) -> None:
    memory = make_rate_limiter(Settings(home=tmp_path, rate_limit_url="memory://"))
    shared = make_rate_limiter(Settings(home=tmp_path, rate_limit_url="redis://127.0.0.1:6379/0"))
    from_redis_url = make_rate_limiter(Settings(home=tmp_path, redis_url="rediss://127.0.0.1:6380/0"))
    default = make_rate_limiter(Settings(home=tmp_path))

    assert isinstance(memory, MemoryRateLimiter)
    assert isinstance(shared, FallbackRateLimiter)
    assert isinstance(shared.primary, RedisRateLimiter)
    assert isinstance(shared.fallback, MemoryRateLimiter)
    assert shared.name == "redis"
    assert isinstance(from_redis_url, FallbackRateLimiter)
    assert isinstance(default, MemoryRateLimiter)
    for limiter in (memory, shared, from_redis_url, default):
        await limiter.close()


@pytest.mark.parametrize(
    ("rate_limit_url", "redis_url", "setting"),
    [("tcp://:secret@limiter:1", None, "rate_limit_url"), ("", "memcached://:secret@x", "redis_url")],
)
def test_an_unknown_rate_limiter_scheme_names_the_setting_and_hides_the_url(
    rate_limit_url: str, redis_url: str | None, setting: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError, match=f"^{setting}: unsupported rate-limiter URL scheme") as error:
        make_rate_limiter(Settings(home=tmp_path, rate_limit_url=rate_limit_url, redis_url=redis_url))
    assert "secret" not in str(error.value)


def evalsha_calls(client: redis.Redis) -> int:
    """Script runs Redis answered (the first EVALSHA of a fresh server fails with NOSCRIPT and is re-sent
    as EVAL: that one is counted once)."""
    stats = client.info("commandstats")
    runs = 0
    for command in ("cmdstat_evalsha", "cmdstat_eval"):
        entry = stats.get(command, {})
        runs += int(entry.get("calls", 0)) - int(entry.get("failed_calls", 0))
    return runs


async def test_a_lease_spends_tokens_locally_with_one_round_trip_per_lease() -> None:
    with throwaway_redis() as server:
        limiter = RedisRateLimiter(server.url, lease=4)
        client = server.client()

        decisions = [await limiter.hit("busy", 0.001, 20) for _ in range(21)]

        assert [d.allowed for d in decisions] == [True] * 20 + [False]
        assert [d.remaining for d in decisions[:6]] == [19, 18, 17, 16, 15, 14]
        assert evalsha_calls(client) == 5  # 4 leases of 5 tokens, then the refusal
        await limiter.close()


async def test_concurrent_hits_on_a_spent_lease_share_one_round_trip() -> None:
    with throwaway_redis() as server:
        limiter = RedisRateLimiter(server.url, lease=10)
        client = server.client()

        decisions = await asyncio.gather(*(limiter.hit("burst", 0.001, 100) for _ in range(30)))

        assert all(d.allowed for d in decisions)
        # One round trip at a time: the first takes its caller's token and a lease of 10 that ten waiting
        # hits spend at once; that speed earns the next lease the most a key may lease (a quarter of the
        # burst, 25), enough for the 18 left. Every token is either spent, still leased or still shared:
        # no lease replaced another (before, each of the 30 hits asked Redis on its own).
        assert evalsha_calls(client) == 2
        shared = float(client.hget("salescast:rl:burst", "tokens") or 0)
        assert 62.9 < shared < 63.1  # 100 - (1 + 10) - (1 + 25)
        assert limiter._leased("burst") == 7  # 35 leased, 28 spent from the lease
        assert min(d.remaining for d in decisions) == 70  # 63 shared + the 7 still leased
        await limiter.close()


async def test_a_key_spent_slowly_keeps_the_configured_lease() -> None:
    with throwaway_redis() as server:
        clock = FakeClock()
        limiter = RedisRateLimiter(server.url, lease=4, lease_seconds=10.0, clock=clock)
        client = server.client()

        for _ in range(15):  # 20 hits a second: a lease of 4 lasts 0.2 s, longer than the target
            await limiter.hit("slow", 1000.0, 100)
            clock.advance(0.05)

        assert evalsha_calls(client) == 3  # 5 tokens a round trip (the caller's and 4 leased)
        await limiter.close()


async def test_replicas_with_leases_never_exceed_the_shared_burst() -> None:
    with throwaway_redis() as server:
        replicas = [RedisRateLimiter(server.url, lease=5), RedisRateLimiter(server.url, lease=5)]

        allowed = [(await replicas[i % 2].hit("shared", 0.001, 20)).allowed for i in range(40)]

        # Tokens are taken from the shared bucket before they are spent: never more than the burst.
        assert sum(allowed) == 20
        for limiter in replicas:
            await limiter.close()


async def test_an_unused_lease_expires() -> None:
    with throwaway_redis() as server:
        clock = FakeClock()
        limiter = RedisRateLimiter(server.url, lease=4, lease_seconds=1.0, clock=clock)
        client = server.client()
        await limiter.hit("k", 0.001, 20)

        clock.advance(1.5)
        await limiter.hit("k", 0.001, 20)

        assert evalsha_calls(client) == 2  # the second hit asked Redis again: its lease had ended
        await limiter.close()
