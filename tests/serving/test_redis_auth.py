"""Redis with AUTH, as ElastiCache runs it with an auth token and encryption in transit: a real
redis-server started with --requirepass (and once with TLS only), reached through the settings the
cache and the rate limiter read. A wrong or missing password is a clear message, and serving goes on
from the in-process fallbacks."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from salescast.config import Settings
from salescast.serving.cache import CacheUnavailableError, RedisCacheBackend, make_cache
from salescast.serving.rate_limit import FallbackRateLimiter, RateLimiterUnavailableError, make_rate_limiter
from tests.serving.redis_servers import PASSWORD, PasswordRedis, password_redis

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def server() -> Iterator[PasswordRedis]:
    with password_redis() as started:
        yield started


def redis_settings(url: str, password: str | None) -> Settings:
    return Settings(
        _env_file=None,
        redis_url=url,
        redis_password=SecretStr(password) if password else None,
        cache_near_seconds=0,
        rate_limit_lease=0,
    )


async def answer() -> bytes:
    return b'{"answer": 42}'


async def test_the_password_from_the_settings_opens_the_cache_and_the_limiter(server: PasswordRedis) -> None:
    settings = redis_settings(server.url, PASSWORD)
    cache, limiter = make_cache(settings), make_rate_limiter(settings)
    try:
        assert await cache.get_or_compute("top:v1", answer) == (b'{"answer": 42}', False)
        assert await cache.get_or_compute("top:v1", answer) == (b'{"answer": 42}', True)
        assert server.client.get("salescast:cache:top:v1") == b'{"answer": 42}'

        decisions = [await limiter.hit("key-1", rate_per_second=0.001, burst=2) for _ in range(3)]
        assert [d.allowed for d in decisions] == [True, True, False]
        assert server.client.exists("salescast:rl:key-1") == 1  # decided in Redis, not in-process
    finally:
        await cache.close()
        await limiter.close()


@pytest.mark.parametrize("password", ["wrong-password", None], ids=["wrong", "missing"])
async def test_a_refused_password_is_named_and_serving_falls_back(server: PasswordRedis, password: str | None) -> None:
    settings = redis_settings(server.url, password)
    backend = RedisCacheBackend(server.url, password=password)
    cache, limiter = make_cache(settings), make_rate_limiter(settings)
    try:
        with pytest.raises(CacheUnavailableError) as refused:
            await backend.get("anything")
        message = str(refused.value)
        assert message.startswith("Redis cache get failed: Redis refused the connection's password, ")
        assert "SALESCAST_REDIS_PASSWORD" in message and PASSWORD not in message

        # The request is still answered, uncached; the limit still holds, decided in-process.
        assert await cache.get_or_compute("top:v1", answer) == (b'{"answer": 42}', False)
        assert isinstance(limiter, FallbackRateLimiter)
        with pytest.raises(RateLimiterUnavailableError, match="SALESCAST_REDIS_PASSWORD"):
            await limiter.primary.hit("key-1", rate_per_second=0.001, burst=2)
        decisions = [await limiter.hit("key-1", rate_per_second=0.001, burst=2) for _ in range(3)]
        assert [d.allowed for d in decisions] == [True, True, False]
        assert server.client.dbsize() == 0
    finally:
        await backend.close()
        await cache.close()
        await limiter.close()


def _certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it (openssl, one second)."""
    ca_key, ca, key, request, cert = (
        folder / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem")
    )
    extensions = folder / "san.ext"
    extensions.write_text("subjectAltName=IP:127.0.0.1\n")
    for command in (
        [
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            ca_key,
            "-out",
            ca,
            "-days",
            "1",
            "-subj",
            "/CN=test-ca",
        ],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", request, "-subj", "/CN=127.0.0.1"],
        [
            "x509",
            "-req",
            "-in",
            request,
            "-CA",
            ca,
            "-CAkey",
            ca_key,
            "-CAcreateserial",
            "-out",
            cert,
            "-days",
            "1",
            "-extfile",
            extensions,
        ],
    ):
        subprocess.run(["openssl", *map(str, command)], check=True, capture_output=True, timeout=60)
    return ca, cert, key


async def test_rediss_with_the_auth_token_over_tls(tmp_path: Path) -> None:
    ca, cert, key = _certificates(tmp_path)
    tls = [
        "--tls-cert-file",
        str(cert),
        "--tls-key-file",
        str(key),
        "--tls-ca-cert-file",
        str(ca),
        "--tls-auth-clients",
        "no",
    ]
    with password_redis(tls=tls, client_options={"ssl": True, "ssl_ca_certs": str(ca)}) as server:
        port = server.client.connection_pool.connection_kwargs["port"]
        # ElastiCache's certificate chains to a public CA the system trusts; this one names its own.
        url = f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={ca}"
        settings = redis_settings(url, PASSWORD)
        cache = make_cache(settings)
        try:
            assert await cache.get_or_compute("tls:v1", answer) == (b'{"answer": 42}', False)
            assert server.client.get("salescast:cache:tls:v1") == b'{"answer": 42}'
            plain = RedisCacheBackend(f"redis://127.0.0.1:{port}/0", password=PASSWORD)
            with pytest.raises(CacheUnavailableError):  # the TLS port speaks nothing else
                await plain.get("tls:v1")
            await plain.close()
        finally:
            await cache.close()
