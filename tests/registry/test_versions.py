"""The registry: versions reload bit-identically, aliases are atomic and audited, crashes leave no trace."""

from __future__ import annotations

import datetime as dt
import filecmp
import itertools
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, insert

from salescast.config import Settings
from salescast.data.schema import AliasEvent, ModelVersion
from salescast.errors import ArtifactIntegrityError, ArtifactNotFoundError, ConfigurationError, ConflictError
from salescast.registry.artifacts import ArtifactRef, ArtifactStore, LocalArtifactStore
from salescast.registry.versions import (
    PRODUCTION,
    Candidate,
    ModelRegistry,
    NoEarlierVersionError,
    RejectedVersionError,
    UnknownAliasError,
)


def candidate(name: str = "demand", status: str = "registered") -> Candidate:
    return Candidate(
        name=name,
        families=["lgbm"],
        weights={"lgbm": 1.0},
        params={"lgbm": {"n_estimators": 10}},
        features=["price", "on_promotion"],
        freq="D",
        horizon=14,
        data_fingerprint="f" * 64,
        data_start=dt.date(2024, 1, 1),
        data_end=dt.date(2024, 6, 30),
        series=12,
        package_version="0.1.0",
        git_commit=None,
        metrics={"candidate": {"mase": 0.8}},
        status=status,
    )


def model_folder(tmp_path: Path, content: str) -> Path:
    folder = tmp_path / f"model-{content}"
    (folder / "members" / "lgbm").mkdir(parents=True)
    (folder / "manifest.json").write_text('{"family": "ensemble"}')
    (folder / "members" / "lgbm" / "state.pkl").write_bytes(content.encode() * 1000)
    return folder


def same_tree(a: Path, b: Path) -> bool:
    comparison = filecmp.dircmp(a, b)
    if comparison.left_only or comparison.right_only or comparison.diff_files:
        return False
    return all(same_tree(a / sub, b / sub) for sub in comparison.common_dirs)


@pytest.fixture
def registry(engine: Engine, store: ArtifactStore) -> ModelRegistry:
    return ModelRegistry(engine, store)


def test_a_registered_version_reloads_bit_identically(registry: ModelRegistry, tmp_path: Path) -> None:
    folder = model_folder(tmp_path, "a")

    row = registry.register(candidate(), folder)
    back = registry.fetch(registry.version("demand", row.version), tmp_path / "back")

    assert row.version == 1 and row.status == "registered" and row.artifact_sha256
    assert same_tree(folder, back)
    assert registry.versions("demand")[0].data_fingerprint == "f" * 64


def test_a_tampered_artifact_is_refused_and_production_stays(registry: ModelRegistry, tmp_path: Path) -> None:
    first = registry.register(candidate(), model_folder(tmp_path, "a"))
    registry.promote("demand", first.version, actor="test")
    second = registry.register(candidate(), model_folder(tmp_path, "b"))
    assert second.artifact_uri is not None
    # Replace the stored bytes of v2 by another artifact's bytes: the recorded sha256 no longer matches.
    forged = registry.store.put(model_folder(tmp_path, "evil"), "forged.tar")
    _overwrite(registry.store, second.artifact_uri, forged)

    with pytest.raises((ArtifactIntegrityError, ArtifactNotFoundError)):
        registry.promote("demand", second.version, actor="test")

    assert registry.alias("demand", PRODUCTION).version == first.version
    assert len(registry.history("demand", PRODUCTION)) == 1


