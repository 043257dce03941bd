"""Artifact stores: the same specification for the local folder and for S3 (moto's server)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest
from mypy_boto3_s3.client import S3Client

from salescast.config import Settings
from salescast.errors import ArtifactIntegrityError, ArtifactNotFoundError, ConfigurationError, DataValidationError
from salescast.registry.artifacts import (
    ArtifactRef,
    ArtifactStore,
    LocalArtifactStore,
    S3ArtifactStore,
    artifact_store,
    pack_folder,
)
from tests.registry.conftest import REGION, make_versioned_bucket

KEY = "models/demand/v3.tar"


def make_model_folder(root: Path, *, weights: bytes = b"\x00\x01weights\xff" * 1000) -> Path:
    """A folder shaped like a saved model: nested files, binary and text, an empty file and an empty folder."""
    (root / "lgbm" / "boosters").mkdir(parents=True)
    (root / "lgbm" / "boosters" / "b0.bin").write_bytes(weights)
    (root / "lgbm" / "params.json").write_text('{"objective": "tweedie"}\n')
    (root / "ensemble.json").write_text('{"weights": {"lgbm": 0.6, "ets": 0.4}}\n')
    (root / "backtest_metrics.csv").write_text("model,mae\nlgbm,1.25\n")
    (root / "empty.txt").write_bytes(b"")
    (root / "logs").mkdir()
    return root


def folder_contents(root: Path) -> dict[str, bytes | None]:
    """Every path below `root` with its bytes (None for folders)."""
    return {
        path.relative_to(root).as_posix(): (None if path.is_dir() else path.read_bytes())
        for path in sorted(root.rglob("*"))
    }


def evil_tar(member: str, kind: bytes = tarfile.REGTYPE) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        good = tarfile.TarInfo("model.json")
        good.size = 2
        tar.addfile(good, io.BytesIO(b"{}"))
        info = tarfile.TarInfo(member)
        info.type = kind
        if kind == tarfile.SYMTYPE:
            info.linkname = "/etc/passwd"
        else:
            info.size = 4
        tar.addfile(info, io.BytesIO(b"evil") if kind == tarfile.REGTYPE else None)
    return buffer.getvalue()


# -- both backends --------------------------------------------------------------------------------------


def test_round_trip_restores_every_file_byte_for_byte(store: ArtifactStore, tmp_path: Path) -> None:
    model = make_model_folder(tmp_path / "model")

    ref = store.put(model, KEY)
    restored = store.get(ref, tmp_path / "restored")

    assert restored == tmp_path / "restored"
    assert restored.stat().st_mode & 0o777 == 0o755
    assert folder_contents(restored) == folder_contents(model)
    assert ref.uri == store.uri_for(KEY)
    assert ref.size > 0
    assert store.exists(KEY)


def test_identical_folders_give_identical_artifacts(store: ArtifactStore, tmp_path: Path) -> None:
    first = make_model_folder(tmp_path / "first")
    second = make_model_folder(tmp_path / "elsewhere" / "second")
    # Times and permission bits other than "executable" must not change the bytes.
    for path in second.rglob("*"):
        os.utime(path, (1_000_000, 1_000_000))
    (second / "empty.txt").chmod(0o600)

    ref_a = store.put(first, "a.tar")
    ref_b = store.put(second, "b.tar")

    assert ref_a.sha256 == ref_b.sha256
    assert ref_a.size == ref_b.size


def test_the_executable_bit_is_part_of_the_content(store: ArtifactStore, tmp_path: Path) -> None:
    plain = make_model_folder(tmp_path / "plain")
    runnable = make_model_folder(tmp_path / "runnable")
    (runnable / "ensemble.json").chmod(0o755)

    ref = store.put(runnable, KEY)
    restored = store.get(ref, tmp_path / "restored")

    assert ref.sha256 != store.put(plain, "plain.tar").sha256
    assert (restored / "ensemble.json").stat().st_mode & 0o100
    assert not (restored / "empty.txt").stat().st_mode & 0o100


def test_different_content_gives_a_different_sha256(store: ArtifactStore, tmp_path: Path) -> None:
    ref_a = store.put(make_model_folder(tmp_path / "a"), "a.tar")
    ref_b = store.put(make_model_folder(tmp_path / "b", weights=b"other"), "b.tar")

    assert ref_a.sha256 != ref_b.sha256


def test_sha256_is_the_sha256_of_the_stored_bytes(store: ArtifactStore, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    model = make_model_folder(tmp_path / "model")
    sha256, size = pack_folder(model, buffer)

    ref = store.put(model, KEY)

    assert (ref.sha256, ref.size) == (sha256, size)
    assert hashlib.sha256(buffer.getvalue()).hexdigest() == sha256


def test_tampered_artifact_is_refused_and_nothing_is_unpacked(
    store: ArtifactStore, write_raw: Callable[[str, bytes], None], tmp_path: Path
) -> None:
    model = make_model_folder(tmp_path / "model")
    ref = store.put(model, KEY)
    forged = io.BytesIO()
    pack_folder(make_model_folder(tmp_path / "forged", weights=b"backdoor"), forged)
    write_raw(KEY, forged.getvalue())
    # On S3 a recorded version can never be overwritten, so the tampering reaches only a ref to the latest.
    latest = dataclasses.replace(ref, version_id=None)
    dest = tmp_path / "restored"

    with pytest.raises(ArtifactIntegrityError) as raised:
        store.get(latest, dest)

    assert ref.sha256 in str(raised.value)
    assert hashlib.sha256(forged.getvalue()).hexdigest() in str(raised.value)
    assert not dest.exists()
    assert [p.name for p in tmp_path.iterdir() if "restored" in p.name] == []


def test_wrong_recorded_sha256_is_refused(store: ArtifactStore, tmp_path: Path) -> None:
    ref = store.put(make_model_folder(tmp_path / "model"), KEY)
    wrong = dataclasses.replace(ref, sha256="0" * 64)

    with pytest.raises(ArtifactIntegrityError, match=f"expected sha256 {'0' * 64}, got {ref.sha256}"):
        store.get(wrong, tmp_path / "restored")

    assert not (tmp_path / "restored").exists()


@pytest.mark.parametrize("sha256", ["", "not-a-checksum"])
def test_an_artifact_without_a_recorded_sha256_is_never_unpacked(
    store: ArtifactStore, tmp_path: Path, sha256: str
) -> None:
    ref = store.put(make_model_folder(tmp_path / "model"), KEY)

    with pytest.raises(ArtifactIntegrityError, match="no valid sha256"):
        store.get(dataclasses.replace(ref, sha256=sha256), tmp_path / "restored")

    assert not (tmp_path / "restored").exists()


@pytest.mark.parametrize(
    ("member", "kind"),
    [
        ("../evil", tarfile.REGTYPE),
        ("nested/../../evil", tarfile.REGTYPE),
        ("/tmp/evil", tarfile.REGTYPE),
        ("link", tarfile.SYMTYPE),
    ],
)
def test_unsafe_archive_members_are_refused(
    store: ArtifactStore,
    write_raw: Callable[[str, bytes], None],
    tmp_path: Path,
    member: str,
    kind: bytes,
) -> None:
    data = evil_tar(member, kind)
    write_raw(KEY, data)
    ref = ArtifactRef(uri=store.uri_for(KEY), sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    dest = tmp_path / "deep" / "restored"

    with pytest.raises(ArtifactIntegrityError, match=r"unsafe member|not a file or folder"):
        store.get(ref, dest)

    assert not dest.exists()
    assert not (tmp_path / "deep" / "evil").exists()
    assert list((tmp_path / "deep").iterdir()) == []


def test_folders_with_links_are_not_packed(store: ArtifactStore, tmp_path: Path) -> None:
    model = make_model_folder(tmp_path / "model")
    (model / "lgbm" / "secrets").symlink_to("/etc")

    with pytest.raises(DataValidationError, match="only regular files and folders"):
        store.put(model, KEY)

    assert not store.exists(KEY)


def test_get_into_a_folder_that_is_not_empty_is_refused(store: ArtifactStore, tmp_path: Path) -> None:
    ref = store.put(make_model_folder(tmp_path / "model"), KEY)
    dest = tmp_path / "restored"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")

    with pytest.raises(ConfigurationError, match="not an empty folder"):
        store.get(ref, dest)

    assert folder_contents(dest) == {"keep.txt": b"mine"}


def test_exists_and_delete(store: ArtifactStore, tmp_path: Path) -> None:
    ref = store.put(make_model_folder(tmp_path / "model"), KEY)

    assert store.exists(KEY)
    assert not store.exists("models/demand/v4.tar")
    store.delete(KEY)
    store.delete(KEY)  # deleting what is gone is not an error
    assert not store.exists(KEY)
    with pytest.raises(ArtifactNotFoundError):
        store.get(dataclasses.replace(ref, version_id=None), tmp_path / "restored")


@pytest.mark.parametrize("key", ["", "/abs.tar", "../up.tar", "a//b.tar", "a/./b.tar", "a\\b.tar"])
def test_unsafe_keys_are_refused(store: ArtifactStore, tmp_path: Path, key: str) -> None:
    with pytest.raises(ConfigurationError, match="invalid artifact key"):
        store.put(make_model_folder(tmp_path / "model"), key)


def test_put_leaves_no_temporary_files(store: ArtifactStore, tmp_path: Path) -> None:
    store.put(make_model_folder(tmp_path / "model"), KEY)
    store.put(make_model_folder(tmp_path / "again"), KEY)

    if isinstance(store, LocalArtifactStore):
        assert [p.relative_to(store.root).as_posix() for p in store.root.rglob("*") if p.is_file()] == [KEY]
    else:
        assert isinstance(store, S3ArtifactStore)
        listed = store.client.list_objects_v2(Bucket=store.bucket)
        assert [item["Key"] for item in listed["Contents"]] == [store.object_key(KEY)]


# -- S3 only ------------------------------------------------------------------------------------------------


def test_s3_objects_are_encrypted_with_aes256_by_default(aws_settings: Settings, s3: S3Client, tmp_path: Path) -> None:
    bucket = make_versioned_bucket(s3)
    store = artifact_store(f"s3://{bucket}/models", aws_settings)

    store.put(make_model_folder(tmp_path / "model"), KEY)

    head = s3.head_object(Bucket=bucket, Key=f"models/{KEY}")
    assert head["ServerSideEncryption"] == "AES256"
    assert head["Metadata"]["sha256"]


def test_s3_objects_are_encrypted_with_the_configured_kms_key(
    aws_settings: Settings, s3: S3Client, tmp_path: Path
) -> None:
    kms = boto3.client("kms", endpoint_url=aws_settings.s3_endpoint_url, region_name=REGION)
    key_id = kms.create_key(Description="salescast artifacts")["KeyMetadata"]["KeyId"]
    bucket = make_versioned_bucket(s3)
    store = artifact_store(f"s3://{bucket}/models", aws_settings.model_copy(update={"kms_key_id": key_id}))

    ref = store.put(make_model_folder(tmp_path / "model"), KEY)

    head = s3.head_object(Bucket=bucket, Key=f"models/{KEY}")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert key_id in head["SSEKMSKeyId"]
    assert folder_contents(store.get(ref, tmp_path / "restored")) == folder_contents(tmp_path / "model")


def test_s3_versions_keep_every_upload_reachable(aws_settings: Settings, s3: S3Client, tmp_path: Path) -> None:
    bucket = make_versioned_bucket(s3)
    store = artifact_store(f"s3://{bucket}/models", aws_settings)
    first_model = make_model_folder(tmp_path / "first", weights=b"first")
    second_model = make_model_folder(tmp_path / "second", weights=b"second")

    first = store.put(first_model, KEY)
    second = store.put(second_model, KEY)
    store.delete(KEY)  # a delete marker: recorded versions stay reachable

    assert first.version_id and second.version_id
    assert first.version_id != second.version_id
    assert folder_contents(store.get(first, tmp_path / "got-first")) == folder_contents(first_model)
    assert folder_contents(store.get(second, tmp_path / "got-second")) == folder_contents(second_model)


def test_s3_unknown_version_is_not_found(aws_settings: Settings, s3: S3Client, tmp_path: Path) -> None:
    bucket = make_versioned_bucket(s3)
    store = artifact_store(f"s3://{bucket}", aws_settings)
    ref = store.put(make_model_folder(tmp_path / "model"), KEY)

    with pytest.raises(ArtifactNotFoundError, match="version"):
        store.get(dataclasses.replace(ref, version_id="no-such-version"), tmp_path / "restored")


def test_s3_unversioned_bucket_gives_refs_without_version(aws_settings: Settings, s3: S3Client, tmp_path: Path) -> None:
    s3.create_bucket(Bucket="plain")
    store = artifact_store("s3://plain/p", aws_settings)

    ref = store.put(make_model_folder(tmp_path / "model"), KEY)

    assert ref.version_id is None
    assert ref.uri == f"s3://plain/p/{KEY}"
    assert folder_contents(store.get(ref, tmp_path / "restored")) == folder_contents(tmp_path / "model")


# -- the chooser ----------------------------------------------------------------------------------------


def test_chooser_maps_file_uris_and_bare_paths_to_local_stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(_env_file=None)
    monkeypatch.chdir(tmp_path)

    by_uri = artifact_store(f"file://{tmp_path}/artifacts", settings)
    by_path = artifact_store(str(tmp_path / "artifacts"), settings)
    relative = artifact_store("file://.salescast/artifacts", settings)

    assert isinstance(by_uri, LocalArtifactStore) and by_uri.root == tmp_path / "artifacts"
    assert isinstance(by_path, LocalArtifactStore) and by_path.root == tmp_path / "artifacts"
    assert isinstance(relative, LocalArtifactStore) and relative.root == tmp_path / ".salescast" / "artifacts"
    assert by_uri.uri_for(KEY) == f"file://{tmp_path}/artifacts/{KEY}"


def test_chooser_maps_s3_uris_with_the_settings_endpoint() -> None:
    settings = Settings(_env_file=None, s3_endpoint_url="http://127.0.0.1:9", s3_region="eu-west-1", kms_key_id="k")

    store = artifact_store("s3://models-bucket/team/salescast/", settings)

    assert isinstance(store, S3ArtifactStore)
    assert (store.bucket, store.prefix, store.kms_key_id) == ("models-bucket", "team/salescast", "k")
    assert store.client.meta.endpoint_url == "http://127.0.0.1:9"
    assert store.client.meta.region_name == "eu-west-1"
    assert store.uri_for(KEY) == f"s3://models-bucket/team/salescast/{KEY}"


@pytest.mark.parametrize("uri", ["ftp://host/artifacts", "s3://", "gs://bucket/x", ""])
def test_chooser_rejects_other_schemes(uri: str) -> None:
    with pytest.raises(ConfigurationError):
        artifact_store(uri, Settings(_env_file=None))


def test_a_ref_from_another_store_is_refused(tmp_path: Path) -> None:
    ours = LocalArtifactStore(tmp_path / "ours")
    theirs = LocalArtifactStore(tmp_path / "theirs")
    ref = theirs.put(make_model_folder(tmp_path / "model"), KEY)

    with pytest.raises(ConfigurationError, match="not in the artifact store"):
        ours.get(ref, tmp_path / "restored")
