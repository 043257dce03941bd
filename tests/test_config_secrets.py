"""Settings read from AWS Secrets Manager (moto's server on 127.0.0.1) when a `*_secret` setting names one,
and one clear line when the secret is missing, malformed or Secrets Manager cannot be reached."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from mypy_boto3_secretsmanager.client import SecretsManagerClient

from salescast.config import Settings
from salescast.errors import ConfigurationError
from tests.conftest import free_port
from tests.registry.conftest import REGION, reset_moto, running_moto_server

DATABASE_URL = "postgresql+psycopg://salescast:s3cret@db.internal:5432/salescast?sslmode=require"


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with running_moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def secrets(moto_endpoint: str) -> SecretsManagerClient:
    reset_moto(moto_endpoint)
    return boto3.client("secretsmanager", endpoint_url=moto_endpoint, region_name=REGION)


def settings(endpoint: str, **values: object) -> Settings:
    return Settings(_env_file=None, secrets_endpoint_url=endpoint, **values)  # type: ignore[arg-type]


def test_named_secrets_fill_their_settings(secrets: SecretsManagerClient, moto_endpoint: str) -> None:
    database = secrets.create_secret(Name="salescast-dev/database-url", SecretString=DATABASE_URL)
    secrets.create_secret(Name="salescast-dev/redis", SecretString=json.dumps({"auth_token": "t0ken", "user": "x"}))
    secrets.create_secret(Name="salescast-dev/webhook", SecretString="https://hooks.example.com/services/T/B/X")

    loaded = settings(
        moto_endpoint,
        database_url_secret=database["ARN"],  # by ARN: the client's region comes from it
        redis_password_secret="salescast-dev/redis#auth_token",  # one key of a JSON secret
        alert_url_secret="salescast-dev/webhook",
    )

    assert loaded.database_url == DATABASE_URL
    assert loaded.resolved_database_url == DATABASE_URL
    assert loaded.redis_password is not None and loaded.redis_password.get_secret_value() == "t0ken"
    assert loaded.alert_url == "https://hooks.example.com/services/T/B/X"
    assert "t0ken" not in repr(loaded)  # a password from a secret stays out of logs and tracebacks


def test_aws_endpoint_url_from_the_environment_is_honoured(
    secrets: SecretsManagerClient, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets.create_secret(Name="read-replica-url", SecretString="postgresql+psycopg://reader@replica/salescast")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("SALESCAST_DATABASE_READ_URL_SECRET", "read-replica-url")

    assert Settings(_env_file=None).database_read_url == "postgresql+psycopg://reader@replica/salescast"


def test_a_missing_secret_is_one_clear_line(secrets: SecretsManagerClient, moto_endpoint: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        settings(moto_endpoint, database_url_secret="salescast-dev/no-such-secret")
    assert str(raised.value) == (
        "SALESCAST_DATABASE_URL_SECRET names secret 'salescast-dev/no-such-secret', which Secrets Manager does not have"
    )


def test_a_json_secret_without_the_key_is_refused(secrets: SecretsManagerClient, moto_endpoint: str) -> None:
    secrets.create_secret(Name="redis", SecretString=json.dumps({"token": "x"}))
    with pytest.raises(ConfigurationError, match=r"secret 'redis' \(SALESCAST_REDIS_PASSWORD_SECRET\) is not a JSON"):
        settings(moto_endpoint, redis_password_secret="redis#auth_token")
    secrets.create_secret(Name="plain", SecretString="not json")
    with pytest.raises(ConfigurationError, match="is not a JSON object with key 'auth_token'"):
        settings(moto_endpoint, redis_password_secret="plain#auth_token")


def test_a_value_and_its_secret_together_are_refused(secrets: SecretsManagerClient, moto_endpoint: str) -> None:
    secrets.create_secret(Name="db", SecretString=DATABASE_URL)
    both = "set SALESCAST_DATABASE_URL or SALESCAST_DATABASE_URL_SECRET, not both"
    with pytest.raises(ConfigurationError, match=both):
        settings(moto_endpoint, database_url="sqlite:///x.db", database_url_secret="db")


def test_an_unreachable_secrets_manager_fails_fast_with_one_line() -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(ConfigurationError) as raised:
        settings(nowhere, database_url_secret="salescast-dev/database-url")
    message = str(raised.value)
    assert message.startswith(
        "cannot reach Secrets Manager for SALESCAST_DATABASE_URL_SECRET ('salescast-dev/database-url')"
    )
    assert nowhere in message and "\n" not in message
    assert time.monotonic() - started < 15


def test_the_cli_stops_on_a_missing_secret_with_one_line_and_the_configuration_exit_code(
    secrets: SecretsManagerClient, moto_endpoint: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "SALESCAST_HOME": str(tmp_path / "home"),
        "SALESCAST_DATABASE_URL_SECRET": "gone",
        "SALESCAST_SECRETS_ENDPOINT_URL": moto_endpoint,
    }
    env.pop("SALESCAST_DATABASE_URL", None)
    run = subprocess.run(
        [sys.executable, "-m", "salescast.cli", "data", "summary"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == ConfigurationError.exit_code
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert lines == ["error: SALESCAST_DATABASE_URL_SECRET names secret 'gone', which Secrets Manager does not have"], (
        run.stderr
    )
