"""API keys: creation, revocation, authentication with a short in-process cache, and scopes.

A key looks like `sc_1a2b3c4d_<secret>`: `sc_1a2b3c4d` is its public prefix, shown in listings and logs;
the database keeps only the sha256 of the whole key, so the secret exists once, when it is created.

Authentication is on every request's path, so each process caches what it looked up (a principal, or
"unknown"/"revoked") for `cache_seconds`. A revocation made through this KeyStore takes effect at once
in this process; other processes (replicas) keep trusting a key they looked up until their cache entry
expires, so a revocation reaches every replica within `cache_seconds` (`auth_cache_seconds`).

While the database is unreachable, an answer looked up within `outage_grace_seconds`
(`auth_outage_grace_seconds`) keeps standing, so cached reads go on serving the callers they served
before the outage; each key probes the database again at most once per `cache_seconds`, and the first
lookup that reaches it replaces the answer (a revocation made meanwhile applies from then on).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from salescast.data.database import as_utc
from salescast.data.schema import ApiKey
from salescast.errors import (
    AuthenticationError,
    ConfigurationError,
    NotFoundError,
    PermissionDeniedError,
    StorageError,
)
from salescast.monitoring.metrics import AUTH_FAILURES

log = logging.getLogger("salescast.auth")
SCOPES = ("read", "predict", "admin")
# What each scope grants: admin may do everything, predict may also read.
_GRANTS: dict[str, frozenset[str]] = {
    "read": frozenset({"read"}),
    "predict": frozenset({"read", "predict"}),
    "admin": frozenset(SCOPES),
}
KEY_PATTERN = re.compile(r"^sc_[0-9a-f]{8}_[A-Za-z0-9_-]{43}$")
BAD_HEADER = "use Authorization: Bearer <key> or X-API-Key"
# Bounds the cache when someone sprays random keys: each one would otherwise leave a negative entry.
CACHE_MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class Principal:
    """Who is calling: an API key (its id, name and prefix) or the anonymous reader of open-read mode."""

    key_id: int | None
    name: str
    prefix: str | None
    scopes: frozenset[str]


ANONYMOUS_READER = Principal(None, "anonymous", None, frozenset({"read"}))


@dataclass(frozen=True)
class _Refusal:
    reason: str  # the AUTH_FAILURES label
    message: str


@dataclass(frozen=True)
class CreatedKey:
    """A key just created: the only object that ever holds its secret."""

    id: int
    name: str
    prefix: str
    scopes: tuple[str, ...]
    secret: str


def has_scope(granted: Collection[str], needed: str) -> bool:
    """Whether scopes `granted` allow `needed` (admin implies predict, predict implies read)."""
    if needed not in _GRANTS:
        raise ConfigurationError(f"unknown scope {needed!r}; valid scopes: {', '.join(SCOPES)}")
    return any(needed in _GRANTS.get(scope, ()) for scope in granted)


def require(principal: Principal, scope: str) -> None:
    """Raise PermissionDeniedError unless `principal` has `scope`."""
    if has_scope(principal.scopes, scope):
        return
    AUTH_FAILURES.labels("scope").inc()
    who = f"key {principal.prefix}" if principal.prefix else "a request without an API key"
    held = ", ".join(s for s in SCOPES if s in principal.scopes) or "no scope"
    raise PermissionDeniedError(f"this route needs the {scope!r} scope; {who} has {held}")


def principal_from_headers(authorization: str | None, x_api_key: str | None) -> str | None:
    """The API key a request carries, from `Authorization: Bearer <key>` (preferred) or `X-API-Key`;
    None when it carries neither."""
    if authorization and authorization.strip():
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            AUTH_FAILURES.labels("bad_header").inc()
            raise AuthenticationError(BAD_HEADER)
        return value.strip()
    if x_api_key and x_api_key.strip():
        return x_api_key.strip()
    return None


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@contextmanager
def _database(action: str) -> Iterator[None]:
    try:
        yield
    except OperationalError as exc:
        # No connection details: this message may reach an API caller.
        raise StorageError(f"cannot {action}: the database is unavailable") from exc


class KeyStore:
    """API keys in the SQL store, with a per-process cache of lookups (see the module's docstring)."""

    def __init__(
        self,
        engine: Engine,
        cache_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        outage_grace_seconds: float = 0.0,
    ) -> None:
        self.engine = engine
        self.cache_seconds = cache_seconds
        self.outage_grace_seconds = outage_grace_seconds
        self._clock = clock
        self._lock = threading.Lock()
        # key hash -> (expires at, looked up at, the answer); refusals are cached too, so a retrying client
        # costs no query. Expired entries stay (until the LRU bound drops them) for the outage grace.
        self._cache: OrderedDict[str, tuple[float, float, Principal | _Refusal]] = OrderedDict()
        # Bumped by revoke(): a lookup that started before a revocation must not cache its stale answer.
        self._generation = 0

    def create(self, name: str, scopes: Sequence[str]) -> CreatedKey:
        name = name.strip()
        if not name:
            raise ConfigurationError("an API key needs a name")
        if len(name) > 200:
            raise ConfigurationError("an API key's name has at most 200 characters")
        if unknown := sorted(set(scopes) - set(SCOPES)):
            raise ConfigurationError(
                f"unknown scope(s) {', '.join(map(repr, unknown))}; valid scopes: {', '.join(SCOPES)}"
            )
        if not scopes:
            raise ConfigurationError(f"an API key needs at least one scope: {', '.join(SCOPES)}")
        ordered = tuple(s for s in SCOPES if s in scopes)
        prefix = f"sc_{secrets.token_hex(4)}"
        secret = f"{prefix}_{secrets.token_urlsafe(32)}"
        with _database("create the API key"), self.engine.begin() as conn:
            key_id = conn.execute(
                insert(ApiKey)
                .values(
                    name=name,
                    prefix=prefix,
                    key_hash=hash_key(secret),
                    scopes=list(ordered),
                    created_at=dt.datetime.now(dt.UTC),
                )
                .returning(ApiKey.id)
            ).scalar_one()
        return CreatedKey(key_id, name, prefix, ordered, secret)

    def list(self) -> list[ApiKey]:
        """Every key, oldest first; revoked ones have `revoked_at` set."""
        with _database("list API keys"), Session(self.engine, expire_on_commit=False) as session:
            return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))

    def revoke(self, key_id: int) -> ApiKey:
        """Revoke a key for good; revoking it again keeps the first revocation time."""
        with _database("revoke the API key"), Session(self.engine, expire_on_commit=False) as session:
            session.execute(
                update(ApiKey)
                .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
                .values(revoked_at=dt.datetime.now(dt.UTC))
            )
            session.commit()
            row = session.get(ApiKey, key_id)
        if row is None:
            raise NotFoundError(f"no API key with id {key_id}")
        with self._lock:
            self._generation += 1
            self._cache.pop(row.key_hash, None)
        return row

    def authenticate(self, secret: str) -> Principal:
        """The principal of an API key; AuthenticationError for unknown, malformed or revoked keys."""
        if not KEY_PATTERN.match(secret):
            AUTH_FAILURES.labels("malformed").inc()
            raise AuthenticationError("unknown API key")
        key_hash = hash_key(secret)
        with self._lock:
            cached = self._cached(key_hash)
            generation = self._generation
        if cached is not None:
            answer = cached
        else:
            try:
                answer = self._look_up(key_hash)
            except StorageError as exc:
                answer = self._outage_answer(key_hash, exc)
            else:
                if self.cache_seconds > 0 or self.outage_grace_seconds > 0:
                    with self._lock:
                        if generation == self._generation:
                            self._remember(key_hash, answer, self._clock())
        if isinstance(answer, Principal):
            return answer
        AUTH_FAILURES.labels(answer.reason).inc()
        raise AuthenticationError(answer.message)

    def _look_up(self, key_hash: str) -> Principal | _Refusal:
        with _database("check the API key"), self.engine.connect() as conn:
            row = conn.execute(
                select(ApiKey.id, ApiKey.name, ApiKey.prefix, ApiKey.scopes, ApiKey.revoked_at).where(
                    ApiKey.key_hash == key_hash
                )
            ).one_or_none()
        if row is None:
            return _Refusal("unknown", "unknown API key")
        if row.revoked_at is not None:
            revoked_at = as_utc(row.revoked_at)
            return _Refusal("revoked", f"API key {row.prefix} was revoked at {revoked_at:%Y-%m-%d %H:%M:%S} UTC")
        return Principal(row.id, row.name, row.prefix, frozenset(row.scopes))

    def _cached(self, key_hash: str) -> Principal | _Refusal | None:
        entry = self._cache.get(key_hash)
        if entry is None:
            return None
        expires, _, answer = entry
        if self._clock() >= expires:
            return None  # kept for the outage grace; a successful lookup replaces it
        return answer

    def _outage_answer(self, key_hash: str, error: StorageError) -> Principal | _Refusal:
        """The last answer for a key while the database is unreachable, if it is recent enough; else the
        StorageError (a 503) stands."""
        now = self._clock()
        with self._lock:
            entry = self._cache.get(key_hash)
            if entry is None or now - entry[1] > self.outage_grace_seconds:
                raise error
            _, looked_up, answer = entry
            # The next probe of the database for this key waits a cache period: an outage must not cost
            # every request a failed connection attempt.
            self._remember(key_hash, answer, looked_up)
        log.warning("auth.outage_grace", extra={"key_prefix": getattr(answer, "prefix", None)})
        return answer

    def _remember(self, key_hash: str, answer: Principal | _Refusal, looked_up: float) -> None:
        self._cache[key_hash] = (self._clock() + self.cache_seconds, looked_up, answer)
        self._cache.move_to_end(key_hash)
        while len(self._cache) > CACHE_MAX_ENTRIES:
            self._cache.popitem(last=False)
