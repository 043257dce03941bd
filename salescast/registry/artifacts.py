"""Artifact stores: a model folder packed as one deterministic tar, kept on local disk or on S3.

`artifact_store` is the one place that maps a URI scheme to a backend. Every backend hands out an
`ArtifactRef` that carries the tar's sha256; `get` refuses to unpack anything whose bytes do not match
it, so a registered model version cannot silently change underneath the registry.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, BinaryIO, Protocol
from urllib.parse import unquote, urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from salescast.config import Settings
from salescast.errors import (
    ArtifactIntegrityError,
    ArtifactNotFoundError,
    ConfigurationError,
    DataValidationError,
    StorageError,
)

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.type_defs import PutObjectRequestTypeDef

_CHUNK = 1 << 20
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# Models never need more than "executable or not"; anything finer would make the bytes depend on umask.
_DIR_MODE = 0o755
_EXEC_MODE = 0o755
_FILE_MODE = 0o644


@dataclass(frozen=True)
class ArtifactRef:
    """Where an artifact lives and what its bytes must hash to."""

    uri: str
    sha256: str
    size: int
    version_id: str | None = None


class ArtifactStore(Protocol):
    """Stores folders as tar artifacts under slash-separated keys such as `models/demand/v3.tar`."""

    def put(self, local_folder: Path, key: str) -> ArtifactRef:
        """Pack `local_folder` deterministically and store it under `key`, atomically."""
        ...

    def get(self, ref: ArtifactRef, dest: Path) -> Path:
        """Fetch the artifact, verify its sha256, unpack it into `dest` (absent or empty) and return `dest`."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove the artifact under `key`; a missing one is not an error."""
        ...

    def uri_for(self, key: str) -> str: ...


# -- packing and unpacking, shared by every backend --------------------------------------------------


def validate_key(key: str) -> str:
    """Return `key` if it is a safe relative slash path; keys end up in file paths and object names."""
    parts = key.split("/")
    if not key or key.startswith("/") or "\\" in key or any(part in ("", ".", "..") for part in parts):
        raise ConfigurationError(f"invalid artifact key {key!r}: use a relative path like 'models/demand/v3.tar'")
    return key


