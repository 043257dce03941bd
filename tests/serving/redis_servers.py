"""Redis for the serving tests: the shared server on 127.0.0.1:6379 under a unique key prefix, and
throwaway servers a test may kill and restart (never the shared one)."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis

from tests.conftest import free_port

SHARED_REDIS_URL = "redis://127.0.0.1:6379/0"
REDIS_SERVER = "redis-server"  # on PATH, as ThrowawayRedis runs it
PASSWORD = "elasticache-auth-token-0123456789"


def unique_prefix() -> str:
    return f"salescast-test:{uuid.uuid4().hex[:12]}:"


def delete_prefix(url: str, prefix: str) -> None:
    with redis.Redis.from_url(url) as client:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)


class ThrowawayRedis:
    """A redis-server of this test alone, on a free port, without persistence."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        with redis.Redis(port=self.port, socket_connect_timeout=0.2) as client:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    if time.monotonic() > deadline or self._process.poll() is not None:
                        self.stop()
                        raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                    time.sleep(0.05)

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)


@contextmanager
def throwaway_redis() -> Iterator[ThrowawayRedis]:
    server = ThrowawayRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class PasswordRedis:
    url: str  # without the password: the settings carry it
    client: redis.Redis


@contextmanager
def password_redis(
    password: str = PASSWORD, tls: list[str] | None = None, client_options: dict[str, Any] | None = None
) -> Iterator[PasswordRedis]:
    """A redis-server of this test alone that wants `password` (as ElastiCache wants its AUTH token), on a
    free port; with `tls` (redis-server's --tls-* arguments) it speaks TLS only."""
    port = free_port()
    plain = ["--port", str(port)] if not tls else ["--port", "0", "--tls-port", str(port), *tls]
    process = subprocess.Popen(
        [
            REDIS_SERVER,
            *plain,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--requirepass",
            password,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    options: dict[str, Any] = {"host": "127.0.0.1", "port": port, "password": password, "socket_connect_timeout": 0.5}
    client = redis.Redis(**options, **(client_options or {}))
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"redis-server did not start on port {port}") from None
                time.sleep(0.05)
        yield PasswordRedis(f"redis://127.0.0.1:{port}/0", client)
    finally:
        client.close()
        process.kill()
        process.wait(timeout=10)
