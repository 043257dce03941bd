"""The response cache: pre-serialised JSON bytes under keys that carry the model version.

Encoding dominates the hot path, so a cached value is the response body itself and is never re-encoded.
A new production version changes every key (the version is their last part), so old entries are never
invalidated, only left to expire by TTL.

`make_cache` is the one place that maps the `cache_url` scheme to a backend: `memory://` (in-process TTL
LRU) or `redis://` / `rediss://` (shared by the replicas). The cache is an optimisation: when its backend
is down, `ResponseCache` serves uncached instead of failing.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Literal, Protocol
from urllib.parse import urlsplit

from redis.asyncio import Redis

from salescast.config import Settings
from salescast.errors import ConfigurationError, SalescastError
from salescast.monitoring.metrics import CACHE_COMPUTES, CACHE_ERRORS, CACHE_LOOKUPS
from salescast.serving.breaker import CircuitBreaker
from salescast.serving.redis_client import REDIS_ERRORS, fast_failing_redis, redis_problem

log = logging.getLogger(__name__)

CacheOperation = Literal["get", "set", "delete_prefix"]

# Beyond this many characters the parameters of a key are replaced by their hash: keys stay short
# (Redis memory, log lines) however long a parameter list a client sends.
_MAX_PARAMS_CHARS = 256
_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class CacheUnavailableError(SalescastError):
    """The cache backend could not be reached or failed; `ResponseCache` serves uncached meanwhile."""

    exit_code = 4
    http_status = 503


class CacheBackend(Protocol):
    name: str
    """`memory` or `redis`: the `backend` label of the cache metrics."""

    async def get(self, key: str) -> bytes | None:
        """The value stored under `key`, or None when absent or expired. Raises CacheUnavailableError."""
        ...

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        """Store `value` under `key` for `ttl_seconds`. Raises CacheUnavailableError."""
        ...

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every key that starts with `prefix` and return how many; for admin use, may be slow."""
        ...

    async def close(self) -> None: ...


class NoCacheBackend:
    """Caches nothing (`none://`): every request computes. For measuring and debugging the miss path."""

    name = "none"

    async def get(self, key: str) -> bytes | None:
        return None

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        return None

    async def delete_prefix(self, prefix: str) -> int:
        return 0

    async def close(self) -> None:
        return None