def _overwrite(store: ArtifactStore, uri: str, source: ArtifactRef) -> None:
    """Put the bytes of `source` where `uri` points, as an attacker or a bad disk would."""
    key = uri.split("/", 3)[-1] if uri.startswith("s3://") else None
    scratch = Path(source.uri.removeprefix("file://")) if source.uri.startswith("file://") else None
    if scratch is not None:
        Path(uri.removeprefix("file://")).write_bytes(scratch.read_bytes())
        return
    # A versioned bucket keeps the recorded version immutable: the forger can only delete it and put
    # other bytes under the key, which the registry's pinned VersionId then fails to find.
    client = store.client  # type: ignore[attr-defined]
    bucket = uri.split("/")[2]
    body = client.get_object(Bucket=bucket, Key=source.uri.split("/", 3)[-1])["Body"].read()
    for version in client.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", []):
        client.delete_object(Bucket=bucket, Key=key, VersionId=version["VersionId"])
    client.put_object(Bucket=bucket, Key=key, Body=body)


def test_concurrent_promotions_leave_one_alias_and_two_audit_rows(registry: ModelRegistry, tmp_path: Path) -> None:
    first = registry.register(candidate(), model_folder(tmp_path, "a"))
    second = registry.register(candidate(), model_folder(tmp_path, "b"))
    errors: list[BaseException] = []

    def promote(version: int) -> None:
        try:
            registry.set_alias("demand", PRODUCTION, version, actor=f"worker-{version}")
        except BaseException as exc:  # collected: a thread's exception would otherwise vanish
            errors.append(exc)

    threads = [threading.Thread(target=promote, args=(v,)) for v in (first.version, second.version)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    events = registry.history("demand", PRODUCTION)
    assert len(events) == 2
    _assert_chained(events)
    assert registry.aliases("demand") == {PRODUCTION: registry.alias("demand", PRODUCTION).version}
    # The audit chains: the second change starts where the first one ended.
    assert events[0].from_version_id is None
    assert events[1].from_version_id == events[0].to_version_id
    assert registry.alias("demand", PRODUCTION).id == events[1].to_version_id


def _assert_chained(events: list[Any]) -> None:
    for before, after in itertools.pairwise(events):
        assert after.from_version_id == before.to_version_id


def test_a_burst_of_promotions_keeps_an_unbroken_audit_chain(registry: ModelRegistry, tmp_path: Path) -> None:
    versions = [registry.register(candidate(), model_folder(tmp_path, c)).version for c in "abc"]
    threads = [
        threading.Thread(target=registry.set_alias, args=("demand", PRODUCTION, versions[i % 3], f"w{i}"))
        for i in range(9)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    events = registry.history("demand", PRODUCTION)
    # A promotion to the version production is on already moves nothing and is not audited.
    assert 1 <= len(events) <= 9
    assert all(event.from_version_id != event.to_version_id for event in events)
    _assert_chained(events)
    assert registry.alias("demand", PRODUCTION).id == events[-1].to_version_id


class CrashAfterUpload:
    """An artifact store whose process dies right after the upload, before the metadata commit."""

    def __init__(self, inner: ArtifactStore) -> None:
        self.inner = inner

    def put(self, local_folder: Path, key: str) -> ArtifactRef:
        self.inner.put(local_folder, key)
        raise SystemExit("crash between upload and commit")

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_a_crash_between_upload_and_commit_leaves_no_visible_version(
    engine: Engine, store: ArtifactStore, tmp_path: Path
) -> None:
    crashing = ModelRegistry(engine, CrashAfterUpload(store))  # type: ignore[arg-type]

    with pytest.raises(SystemExit):
        crashing.register(candidate(), model_folder(tmp_path, "a"))

    healthy = ModelRegistry(engine, store)
    assert healthy.versions() == []
    assert healthy.register(candidate(), model_folder(tmp_path, "b")).version == 1


def test_which_version_served_production_at_a_time_and_rollback(registry: ModelRegistry, tmp_path: Path) -> None:
    first = registry.register(candidate(), model_folder(tmp_path, "a"))
    second = registry.register(candidate(), model_folder(tmp_path, "b"))
    before = dt.datetime.now(dt.UTC)
    registry.set_alias("demand", PRODUCTION, first.version, actor="alice", reason="first launch")
    between = dt.datetime.now(dt.UTC)
    registry.set_alias("demand", PRODUCTION, second.version, actor="bob")
    after = dt.datetime.now(dt.UTC)

    assert registry.version_at("demand", PRODUCTION, before - dt.timedelta(seconds=1)) is None
    at_between = registry.version_at("demand", PRODUCTION, between)
    at_after = registry.version_at("demand", PRODUCTION, after)
    assert at_between is not None and at_between.version == first.version
    assert at_after is not None and at_after.version == second.version

    event = registry.rollback("demand", actor="carol", reason="bad forecasts")

    assert registry.alias("demand", PRODUCTION).version == first.version
    assert (event.actor, event.reason) == ("carol", "bad forecasts")
    assert [e.actor for e in registry.history("demand", PRODUCTION)] == ["alice", "bob", "carol"]


def test_a_rejected_version_is_a_conflict_refused_before_any_work(registry: ModelRegistry, tmp_path: Path) -> None:
    rejected = registry.register(candidate(status="rejected"), model_folder(tmp_path, "a"))
    prepared: list[int] = []

    for alias in (PRODUCTION, "candidate"):
        refused = f"v1 was rejected \\(no reason recorded\\); it cannot be {alias}"
        with pytest.raises(RejectedVersionError, match=refused):
            registry.set_alias("demand", alias, rejected.version, actor="test", prepare=lambda row: prepared.append(1))

    assert issubclass(RejectedVersionError, ConflictError)
    assert (RejectedVersionError.http_status, RejectedVersionError.exit_code) == (409, ConflictError.exit_code)
    assert prepared == [] and registry.aliases("demand") == {} and registry.history("demand") == []


# -- every alias move checks the artifact ------------------------------------------------------------------


@pytest.fixture
def local_registry(engine: Engine, tmp_path: Path) -> ModelRegistry:
    """v1 and v2 on a local folder, where a test can damage an artifact's bytes in place."""
    registry = ModelRegistry(engine, LocalArtifactStore(tmp_path / "artifacts"))
    for content in "ab":
        registry.register(candidate(), model_folder(tmp_path, content))
    return registry


def truncate_artifact(row: ModelVersion) -> None:
    """Cut the last bytes off a local artifact, as a full disk or an interrupted copy would."""
    assert row.artifact_uri is not None
    path = Path(row.artifact_uri.removeprefix("file://"))
    path.write_bytes(path.read_bytes()[:-100])


def test_every_alias_move_refuses_a_corrupt_artifact(local_registry: ModelRegistry) -> None:
    registry = local_registry
    registry.set_alias("demand", PRODUCTION, 2, actor="test")
    registry.set_alias("demand", PRODUCTION, 1, actor="test")  # a rollback would return to v2
    truncate_artifact(registry.version("demand", 2))
    events = len(registry.history("demand"))
    moves: dict[str, Callable[[], AliasEvent]] = {
        "rollback": lambda: registry.rollback("demand", actor="test"),
        "promote": lambda: registry.promote("demand", 2, actor="test"),
        "set production": lambda: registry.set_alias("demand", PRODUCTION, 2, actor="test"),
        "set candidate": lambda: registry.set_alias("demand", "candidate", 2, actor="test"),
    }

    for move, attempt in moves.items():
        with pytest.raises(ArtifactIntegrityError) as refused:
            attempt()
        message = str(refused.value)
        assert "demand v2 cannot be" in message and "corrupt or was replaced" in message, move
        assert "file://" not in message and "sha256" not in message, move  # those go to the log

    assert registry.aliases("demand") == {PRODUCTION: 1}
    assert len(registry.history("demand")) == events


# -- alias names, moves that change nothing, rollback ------------------------------------------------------


def test_a_move_to_where_the_alias_points_already_writes_no_audit_row(local_registry: ModelRegistry) -> None:
    registry = local_registry
    first = registry.set_alias("demand", PRODUCTION, 1, actor="alice")

    again = registry.promote("demand", 1, actor="bob")

    assert first.id is not None
    assert again.id is None and again.from_version_id == again.to_version_id == first.to_version_id
    assert [(e.actor, e.from_version_id) for e in registry.history("demand")] == [("alice", None)]


def test_rollback_returns_to_the_previous_different_version(local_registry: ModelRegistry, engine: Engine) -> None:
    registry = local_registry
    v1, v2 = registry.version("demand", 1), registry.version("demand", 2)
    registry.set_alias("demand", PRODUCTION, 1, actor="test")
    registry.set_alias("demand", PRODUCTION, 2, actor="test")
    registry.set_alias("demand", PRODUCTION, 1, actor="test")
    registry.set_alias("demand", PRODUCTION, 1, actor="test")
    # Rows "from 1 to 1" that earlier releases wrote for such moves: rollback passes over them.
    with engine.begin() as conn:
        for _ in range(2):
            conn.execute(
                insert(AliasEvent).values(
                    name="demand",
                    alias=PRODUCTION,
                    from_version_id=v1.id,
                    to_version_id=v1.id,
                    actor="old release",
                    at=dt.datetime.now(dt.UTC),
                )
            )

    back = registry.rollback("demand", actor="carol")
    forth = registry.rollback("demand", actor="dave")

    assert (back.from_version_id, back.to_version_id) == (v1.id, v2.id)
    assert (forth.from_version_id, forth.to_version_id) == (v2.id, v1.id)
    assert registry.alias("demand", PRODUCTION).version == 1


def test_a_rollback_with_nothing_to_return_to_is_a_conflict(local_registry: ModelRegistry) -> None:
    registry = local_registry
    with pytest.raises(NoEarlierVersionError, match="'demand' production has no earlier version to roll back to"):
        registry.rollback("demand", actor="test")
    registry.set_alias("demand", PRODUCTION, 1, actor="test")
    registry.set_alias("demand", PRODUCTION, 1, actor="test")

    with pytest.raises(NoEarlierVersionError, match="no earlier version than v1 to roll back to"):
        registry.rollback("demand", actor="test")

    assert issubclass(NoEarlierVersionError, ConflictError) and NoEarlierVersionError.http_status == 409
    assert len(registry.history("demand")) == 1


def test_only_configured_alias_names_can_be_moved(engine: Engine, tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "artifacts")
    registry = ModelRegistry(engine, store, aliases=["qa"])
    registry.register(candidate(), model_folder(tmp_path, "a"))

    for alias in ("a", "uw", "s03y_eq", "staging"):
        with pytest.raises(UnknownAliasError, match=f"unknown alias '{alias}': use one of challenger, production, qa"):
            registry.set_alias("demand", alias, 1, actor="fuzzer")
    with pytest.raises(UnknownAliasError, match="alias '7' is a number"):
        registry.set_alias("demand", "7", 1, actor="test")
    with pytest.raises(UnknownAliasError):
        registry.rollback("demand", actor="test", alias="a")
    for alias in ("qa", PRODUCTION, "challenger"):
        registry.set_alias("demand", alias, 1, actor="test")

    assert registry.aliases("demand") == {"qa": 1, PRODUCTION: 1, "challenger": 1}
    assert UnknownAliasError.http_status == 422 and UnknownAliasError.exit_code == ConfigurationError.exit_code
    default = ModelRegistry(engine, store)
    assert default.alias_names == {"production", "candidate", "staging", "challenger"}


def test_alias_names_are_settings_checked_when_they_load() -> None:
    assert Settings(_env_file=None, model_aliases=" qa , staging,qa,").alias_names == ("qa", "staging")
    assert Settings(_env_file=None).alias_names == ("production", "candidate", "staging")
    for bad in ("production,7", "Prod", "a b", "-x"):
        with pytest.raises(ValidationError, match="alias names are lower-case words"):
            Settings(_env_file=None, model_aliases=bad)
