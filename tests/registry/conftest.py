"""Artifact-store fixtures: a real moto S3 server and both stores, so every test runs on both backends."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
from mypy_boto3_s3.client import S3Client

from salescast.config import Settings
from salescast.registry.artifacts import ArtifactStore, LocalArtifactStore, S3ArtifactStore, artifact_store
from tests.conftest import free_port

MOTO_SERVER = Path(sys.executable).parent / "moto_server"
REGION = "us-east-1"
# moto accepts any credentials; real-looking ones keep botocore from searching the machine for others.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def _post(url: str) -> None:
    urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=5).close()


@contextlib.contextmanager
def running_moto_server() -> Iterator[str]:
    """moto's server mode on 127.0.0.1 with the AWS environment set; yields its endpoint URL.

    A plain context manager (not only a fixture) so that other test packages can start their own.
    """
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
                pytest.fail(f"moto_server exited with {process.returncode}: {stderr[-2000:]}")
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    pytest.fail(f"moto_server did not answer on {endpoint} within 30 s")
                time.sleep(0.1)
        with pytest.MonkeyPatch.context() as patch:
            for name, value in AWS_ENV.items():
                patch.setenv(name, value)
            yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()


def reset_moto(endpoint: str) -> None:
    _post(f"{endpoint}/moto-api/reset")


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    with running_moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def moto(moto_server: str) -> str:
    """The moto endpoint, emptied of everything earlier tests created."""
    reset_moto(moto_server)
    return moto_server


@pytest.fixture
def aws_settings(moto: str, tmp_path: Path) -> Settings:
    return Settings(_env_file=None, home=tmp_path / "home", s3_endpoint_url=moto, s3_region=REGION)


@pytest.fixture
def s3(aws_settings: Settings) -> S3Client:
    return boto3.client("s3", endpoint_url=aws_settings.s3_endpoint_url, region_name=REGION)


def make_versioned_bucket(s3: S3Client) -> str:
    bucket = f"models-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return bucket


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    """The same tests run on a local folder and on a versioned S3 bucket, both built by the chooser."""
    if request.param == "local":
        return artifact_store((tmp_path / "artifacts").as_uri(), Settings(_env_file=None))
    aws_settings: Settings = request.getfixturevalue("aws_settings")
    bucket = make_versioned_bucket(request.getfixturevalue("s3"))
    return artifact_store(f"s3://{bucket}/salescast/artifacts", aws_settings)


@pytest.fixture
def write_raw(store: ArtifactStore) -> Callable[[str, bytes], None]:
    """Writes bytes under a key behind the store's back, as corruption or an attacker would."""
    if isinstance(store, LocalArtifactStore):

        def write_local(key: str, data: bytes) -> None:
            path = store.root / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

        return write_local
    assert isinstance(store, S3ArtifactStore)

    def write_s3(key: str, data: bytes) -> None:
        store.client.put_object(Bucket=store.bucket, Key=store.object_key(key), Body=data)

    return write_s3
