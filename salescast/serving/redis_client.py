"""The Redis client of the serving path: fails fast, because Redis is an optimisation there, not a need.

A request must not hang on a Redis that is down or unreachable: the connect and read timeouts are short,
and a command is retried once at most (that once replaces a pooled connection that a Redis restart broke).
The callers put a circuit breaker in front, so a down Redis costs one timeout per breaker window.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, AuthenticationWrongNumberOfArgsError, RedisError

CONNECT_TIMEOUT_SECONDS = 0.25
COMMAND_TIMEOUT_SECONDS = 0.25

# What a Redis call raises when the server is away: redis-py's own errors, and OSError for the odd socket
# failure it does not wrap.
REDIS_ERRORS: tuple[type[Exception], ...] = (RedisError, OSError)


def fast_failing_redis(url: str, password: str | None = None) -> Redis:
    """An asyncio Redis client for `url` (redis:// or rediss:// for TLS, as ElastiCache with encryption in
    transit needs); it connects on first use and sends AUTH with `password` (the ElastiCache auth token)
    when one is given, else with the URL's own password if it has one."""
    options: dict[str, Any] = {
        "socket_connect_timeout": CONNECT_TIMEOUT_SECONDS,
        "socket_timeout": COMMAND_TIMEOUT_SECONDS,
        "retry": Retry(NoBackoff(), retries=1),
    }
    if password:
        options["password"] = password
    return Redis.from_url(url, **options)


def redis_problem(error: Exception) -> str:
    """What went wrong with Redis, in words an operator can act on: a refused password names the setting."""
    if isinstance(error, AuthenticationError | AuthenticationWrongNumberOfArgsError):
        return f"Redis refused the connection's password, check SALESCAST_REDIS_PASSWORD ({error})"
    return str(error)