def _normalised_info(path: Path, arcname: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(arcname)
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    mode = path.lstat().st_mode
    if stat.S_ISDIR(mode):
        info.type = tarfile.DIRTYPE
        info.mode = _DIR_MODE
    else:
        info.type = tarfile.REGTYPE
        info.size = path.stat().st_size
        info.mode = _EXEC_MODE if mode & stat.S_IXUSR else _FILE_MODE
    return info


def _entries(folder: Path) -> Iterator[tuple[Path, str]]:
    """Every directory and regular file below `folder`, in a fixed order (sorted by path)."""
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        base = Path(dirpath)
        for name in dirnames + filenames:
            path = base / name
            mode = path.lstat().st_mode
            if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                # A link could point outside the folder and would unpack differently elsewhere.
                raise DataValidationError(f"cannot pack {path}: only regular files and folders go into an artifact")
            found.append((path.relative_to(folder).as_posix(), path))
    for arcname, path in sorted(found):
        yield path, arcname


def pack_folder(folder: Path, out: BinaryIO) -> tuple[str, int]:
    """Write `folder` as a tar to the seekable file `out` (from its start) and return the tar's (sha256, size).

    Identical folders give identical bytes wherever they are and whoever wrote them: entries are sorted and
    times, owners and modes are normalised.
    """
    if not folder.is_dir():
        raise DataValidationError(f"cannot pack {folder}: not a folder")
    out.seek(0)
    out.truncate()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, arcname in _entries(folder):
            info = _normalised_info(path, arcname)
            if info.isdir():
                tar.addfile(info)
            else:
                with path.open("rb") as fh:
                    tar.addfile(info, fh)
    out.flush()
    size = out.tell()
    out.seek(0)
    sha = hashlib.sha256()
    while chunk := out.read(_CHUNK):
        sha.update(chunk)
    out.seek(0)
    return sha.hexdigest(), size


def _require_checksum(ref: ArtifactRef) -> str:
    expected = ref.sha256.lower()
    if not _SHA256_HEX.fullmatch(expected):
        raise ArtifactIntegrityError(f"refusing to unpack {ref.uri}: no valid sha256 recorded (got {ref.sha256!r})")
    return expected


def _receive(chunks: Iterable[bytes], into: Path) -> str:
    """Write the chunks to `into` and return their sha256."""
    sha = hashlib.sha256()
    with into.open("wb") as fh:
        for chunk in chunks:
            sha.update(chunk)
            fh.write(chunk)
    return sha.hexdigest()


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            yield chunk


def _verify(ref: ArtifactRef, actual: str, expected: str) -> None:
    if actual != expected:
        raise ArtifactIntegrityError(
            f"artifact {ref.uri} is corrupt or was replaced: expected sha256 {expected}, got {actual}"
        )


def _safe_members(tar: tarfile.TarFile, uri: str) -> list[tarfile.TarInfo]:
    """All members, after checking every one of them: nothing is extracted unless the whole archive is safe."""
    members = tar.getmembers()
    seen: set[str] = set()
    for member in members:
        name = PurePosixPath(member.name)
        if name.is_absolute() or ".." in name.parts or "\\" in member.name:
            raise ArtifactIntegrityError(f"artifact {uri} has an unsafe member path {member.name!r}")
        if not (member.isfile() or member.isdir()):
            raise ArtifactIntegrityError(f"artifact {uri} has a member that is not a file or folder: {member.name!r}")
        normalised = name.as_posix()
        if normalised in seen:
            # A second copy would silently overwrite the first on extraction.
            raise ArtifactIntegrityError(f"artifact {uri} holds {member.name!r} twice")
        seen.add(normalised)
    return members


def _prepare_dest(dest: Path) -> None:
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ConfigurationError(f"cannot unpack into {dest}: it exists and is not an empty folder")


def _unpack(ref: ArtifactRef, tar_path: Path, dest: Path) -> Path:
    """Unpack into a sibling staging folder and rename it into place, so `dest` is all or nothing."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    try:
        try:
            with tarfile.open(tar_path, mode="r:") as tar:
                members = _safe_members(tar, ref.uri)
                # The "data" filter re-checks paths and strips modes we would not want (setuid, group write).
                tar.extractall(staging, members=members, filter="data")
        except tarfile.TarError as exc:
            raise ArtifactIntegrityError(f"artifact {ref.uri} is not a readable tar: {exc}") from exc
        staging.chmod(_DIR_MODE)  # mkdtemp makes it private; the unpacked model is read by other processes
        if dest.exists():
            dest.rmdir()  # empty, checked before the download
        staging.rename(dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return dest


@contextlib.contextmanager
def _scratch_file(directory: Path, prefix: str) -> Iterator[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=".partial", dir=directory)
    os.close(fd)
    path = Path(name)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


# -- local folder ---------------------------------------------------------------------------------------


class LocalArtifactStore:
    """Artifacts as files under `root` (the embedded default); writes are temp file + fsync + rename."""

    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().resolve()

    def _path(self, key: str) -> Path:
        return self.root / validate_key(key)

    def uri_for(self, key: str) -> str:
        return self._path(key).as_uri()

    def _key_of(self, uri: str) -> str:
        if not uri.startswith("file://"):
            raise ConfigurationError(f"{uri} is not a file:// artifact URI")
        path = _file_uri_path(uri)
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            raise ConfigurationError(f"{uri} is not in the artifact store at {self.root}") from None

    def put(self, local_folder: Path, key: str) -> ArtifactRef:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        with _scratch_file(target.parent, f".{target.name}.") as tmp:
            with tmp.open("w+b") as fh:
                sha256, size = pack_folder(local_folder, fh)
                fh.flush()
                os.fsync(fh.fileno())
            # mkstemp makes the file private; artifacts are read by other processes (serve, worker).
            tmp.chmod(0o644)
            tmp.replace(target)
        _fsync_dir(target.parent)
        return ArtifactRef(uri=target.as_uri(), sha256=sha256, size=size)

    def get(self, ref: ArtifactRef, dest: Path) -> Path:
        expected = _require_checksum(ref)
        if ref.version_id is not None:
            raise ConfigurationError(f"{ref.uri}: a local artifact store keeps no versions")
        source = self._path(self._key_of(ref.uri))
        _prepare_dest(dest)
        if not source.is_file():
            raise ArtifactNotFoundError(f"no artifact at {ref.uri}")
        # Verify a private copy: checking the original and then unpacking it would let it change in between.
        with _scratch_file(dest.parent, f".{dest.name}.") as tmp:
            _verify(ref, _receive(_file_chunks(source), tmp), expected)
            return _unpack(ref, tmp, dest)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable: without this a crash can lose the new directory entry."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _file_uri_path(uri: str) -> Path:
    """The path of a `file://` URI; `file://relative/dir` is relative to the working directory, as the
    README's default `file://.salescast/artifacts` is."""
    rest = uri.removeprefix("file://")
    if rest.startswith("localhost/"):
        rest = rest.removeprefix("localhost")
    if not rest:
        raise ConfigurationError(f"{uri!r} names no folder")
    return Path(unquote(rest)).expanduser().resolve()


# -- S3 -------------------------------------------------------------------------------------------------


class S3ArtifactStore:
    """Artifacts as objects under `s3://bucket/prefix/`, encrypted at rest (SSE-KMS with `kms_key_id`,
    else SSE-S3), each written by one PutObject so a reader never sees a partial artifact. On a
    versioned bucket every ref records its VersionId and `get` fetches exactly that version."""

    def __init__(self, bucket: str, prefix: str, client: S3Client, kms_key_id: str | None = None) -> None:
        if not bucket:
            raise ConfigurationError("an S3 artifact store needs a bucket")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client
        self.kms_key_id = kms_key_id

    def object_key(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri_for(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.object_key(key)}"

    def _object_key_of(self, uri: str) -> str:
        parts = urlsplit(uri)
        object_key = parts.path.lstrip("/")
        inside = not self.prefix or object_key.startswith(self.prefix + "/")
        if parts.scheme != "s3" or parts.netloc != self.bucket or not inside:
            raise ConfigurationError(f"{uri} is not in the artifact store at s3://{self.bucket}/{self.prefix}")
        return object_key

    def put(self, local_folder: Path, key: str) -> ArtifactRef:
        object_key = self.object_key(key)
        # Packed to a local file first: S3 then gets the finished bytes in one request, with their checksum.
        with tempfile.TemporaryFile() as fh:
            sha256, size = pack_folder(local_folder, fh)
            fh.seek(0)
            request: PutObjectRequestTypeDef = {
                "Bucket": self.bucket,
                "Key": object_key,
                "Body": fh,
                "ContentType": "application/x-tar",
                "ChecksumSHA256": base64.b64encode(bytes.fromhex(sha256)).decode("ascii"),
                "Metadata": {"sha256": sha256},
            }
            if self.kms_key_id:
                request["ServerSideEncryption"] = "aws:kms"
                request["SSEKMSKeyId"] = self.kms_key_id
            else:
                request["ServerSideEncryption"] = "AES256"
            try:
                response = self.client.put_object(**request)
            except (ClientError, BotoCoreError) as exc:
                raise StorageError(f"could not store s3://{self.bucket}/{object_key}: {exc}") from exc
        version_id = response.get("VersionId")
        return ArtifactRef(
            uri=f"s3://{self.bucket}/{object_key}",
            sha256=sha256,
            size=size,
            # S3 reports "null" for objects written while versioning was off or suspended.
            version_id=version_id if version_id and version_id != "null" else None,
        )

    def get(self, ref: ArtifactRef, dest: Path) -> Path:
        expected = _require_checksum(ref)
        object_key = self._object_key_of(ref.uri)
        _prepare_dest(dest)
        with _scratch_file(dest.parent, f".{dest.name}.") as tmp:
            try:
                if ref.version_id:
                    response = self.client.get_object(Bucket=self.bucket, Key=object_key, VersionId=ref.version_id)
                else:
                    response = self.client.get_object(Bucket=self.bucket, Key=object_key)
                actual = _receive(response["Body"].iter_chunks(_CHUNK), tmp)
            except ClientError as exc:
                if _is_missing(exc):
                    version = f" (version {ref.version_id})" if ref.version_id else ""
                    raise ArtifactNotFoundError(f"no artifact at {ref.uri}{version}") from exc
                raise StorageError(f"could not read {ref.uri}: {exc}") from exc
            except BotoCoreError as exc:
                raise StorageError(f"could not read {ref.uri}: {exc}") from exc
            _verify(ref, actual, expected)
            return _unpack(ref, tmp, dest)

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as exc:
            if _is_missing(exc):
                return False
            raise StorageError(f"could not check {self.uri_for(key)}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"could not check {self.uri_for(key)}: {exc}") from exc
        return True

    def delete(self, key: str) -> None:
        """On a versioned bucket this adds a delete marker: refs with a version id still resolve."""
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"could not delete {self.uri_for(key)}: {exc}") from exc


def _is_missing(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return error.get("Code") in {"404", "NoSuchKey", "NoSuchVersion", "NotFound"} or status == 404


def s3_client(settings: Settings) -> S3Client:
    """An S3 client for the configured endpoint; path-style addressing because S3-compatible servers
    (MinIO, moto) are usually reached by IP or a single host name, not per-bucket DNS names."""
    config = Config(s3={"addressing_style": "path"}) if settings.s3_endpoint_url else None
    return boto3.client("s3", endpoint_url=settings.s3_endpoint_url, region_name=settings.s3_region, config=config)


def artifact_store(uri: str, settings: Settings) -> ArtifactStore:
    """The artifact store a URI names: `file://folder`, a bare folder path, or `s3://bucket/prefix`."""
    if "://" not in uri:
        if not uri:
            raise ConfigurationError("the artifact URI is empty")
        return LocalArtifactStore(Path(uri))
    scheme = uri.split("://", 1)[0].lower()
    if scheme == "file":
        return LocalArtifactStore(_file_uri_path(uri))
    if scheme == "s3":
        parts = urlsplit(uri)
        if not parts.netloc:
            raise ConfigurationError(f"{uri!r} names no bucket: use s3://bucket/prefix")
        return S3ArtifactStore(parts.netloc, parts.path, s3_client(settings), kms_key_id=settings.kms_key_id)
    raise ConfigurationError(
        f"unsupported artifact URI {uri!r}: use file://folder, a folder path or s3://bucket/prefix"
    )


__all__ = [
    "ArtifactRef",
    "ArtifactStore",
    "LocalArtifactStore",
    "S3ArtifactStore",
    "artifact_store",
    "pack_folder",
    "s3_client",
    "validate_key",
]
