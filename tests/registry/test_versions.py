"""The registry: versions reload bit-identically, aliases are atomic and audited, crashes leave no trace."""

from __future__ import annotations

import datetime as dt
import filecmp
import itertools
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from salescast.errors import ArtifactIntegrityError, ArtifactNotFoundError, SalescastError
from salescast.registry.artifacts import ArtifactRef, ArtifactStore
from salescast.registry.versions import PRODUCTION, Candidate, ModelRegistry


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
    assert len(events) == 9
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


def test_a_rejected_version_cannot_be_promoted(registry: ModelRegistry, tmp_path: Path) -> None:
    rejected = registry.register(candidate(status="rejected"), model_folder(tmp_path, "a"))

    with pytest.raises(SalescastError, match="was rejected"):
        registry.set_alias("demand", PRODUCTION, rejected.version, actor="test")