class MemoryCacheBackend:
    """An in-process cache: per-entry expiry, least recently used entries evicted beyond `max_entries`.

    get and set are O(1). Event-loop only: it holds no lock, so call it from the server's event loop,
    never from worker threads. Each server process has its own; replicas do not share it.
    """

    name = "memory"

    def __init__(self, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        if max_entries < 1:
            raise ConfigurationError(f"cache_max_entries must be at least 1, got {max_entries}")
        self.max_entries = max_entries
        self._clock = clock
        # key -> (expires_at, value); order is recency of use, least recent first.
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, value = entry
        if self._clock() >= expires_at:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        self._entries[key] = (self._clock() + ttl_seconds, value)
        self._entries.move_to_end(key)
        # Expired entries are not swept; they age out of the LRU order like any unused entry.
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    async def delete_prefix(self, prefix: str) -> int:
        doomed = [key for key in self._entries if key.startswith(prefix)]
        for key in doomed:
            del self._entries[key]
        return len(doomed)

    async def close(self) -> None:
        self._entries.clear()


def _glob_escape(text: str) -> str:
    # SCAN MATCH takes a glob pattern: a prefix holding *, ?, [ or \ must match itself only.
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


class RedisCacheBackend:
    """A cache shared by every replica, in Redis under `key_prefix`; entries expire by Redis's own TTL.

    The default prefix differs from the rate limiter's (`salescast:rl:`), so that `delete_prefix` on the
    cache can never reach the limiter's buckets on a shared Redis.
    """

    name = "redis"

    def __init__(self, url: str, key_prefix: str = "salescast:cache:", password: str | None = None) -> None:
        self.key_prefix = key_prefix
        self._redis: Redis = fast_failing_redis(url, password)

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self._redis.get(self.key_prefix + key)
        except REDIS_ERRORS as exc:
            raise CacheUnavailableError(f"Redis cache get failed: {redis_problem(exc)}") from exc
        if value is None or isinstance(value, bytes):
            return value
        # Not reached with this client (it does not decode responses), but the type allows str.
        return value.encode()

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        # PX keeps sub-second TTLs; at least 1 ms, since Redis refuses a zero expiry.
        ttl_ms = max(1, round(ttl_seconds * 1000))
        try:
            await self._redis.set(self.key_prefix + key, value, px=ttl_ms)
        except REDIS_ERRORS as exc:
            raise CacheUnavailableError(f"Redis cache set failed: {redis_problem(exc)}") from exc

    async def delete_prefix(self, prefix: str) -> int:
        pattern = _glob_escape(self.key_prefix + prefix) + "*"
        deleted = 0
        try:
            batch: list[bytes] = []
            async for key in self._redis.scan_iter(match=pattern, count=500):
                batch.append(key)
                if len(batch) >= 500:
                    deleted += await self._redis.unlink(*batch)
                    batch = []
            if batch:
                deleted += await self._redis.unlink(*batch)
        except REDIS_ERRORS as exc:
            problem = redis_problem(exc)
            raise CacheUnavailableError(f"Redis cache delete_prefix failed after {deleted} keys: {problem}") from exc
        return deleted

    async def close(self) -> None:
        await self._redis.aclose()


class ResponseCache:
    """Get a response from the cache or compute it once, whatever the backend's health.

    - Single-flight: concurrent calls for the same key in this process share one lookup and at most one
      computation; a failed computation raises in every one of them and is not cached.
    - A failing backend (CacheUnavailableError) never fails a request: it is served uncached, the failure
      is counted in `CACHE_ERRORS` and logged (at most once per `warn_every_seconds`), and the backend is
      skipped for `retry_after_seconds` (a circuit breaker), so that requests do not each pay a timeout.

    Metrics: every call counts one `CACHE_LOOKUPS` result, `hit` when its value came from the cache and
    `miss` otherwise (also while the backend is skipped, or when it waited for another call's computation);
    every computation counts one `CACHE_COMPUTES`.
    """

    def __init__(
        self,
        backend: CacheBackend,
        default_ttl_seconds: float,
        *,
        retry_after_seconds: float = 5.0,
        warn_every_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        near: MemoryCacheBackend | None = None,
        near_seconds: float = 60.0,
    ) -> None:
        if default_ttl_seconds <= 0:
            raise ConfigurationError(f"cache_ttl_seconds must be > 0, got {default_ttl_seconds}")
        self.backend = backend
        # A remote backend gets an in-process near cache in front: an entry's key carries its model
        # version, so a copy held for `near_seconds` can only be stale by that much in its generated_at,
        # never in its content; hot keys then cost no round trip.
        self.near = near
        self.near_seconds = near_seconds
        self.default_ttl_seconds = default_ttl_seconds
        self.breaker = CircuitBreaker(
            "cache",
            backend.name,
            retry_after_seconds=retry_after_seconds,
            warn_every_seconds=warn_every_seconds,
            clock=clock,
        )
        self._in_flight: dict[str, asyncio.Task[tuple[bytes, bool]]] = {}
        self._immediate = isinstance(backend, MemoryCacheBackend | NoCacheBackend)
        # Bound once: labelling a metric on every request costs more than the memory lookup itself.
        self._hits = CACHE_LOOKUPS.labels(backend.name, "hit")
        self._misses = CACHE_LOOKUPS.labels(backend.name, "miss")

    async def get_or_compute(
        self, key: str, compute: Callable[[], Awaitable[bytes]], ttl_seconds: float | None = None
    ) -> tuple[bytes, bool]:
        """The value under `key` and whether it was a hit; on a miss `compute()` makes it and it is stored
        for `ttl_seconds` (default: the cache's)."""
        ttl = self.default_ttl_seconds if ttl_seconds is None else ttl_seconds
        if ttl <= 0:
            raise ConfigurationError(f"a cache TTL must be > 0 seconds, got {ttl}")
        flight = self._in_flight.get(key)
        if flight is None:
            # An in-process lookup never yields to the event loop, so no other caller can slip in between
            # it and starting a flight: a hit costs one lookup and no task.
            cached = await self._local_get(key)
            if cached is not None:
                self._hits.inc()
                return cached, True
        if flight is None:
            # The flight runs in a task of its own, so a caller that goes away (a client that disconnects
            # cancels its request) does not cancel the computation the others are waiting for. A remote
            # lookup happens inside it, so identical requests arriving during the round trip join it.
            flight = asyncio.create_task(self._fly(key, compute, ttl, lookup=not self._immediate))
            flight.add_done_callback(functools.partial(self._landed, key))
            self._in_flight[key] = flight
        try:
            value, hit = await asyncio.shield(flight)
        except Exception:
            self._misses.inc()  # a failed flight is a failed computation: a miss
            raise
        (self._hits if hit else self._misses).inc()
        return value, hit

    async def lookup(self, key: str) -> bytes | None:
        """The value under `key` if there is one (counted as a hit); a miss is not counted here, since
        the caller goes on to `get_or_compute`, which counts it."""
        cached = await self._local_get(key)
        if cached is None and not self._immediate:
            cached = await self._backend_get(key)
            if cached is not None:
                await self._near_set(key, cached)
        if cached is not None:
            self._hits.inc()
        return cached

    async def _local_get(self, key: str) -> bytes | None:
        if self._immediate:
            return await self._backend_get(key)
        return await self.near.get(key) if self.near is not None else None

    async def _near_set(self, key: str, value: bytes) -> None:
        if self.near is not None:
            await self.near.set(key, value, self.near_seconds)

    async def _fly(
        self, key: str, compute: Callable[[], Awaitable[bytes]], ttl_seconds: float, lookup: bool
    ) -> tuple[bytes, bool]:
        try:
            if lookup:
                cached = await self._backend_get(key)
                if cached is not None:
                    await self._near_set(key, cached)
                    return cached, True
            CACHE_COMPUTES.inc()
            value = await compute()
            await self._backend_set(key, value, ttl_seconds)
            await self._near_set(key, value)
            return value, False
        finally:
            # Leave before the result is handed out, so a call arriving afterwards looks up afresh rather
            # than joining a finished (possibly failed) flight.
            self._leave(key)

    def _leave(self, key: str) -> None:
        if (flight := self._in_flight.get(key)) is not None and flight is asyncio.current_task():
            del self._in_flight[key]

    def _landed(self, key: str, flight: asyncio.Task[tuple[bytes, bool]]) -> None:
        # A flight cancelled before it started never reaches its `finally`: leave here too.
        if self._in_flight.get(key) is flight:
            del self._in_flight[key]
        # A flight whose callers all went away still ends; fetching its error keeps asyncio from logging
        # "exception was never retrieved" for an error the callers (if any) have already received.
        if not flight.cancelled():
            flight.exception()

    async def _backend_get(self, key: str) -> bytes | None:
        if not self.breaker.allows():
            return None
        try:
            value = await self.backend.get(key)
        except CacheUnavailableError as exc:
            self._backend_failed("get", exc)
            return None
        self.breaker.record_success()
        return value

    async def _backend_set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        if not self.breaker.allows():
            return
        try:
            await self.backend.set(key, value, ttl_seconds)
        except CacheUnavailableError as exc:
            self._backend_failed("set", exc)
            return
        self.breaker.record_success()

    def _backend_failed(self, operation: CacheOperation, error: CacheUnavailableError) -> None:
        CACHE_ERRORS.labels(self.backend.name, operation).inc()
        self.breaker.record_failure(operation, error)

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every entry whose key starts with `prefix` (admin; other replicas' near caches keep
        theirs for up to near_seconds); raises CacheUnavailableError."""
        if self.near is not None:
            await self.near.delete_prefix(prefix)
        return await self.backend.delete_prefix(prefix)

    async def close(self) -> None:
        await self.backend.close()


def _escape(text: str) -> str:
    # ':' separates the parts of a key and '%' escapes; nothing else needs it (keys are binary-safe).
    return text.replace("%", "%25").replace(":", "%3A")


def cache_key(endpoint: str, params: Mapping[str, object], model: str, version: int) -> str:
    """The cache key of a response, e.g. `forecast:top-products:category=Electronics:limit=10:demand:v3`.

    Parameters are sorted by name and None ones dropped, so equal requests share a key whatever the order
    of their query string; values are `str()`-ed and otherwise kept as given (category names are
    case-sensitive). `endpoint` is a name chosen by the code (it may hold ':'); the version comes last, so
    a new production version makes every older key unreachable.
    """
    parts: list[str] = []
    for name in sorted(params):
        if not _PARAM_NAME.fullmatch(name):
            raise ConfigurationError(f"cache key parameter names must be identifiers, got {name!r}")
        value = params[name]
        if value is not None:
            parts.append(f"{name}={_escape(str(value))}")
    joined = ":".join(parts)
    if len(joined) > _MAX_PARAMS_CHARS:
        joined = "sha256=" + hashlib.sha256(joined.encode()).hexdigest()
    return ":".join(part for part in (endpoint, joined, _escape(model), f"v{version}") if part)


def make_cache(settings: Settings) -> ResponseCache:
    """The response cache `settings.resolved_cache_url` names: memory://, redis:// / rediss://, or none://."""
    url = settings.resolved_cache_url
    scheme = urlsplit(url).scheme
    backend: CacheBackend
    near: MemoryCacheBackend | None = None
    if scheme == "memory":
        backend = MemoryCacheBackend(settings.cache_max_entries)
    elif scheme in ("redis", "rediss"):
        password = settings.redis_password.get_secret_value() if settings.redis_password else None
        backend = RedisCacheBackend(url, password=password)
        if settings.cache_near_seconds > 0:
            near = MemoryCacheBackend(settings.cache_max_entries)
    elif scheme == "none":
        backend = NoCacheBackend()
    else:
        # Name the setting the URL came from; the URL itself stays out: it may carry a Redis password.
        setting = "cache_url" if settings.cache_url else "redis_url"
        raise ConfigurationError(
            f"{setting}: unsupported cache URL scheme {scheme!r}; "
            "use memory://, redis://host:port/db (rediss:// for TLS) or none://"
        )
    return ResponseCache(backend, settings.cache_ttl_seconds, near=near, near_seconds=settings.cache_near_seconds)
