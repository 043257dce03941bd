"""Rate limits per API key: a token bucket that refills at `rate_per_second` up to `burst` tokens.

`make_rate_limiter` is the one place that maps the `rate_limit_url` scheme to a limiter: `memory://` (one
bucket per key in this process) or `redis://` / `rediss://` (one bucket per key shared by every replica,
with an in-process fallback while Redis is down, so that a Redis outage neither fails requests nor lifts
the limits).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol
from urllib.parse import urlsplit

from redis.asyncio import Redis

from salescast.config import Settings
from salescast.errors import ConfigurationError, RateLimitedError, SalescastError
from salescast.monitoring.metrics import RATE_LIMIT_ERRORS, RATE_LIMITED
from salescast.serving.breaker import CircuitBreaker
from salescast.serving.redis_client import REDIS_ERRORS, fast_failing_redis, redis_problem


class RateDecision(NamedTuple):
    """A rate limiter's answer (a named tuple: one is made on every request)."""

    allowed: bool
    remaining: int
    """Whole tokens left after this hit: requests the key may still make at once."""
    retry_after: float
    """Seconds until the refused request would be allowed; 0 when allowed."""


class RateLimiterUnavailableError(SalescastError):
    """The shared rate limiter (Redis) could not be reached; `FallbackRateLimiter` decides in-process."""

    exit_code = 4
    http_status = 503


class RateLimiter(Protocol):
    name: str
    """`memory` or `redis`: the `backend` label of `RATE_LIMITED`."""

    async def hit(self, key: str, rate_per_second: float, burst: int, cost: int = 1) -> RateDecision:
        """Take `cost` tokens from the bucket of `key` if it holds that many; a refused hit takes none."""
        ...

    async def close(self) -> None: ...


def _check(rate_per_second: float, burst: int, cost: int) -> None:
    if not rate_per_second > 0:
        raise ConfigurationError(f"rate_limit_per_second must be > 0, got {rate_per_second}")
    if burst < 1:
        raise ConfigurationError(f"rate_limit_burst must be at least 1, got {burst}")
    if not 1 <= cost <= burst:
        # A cost above the burst could never be paid: every such request would be refused forever.
        raise ConfigurationError(f"a rate-limit cost must be between 1 and the burst ({burst}), got {cost}")


def _decision(allowed: bool, tokens: float, retry_after: float) -> RateDecision:
    # Rounded up to the millisecond: waiting the advertised time must be enough, float error included.
    return RateDecision(allowed, math.floor(tokens), 0.0 if allowed else math.ceil(retry_after * 1000) / 1000)


class MemoryRateLimiter:
    """Token buckets in this process: each replica limits on its own.

    Event-loop only (no lock). At most `max_keys` buckets are kept; the least recently used one is
    forgotten beyond that, which only resets it to full (what an idle bucket refills to anyway).
    """

    name = "memory"

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000) -> None:
        self._clock = clock
        self.max_keys = max_keys
        # key -> (tokens, at); order is recency of use.
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    async def hit(self, key: str, rate_per_second: float, burst: int, cost: int = 1) -> RateDecision:
        _check(rate_per_second, burst, cost)
        now = self._clock()
        tokens, at = self._buckets.get(key, (float(burst), now))
        tokens = min(float(burst), tokens + max(0.0, now - at) * rate_per_second)
        allowed = tokens >= cost
        if allowed:
            tokens -= cost
        self._buckets[key] = (tokens, now)
        self._buckets.move_to_end(key)
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return _decision(allowed, tokens, (cost - tokens) / rate_per_second)

    async def close(self) -> None:
        self._buckets.clear()


_MAX_LEASES = 100_000
# How long a lease should last at the rate its key was last spent at; and the shortest time a lease is
# taken to have lasted, so that a lease spent at once does not read as an infinite rate.
LEASE_TARGET_SECONDS = 0.05
_MIN_LEASE_SECONDS = 0.01


@dataclass
class _Lease:
    """Tokens taken from a shared bucket and not spent yet, until when they may be spent, and what the
    shared bucket held when they were taken."""

    tokens: int
    until: float
    shared: float
    granted: int  # tokens held right after the lease came (what was left of the last one included)
    at: float  # when it came


