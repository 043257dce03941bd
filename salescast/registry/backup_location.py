"""Where a backup lives: a local folder or `s3://bucket/prefix`, picked by the URL in `backup_location`.

A backup is a set of named files with `manifest.json` among them; the manifest is written last, so a
backup cut short has none and is never taken for a whole one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from salescast.config import Settings
from salescast.errors import ConfigurationError, NotFoundError, StorageError
from salescast.registry.artifacts import s3_client

if TYPE_CHECKING:  # the stubs are a development dependency
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.type_defs import PutObjectRequestTypeDef

MANIFEST = "manifest.json"


class BackupLocation(Protocol):
    uri: str

    def is_empty(self) -> bool:
        """True when nothing is stored there yet (a backup never overwrites files)."""
        ...

    def write(self, name: str, source: Path) -> None:
        """Store the file `source` under `name` (a relative slash path)."""
        ...

    def read(self, name: str, dest: Path) -> None:
        """Fetch the file stored under `name` into `dest`; NotFoundError when there is none."""
        ...


class FolderBackup:
    def __init__(self, folder: Path) -> None:
        self.folder = folder.expanduser().resolve()
        self.uri = str(self.folder)

    def is_empty(self) -> bool:
        if not self.folder.exists():
            return True
        if not self.folder.is_dir():
            raise ConfigurationError(f"{self.folder} is a file, not a folder")
        return not any(self.folder.iterdir())

    def write(self, name: str, source: Path) -> None:
        target = self.folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        partial.write_bytes(source.read_bytes())
        partial.replace(target)

    def read(self, name: str, dest: Path) -> None:
        source = self.folder / name
        if not source.is_file():
            raise NotFoundError(f"{source} is missing from the backup")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(source.read_bytes())


class S3Backup:
    def __init__(self, bucket: str, prefix: str, client: S3Client, kms_key_id: str | None = None) -> None:
        self.bucket, self.prefix, self.client, self.kms_key_id = bucket, prefix.strip("/"), client, kms_key_id
        self.uri = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def is_empty(self) -> bool:
        prefix = f"{self.prefix}/" if self.prefix else ""
        try:
            listed = self.client.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=1)
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"cannot list {self.uri}: {exc}") from exc
        return int(listed.get("KeyCount", 0)) == 0

    def write(self, name: str, source: Path) -> None:
        # Encrypted as the artifacts are: SSE-KMS with the configured key (kms_key_id), else SSE-S3.
        try:
            with source.open("rb") as body:
                request: PutObjectRequestTypeDef = {"Bucket": self.bucket, "Key": self._key(name), "Body": body}
                if self.kms_key_id:
                    request["ServerSideEncryption"] = "aws:kms"
                    request["SSEKMSKeyId"] = self.kms_key_id
                else:
                    request["ServerSideEncryption"] = "AES256"
                self.client.put_object(**request)
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"cannot write {self.uri}/{name}: {exc}") from exc

    def read(self, name: str, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.client.download_file(self.bucket, self._key(name), str(dest))
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in {"404", "NoSuchKey", "NotFound"}:
                raise NotFoundError(f"{self.uri}/{name} is missing from the backup") from exc
            raise StorageError(f"cannot read {self.uri}/{name}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"cannot read {self.uri}/{name}: {exc}") from exc


def backup_location(uri: str, settings: Settings) -> BackupLocation:
    """The backup location `uri` names: a folder path (or file://folder), or s3://bucket/prefix (reached with
    the artifact store's S3 settings: endpoint and region)."""
    if not uri:
        raise ConfigurationError("name a backup folder or s3://bucket/prefix")
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    if scheme in ("", "file"):
        return FolderBackup(Path(urlsplit(uri).path if scheme else uri))
    if scheme == "s3":
        parts = urlsplit(uri)
        if not parts.netloc:
            raise ConfigurationError(f"{uri!r} names no bucket: use s3://bucket/prefix")
        return S3Backup(parts.netloc, parts.path, s3_client(settings), kms_key_id=settings.kms_key_id)
    raise ConfigurationError(f"unsupported backup location {uri!r}: use a folder or s3://bucket/prefix")
