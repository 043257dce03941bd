"""API keys: what is stored, who is let in, for how long a revocation can lag, and what each scope allows."""

from __future__ import annotations

import threading

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Engine, select, text

from salescast.data.database import make_engine
from salescast.data.schema import ApiKey
from salescast.errors import (
    AuthenticationError,
    ConfigurationError,
    NotFoundError,
    PermissionDeniedError,
    StorageError,
)
from salescast.serving.auth import (
    ANONYMOUS_READER,
    SCOPES,
    KeyStore,
    Principal,
    has_scope,
    principal_from_headers,
    require,
)
from tests.conftest import _empty_postgres
from tests.serving.tcp_proxy import proxied


class FakeClock:
    """A clock the test moves by hand, so that cache expiry needs no sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def auth_failures(reason: str) -> float:
    return REGISTRY.get_sample_value("salescast_auth_failures_total", {"reason": reason}) or 0.0


def test_a_created_key_authenticates_with_its_scopes(engine: Engine) -> None:
    store = KeyStore(engine)
    created = store.create("dashboard", ["predict", "read"])

    principal = store.authenticate(created.secret)

    assert principal == Principal(created.id, "dashboard", created.prefix, frozenset({"read", "predict"}))
    assert created.scopes == ("read", "predict")
    assert created.secret.startswith(created.prefix + "_")
    assert len(created.prefix) == len("sc_") + 8


def test_the_database_holds_only_the_hash_of_a_key(engine: Engine) -> None:
    created = KeyStore(engine).create("etl", ["read"])
    secret_part = created.secret.removeprefix(created.prefix + "_")

    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM api_keys")).one()

    stored = " ".join(str(value) for value in row)
    assert secret_part not in stored and created.secret not in stored
    assert len(row.key_hash) == 64 and row.prefix == created.prefix


@pytest.mark.parametrize(
    "secret",
    [
        "sc_00000000_" + "A" * 43,  # well formed, never issued
        "not-a-key",
        "",
        "sc_",
        "Bearer sc_00000000_" + "A" * 43,
    ],
)
def test_unknown_and_malformed_keys_are_refused_alike(engine: Engine, secret: str) -> None:
    with pytest.raises(AuthenticationError, match=r"^unknown API key$"):
        KeyStore(engine).authenticate(secret)


def test_a_tampered_key_is_unknown_and_its_text_is_never_echoed(engine: Engine) -> None:
    created = KeyStore(engine).create("etl", ["read"])
    tampered = created.secret[:-1] + ("A" if created.secret[-1] != "A" else "B")

    with pytest.raises(AuthenticationError) as refused:
        KeyStore(engine).authenticate(tampered)

    assert str(refused.value) == "unknown API key"


def test_a_revoked_key_is_refused_with_its_prefix_and_the_time(engine: Engine) -> None:
    store = KeyStore(engine, cache_seconds=0)
    created = store.create("old laptop", ["admin"])
    revoked = store.revoke(created.id)
    before = auth_failures("revoked")

    with pytest.raises(AuthenticationError) as refused:
        store.authenticate(created.secret)

    assert revoked.revoked_at is not None
    message = str(refused.value)
    assert message.startswith(f"API key {created.prefix} was revoked at ")
    assert message.endswith(" UTC")
    assert created.secret.removeprefix(created.prefix) not in message
    assert auth_failures("revoked") == before + 1


def test_revoking_twice_keeps_the_first_time_and_unknown_ids_are_not_found(engine: Engine) -> None:
    store = KeyStore(engine)
    created = store.create("ci", ["read"])
    first = store.revoke(created.id).revoked_at

    again = store.revoke(created.id).revoked_at

    assert first is not None and again == first
    with pytest.raises(NotFoundError, match="no API key with id 999"):
        store.revoke(999)


def test_list_shows_every_key_with_revoked_ones_marked(engine: Engine) -> None:
    store = KeyStore(engine)
    kept = store.create("kept", ["read"])
    gone = store.create("gone", ["predict"])
    store.revoke(gone.id)

    listed = store.list()

    assert [(k.id, k.name, k.prefix, k.scopes) for k in listed] == [
        (kept.id, "kept", kept.prefix, ["read"]),
        (gone.id, "gone", gone.prefix, ["predict"]),
    ]
    assert listed[0].revoked_at is None and listed[1].revoked_at is not None


@pytest.mark.parametrize(
    ("name", "scopes", "message"),
    [
        ("x", ["read", "write"], "unknown scope(s) 'write'; valid scopes: read, predict, admin"),
        ("x", [], "at least one scope"),
        ("  ", ["read"], "an API key needs a name"),
    ],
)
def test_keys_need_a_name_and_known_scopes(engine: Engine, name: str, scopes: list[str], message: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        KeyStore(engine).create(name, scopes)

    assert message in str(refused.value)
    with engine.connect() as conn:
        assert conn.execute(select(ApiKey)).first() is None


def test_revocation_in_this_process_is_immediate_despite_the_cache(engine: Engine) -> None:
    clock = FakeClock()
    store = KeyStore(engine, cache_seconds=60, clock=clock)
    created = store.create("svc", ["read"])
    store.authenticate(created.secret)  # now cached for a minute

    store.revoke(created.id)

    with pytest.raises(AuthenticationError, match="was revoked"):
        store.authenticate(created.secret)


def test_another_replica_sees_a_revocation_only_when_its_cache_entry_expires(engine: Engine) -> None:
    clock = FakeClock()
    replica = KeyStore(engine, cache_seconds=5, clock=clock)
    other_replica = KeyStore(engine, cache_seconds=5, clock=clock)
    created = other_replica.create("svc", ["read"])
    assert replica.authenticate(created.secret).key_id == created.id

    other_replica.revoke(created.id)
    clock.now += 4.9
    still_trusted = replica.authenticate(created.secret)
    clock.now += 0.1

    assert still_trusted.key_id == created.id
    with pytest.raises(AuthenticationError, match=f"API key {created.prefix} was revoked"):
        replica.authenticate(created.secret)


def test_a_cached_key_needs_no_database_query(engine: Engine) -> None:
    store = KeyStore(engine, cache_seconds=5, clock=FakeClock())
    created = store.create("svc", ["read"])
    store.authenticate(created.secret)
    with engine.begin() as conn:  # deleting the row behind the store's back: only a query would notice
        conn.execute(text("DELETE FROM api_keys"))

    assert store.authenticate(created.secret).key_id == created.id
    with pytest.raises(AuthenticationError, match="unknown API key"):  # a fresh store has nothing cached
        KeyStore(engine, cache_seconds=5).authenticate(created.secret)


def test_without_a_cache_every_call_reads_the_database(engine: Engine) -> None:
    store = KeyStore(engine, cache_seconds=0)
    created = store.create("svc", ["read"])
    store.authenticate(created.secret)

    with engine.begin() as conn:
        conn.execute(text("UPDATE api_keys SET revoked_at = CURRENT_TIMESTAMP"))

    with pytest.raises(AuthenticationError, match="was revoked"):
        store.authenticate(created.secret)


@pytest.mark.postgres
def test_a_verified_key_stays_trusted_through_a_database_outage_for_the_grace_period(
    _postgres_engine: Engine, postgres_database: str
) -> None:
    _empty_postgres(_postgres_engine)
    clock = FakeClock()
    admin = KeyStore(_postgres_engine, cache_seconds=0)
    verified, never_seen = admin.create("svc", ["read"]), admin.create("new", ["read"])
    with proxied(postgres_database) as (proxy, url):
        engine = make_engine(url)
        replica = KeyStore(engine, cache_seconds=5, clock=clock, outage_grace_seconds=60)
        assert replica.authenticate(verified.secret).key_id == verified.id

        proxy.stop()  # PostgreSQL unreachable from here on
        clock.now += 30  # the cache entry has expired; the grace has not
        during_outage = replica.authenticate(verified.secret)
        with pytest.raises(StorageError, match="database is unavailable"):
            replica.authenticate(never_seen.secret)  # nothing verified it: no grace
        clock.now += 31  # 61 s after it was verified: beyond the grace
        with pytest.raises(StorageError, match="database is unavailable"):
            replica.authenticate(verified.secret)
        engine.dispose()

    assert during_outage.key_id == verified.id


@pytest.mark.postgres
def test_a_revocation_made_during_an_outage_applies_as_soon_as_the_database_is_back(
    _postgres_engine: Engine, postgres_database: str
) -> None:
    _empty_postgres(_postgres_engine)
    clock = FakeClock()
    admin = KeyStore(_postgres_engine, cache_seconds=0)
    created = admin.create("svc", ["read"])
    with proxied(postgres_database) as (proxy, url):
        engine = make_engine(url)
        replica = KeyStore(engine, cache_seconds=5, clock=clock, outage_grace_seconds=300)
        replica.authenticate(created.secret)
        proxy.stop()
        admin.revoke(created.id)  # on another replica, which still reaches the database
        clock.now += 10
        still_trusted = replica.authenticate(created.secret)  # this replica cannot know yet

        proxy.start()
        clock.now += 5  # its next probe of the database
        with pytest.raises(AuthenticationError, match="was revoked"):
            replica.authenticate(created.secret)
        engine.dispose()

    assert still_trusted.key_id == created.id


def test_authentication_from_many_threads_agrees(engine: Engine) -> None:
    store = KeyStore(engine, cache_seconds=5)
    keys = [store.create(f"k{i}", ["read"]) for i in range(4)]
    seen: list[tuple[int, int | None]] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(50):
            for key in keys:
                principal = store.authenticate(key.secret)
                with lock:
                    seen.append((key.id, principal.key_id))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(seen) == 8 * 50 * 4
    assert all(expected == got for expected, got in seen)


@pytest.mark.parametrize(
    ("granted", "allowed"),
    [
        ({"read"}, {"read"}),
        ({"predict"}, {"read", "predict"}),
        ({"admin"}, {"read", "predict", "admin"}),
        ({"read", "predict"}, {"read", "predict"}),
        (set(), set()),
    ],
)
def test_admin_implies_predict_implies_read(granted: set[str], allowed: set[str]) -> None:
    assert {needed for needed in SCOPES if has_scope(granted, needed)} == allowed


def test_an_unknown_needed_scope_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="unknown scope 'write'"):
        has_scope({"admin"}, "write")


def test_require_names_the_scope_the_key_and_what_it_has() -> None:
    reader = Principal(7, "dash", "sc_1a2b3c4d", frozenset({"read"}))
    before = auth_failures("scope")

    require(reader, "read")
    with pytest.raises(PermissionDeniedError) as refused:
        require(reader, "admin")

    assert str(refused.value) == "this route needs the 'admin' scope; key sc_1a2b3c4d has read"
    assert auth_failures("scope") == before + 1


def test_the_anonymous_reader_may_only_read() -> None:
    require(ANONYMOUS_READER, "read")

    with pytest.raises(PermissionDeniedError, match="needs the 'predict' scope; a request without an API key"):
        require(ANONYMOUS_READER, "predict")


@pytest.mark.parametrize(
    ("authorization", "x_api_key", "expected"),
    [
        ("Bearer sc_aaaa", None, "sc_aaaa"),
        ("bearer   sc_aaaa ", None, "sc_aaaa"),
        (None, "sc_bbbb", "sc_bbbb"),
        ("Bearer sc_aaaa", "sc_bbbb", "sc_aaaa"),  # Bearer wins
        (None, None, None),
        ("", "  ", None),
    ],
)
def test_the_key_comes_from_a_bearer_token_or_x_api_key(
    authorization: str | None, x_api_key: str | None, expected: str | None
) -> None:
    assert principal_from_headers(authorization, x_api_key) == expected


@pytest.mark.parametrize("authorization", ["Basic dXNlcjpwYXNz", "sc_aaaa", "Bearer", "Token sc_aaaa"])
def test_another_authorization_scheme_is_refused_with_the_accepted_ones(authorization: str) -> None:
    before = auth_failures("bad_header")

    with pytest.raises(AuthenticationError) as refused:
        principal_from_headers(authorization, "sc_bbbb")

    assert str(refused.value) == "use Authorization: Bearer <key> or X-API-Key"
    assert auth_failures("bad_header") == before + 1