# One atomic step of the token bucket. Redis's clock (TIME) rather than the caller's, so that replicas
# with skewed clocks agree; the state (tokens, microsecond timestamp) is a hash that expires once the
# bucket would be full again, since a missing bucket reads as a full one. Numbers travel as strings: Redis
# truncates Lua numbers to integers, and '%.17g' / '%.0f' keep them exact. An allowed hit may also take up
# to `lease` whole tokens more, which the caller spends locally (returned as the last value).
_TOKEN_BUCKET_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local lease = tonumber(ARGV[4])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
local elapsed = now - at
if elapsed < 0 then
  elapsed = 0
end
tokens = math.min(burst, tokens + elapsed * rate / 1000000)
local allowed = 0
local retry_after = 0
local leased = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
  leased = math.min(lease, math.floor(tokens))
  tokens = tokens - leased
else
  retry_after = (cost - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'at', string.format('%.0f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return {allowed, string.format('%.17g', tokens), string.format('%.17g', retry_after), leased}
"""  # nosec B105: a Lua script, not a password


class RedisRateLimiter:
    """Token buckets in Redis under `key_prefix`, shared by every replica; one Lua script per hit.

    With `lease` > 0 an allowed hit also takes up to that many tokens more (at most a quarter of the
    burst) and spends them in this process for up to `lease_seconds`, so a busy key costs one round
    trip per lease instead of per request; a key has one round trip under way at a time, and hits that
    find its lease spent meanwhile wait for the tokens it brings. A key spent faster than its lease lasts
    gets bigger leases, up to the quarter of the burst. Tokens are taken from the shared bucket
    before they are spent, so replicas together never exceed the limit; a lease that expires unused only
    makes the limit a little stricter.
    """

    name = "redis"

    def __init__(
        self,
        url: str,
        key_prefix: str = "salescast:rl:",
        lease: int = 0,
        lease_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        password: str | None = None,
    ) -> None:
        self.key_prefix = key_prefix
        self.lease = lease
        self.lease_seconds = lease_seconds
        self._clock = clock
        self._redis: Redis = fast_failing_redis(url, password)
        # register_script sends EVALSHA and falls back to EVAL when Redis lost its script cache (a restart).
        self._script = self._redis.register_script(_TOKEN_BUCKET_LUA)
        self._leases: dict[str, _Lease] = {}
        # key -> the round trip under way for it, which hits finding no leased token wait for
        self._round_trips: dict[str, asyncio.Future[None]] = {}

    async def hit(self, key: str, rate_per_second: float, burst: int, cost: int = 1) -> RateDecision:
        """Raises RateLimiterUnavailableError when Redis fails."""
        _check(rate_per_second, burst, cost)
        leasing = min(self.lease, burst // 4) > 0
        while leasing:
            held = self._leases.get(key)
            if held is not None and held.tokens >= cost and held.until > self._clock():
                held.tokens -= cost
                return _decision(True, held.tokens + held.shared, 0.0)
            under_way = self._round_trips.get(key)
            if under_way is None:
                break
            # One round trip per key at a time: a burst of hits that find the lease spent waits for the
            # lease the first one brings rather than each asking Redis (and each lease replacing the last).
            await asyncio.shield(under_way)
        lease = self._lease_size(key, burst)
        done: asyncio.Future[None] | None = None
        if leasing:
            done = self._round_trips[key] = asyncio.get_running_loop().create_future()
        try:
            allowed, tokens, retry_after, leased = await self._script(
                keys=[self.key_prefix + key], args=[repr(float(rate_per_second)), burst, cost, lease]
            )
        except REDIS_ERRORS as exc:
            raise RateLimiterUnavailableError(f"Redis rate limiter failed: {redis_problem(exc)}") from exc
        finally:
            if done is not None:
                del self._round_trips[key]
                done.set_result(None)
        if int(leased) > 0:
            self._add_lease(key, int(leased), float(tokens))
        return _decision(allowed == 1, float(tokens) + self._leased(key), float(retry_after))

    def _lease_size(self, key: str, burst: int) -> int:
        """`lease` tokens, or more for a key whose last lease went faster than LEASE_TARGET_SECONDS (up to
        a quarter of the burst): a busy key then costs a round trip every so often, whatever its rate."""
        cap = burst // 4
        size = min(self.lease, cap)
        held = self._leases.get(key)
        if size == 0 or held is None:
            return size
        spent = held.granted - held.tokens
        rate = spent / max(self._clock() - held.at, _MIN_LEASE_SECONDS)
        return min(cap, max(size, math.ceil(rate * LEASE_TARGET_SECONDS)))

    def _add_lease(self, key: str, tokens: int, shared: float) -> None:
        now = self._clock()
        held = self._leases.get(key)
        left = held.tokens if held is not None and held.until > now else 0
        self._leases[key] = _Lease(left + tokens, now + self.lease_seconds, shared, left + tokens, now)
        if len(self._leases) > _MAX_LEASES:
            self._leases.clear()  # keys come and go; a dropped lease only makes the limit stricter

    def _leased(self, key: str) -> int:
        held = self._leases.get(key)
        return held.tokens if held is not None and held.until > self._clock() else 0

    async def close(self) -> None:
        await self._redis.aclose()


class FallbackRateLimiter:
    """The Redis limiter, and an in-process one while Redis fails.

    A Redis failure never fails a request and never lifts the limit: the in-process buckets decide
    (each replica then allows up to the burst on its own). Failures are counted in `RATE_LIMIT_ERRORS`,
    logged at most once per `warn_every_seconds`, and Redis is skipped for `retry_after_seconds` after
    each (a circuit breaker), so that requests do not each pay a timeout.
    """

    def __init__(
        self,
        primary: RedisRateLimiter,
        fallback: MemoryRateLimiter,
        *,
        retry_after_seconds: float = 5.0,
        warn_every_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.primary = primary
        self.fallback = fallback
        self.name = primary.name
        self.breaker = CircuitBreaker(
            "rate_limit",
            primary.name,
            retry_after_seconds=retry_after_seconds,
            warn_every_seconds=warn_every_seconds,
            clock=clock,
        )

    async def hit(self, key: str, rate_per_second: float, burst: int, cost: int = 1) -> RateDecision:
        if self.breaker.allows():
            try:
                decision = await self.primary.hit(key, rate_per_second, burst, cost)
            except RateLimiterUnavailableError as exc:
                RATE_LIMIT_ERRORS.inc()
                self.breaker.record_failure("hit", exc)
            else:
                self.breaker.record_success()
                return decision
        return await self.fallback.hit(key, rate_per_second, burst, cost)

    async def close(self) -> None:
        await self.primary.close()
        await self.fallback.close()


async def enforce(limiter: RateLimiter, key: str, rate_per_second: float, burst: int, cost: int = 1) -> RateDecision:
    """Hit the bucket of `key`; raise RateLimitedError (and count `RATE_LIMITED`) when refused."""
    decision = await limiter.hit(key, rate_per_second, burst, cost)
    if not decision.allowed:
        RATE_LIMITED.labels(limiter.name).inc()
        raise RateLimitedError(
            f"rate limit exceeded ({burst} requests at once, {rate_per_second:g} per second sustained); "
            f"retry in {math.ceil(decision.retry_after)} s",
            decision.retry_after,
        )
    return decision


def make_rate_limiter(settings: Settings) -> RateLimiter:
    """The rate limiter `settings.resolved_rate_limit_url` names: memory:// or redis:// / rediss://."""
    url = settings.resolved_rate_limit_url
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        return MemoryRateLimiter()
    if scheme in ("redis", "rediss"):
        password = settings.redis_password.get_secret_value() if settings.redis_password else None
        shared = RedisRateLimiter(url, lease=settings.rate_limit_lease, password=password)
        return FallbackRateLimiter(shared, MemoryRateLimiter())
    # Name the setting the URL came from; the URL itself stays out: it may carry a Redis password.
    setting = "rate_limit_url" if settings.rate_limit_url else "redis_url"
    raise ConfigurationError(
        f"{setting}: unsupported rate-limiter URL scheme {scheme!r}; "
        "use memory:// or redis://host:port/db (rediss:// for TLS)"
    )
