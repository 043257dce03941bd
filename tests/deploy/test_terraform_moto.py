"""`terraform apply` of deploy/terraform/local-sim (the kms, storage, secrets and messaging modules of the real
stack) against moto's server, then salescast pointed at what it made, then `terraform destroy`.

One test, because an apply costs about 30 s and the three round trips share it: the artifact store on the
artifacts bucket, an alert through the SNS sink to a subscribed SQS queue, the database URL read back from
the secret. Bounded by pytest-timeout; the machine's moto_server is the one of the dev dependencies.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from salescast.config import Settings
from salescast.monitoring.alerts import Alert, alert_sink
from salescast.registry.artifacts import artifact_store
from salescast.serving.cache import make_cache
from tests.deploy.tooling import PLUGIN_DIR, run, terraform, terraform_copy, terraform_env
from tests.registry.conftest import REGION, running_moto_server
from tests.serving.redis_servers import password_redis

SIM_DATABASE_URL = "postgresql+psycopg://salescast:sim-password@db.internal:5432/salescast?sslmode=require"


def client(service: str, endpoint: str) -> Any:
    # Any: the boto3 stubs of this project cover s3, sns, sqs and kms, not secretsmanager.
    factory: Any = boto3.client
    return factory(service, endpoint_url=endpoint, region_name=REGION)


async def cache_round_trip(settings: Settings) -> tuple[bytes, bool]:
    """Store an entry through salescast's cache on `settings`, then read it back (a hit)."""
    cache = make_cache(settings)

    async def compute() -> bytes:
        return b"cached"

    try:
        await cache.get_or_compute("deploy:smoke", compute)
        return await cache.get_or_compute("deploy:smoke", compute)
    finally:
        await cache.close()


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_apply_to_moto_then_salescast_uses_the_bucket_topic_and_secret(tmp_path: Path) -> None:
    binary = terraform()
    sim = terraform_copy(tmp_path) / "local-sim"
    with running_moto_server() as endpoint:
        env = terraform_env(tmp_path)
        run([binary, "init", f"-plugin-dir={PLUGIN_DIR}", "-no-color"], cwd=sim, env=env)
        apply = [binary, "apply", "-auto-approve", "-no-color", f"-var=endpoint={endpoint}"]
        run(apply, cwd=sim, env=env, timeout=150)
        try:
            outputs = {k: v["value"] for k, v in json.loads(run([binary, "output", "-json"], cwd=sim, env=env)).items()}
            bucket, key_arn = outputs["artifacts_bucket"], outputs["kms_key_arn"]

            # The bucket is what the module promises: versioned, SSE-KMS with the stack's key, private.
            s3 = client("s3", endpoint)
            assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
            rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
            assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}
            block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
            assert all(block.values()) and len(block) == 4

            # salescast's artifact store on it, through its own settings.
            settings = Settings(
                home=tmp_path / "home",
                artifact_uri=f"s3://{bucket}/models",
                s3_endpoint_url=endpoint,
                s3_region=REGION,
                kms_key_id=key_arn,
                sns_endpoint_url=endpoint,
            )
            model = tmp_path / "model"
            model.mkdir()
            (model / "weights.bin").write_bytes(b"\x00\x01weights" * 100)
            store = artifact_store(settings.resolved_artifact_uri, settings)
            ref = store.put(model, "demand/1")
            assert ref.uri.startswith(f"s3://{bucket}/models/demand/1")
            head = s3.head_object(Bucket=bucket, Key=ref.uri.removeprefix(f"s3://{bucket}/"))
            assert head["ServerSideEncryption"] == "aws:kms"
            restored = store.get(ref, tmp_path / "restored")
            assert (restored / "weights.bin").read_bytes() == (model / "weights.bin").read_bytes()

            # An alert through the SNS sink reaches a queue subscribed to the topic.
            sqs = client("sqs", endpoint)
            queue_url = sqs.create_queue(QueueName="alerts-inbox")["QueueUrl"]
            attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
            queue_arn = attributes["QueueArn"]
            client("sns", endpoint).subscribe(
                TopicArn=outputs["alerts_topic_arn"],
                Protocol="sqs",
                Endpoint=queue_arn,
                Attributes={"RawMessageDelivery": "true"},
            )
            alert = Alert(event="deploy.smoke", severity="warning", summary="terraform-made topic", details={"n": 1})
            alert_sink(f"sns://{outputs['alerts_topic_arn']}", settings).send(alert)
            messages = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=2).get("Messages", [])
            assert [json.loads(m["Body"]) for m in messages] == [alert.to_dict()]

            # The database URL secret: encrypted with the stack's key, read back as written.
            secrets = client("secretsmanager", endpoint)
            name = outputs["database_url_secret_name"]
            assert secrets.describe_secret(SecretId=name)["KmsKeyId"] == key_arn
            assert secrets.get_secret_value(SecretId=name)["SecretString"] == SIM_DATABASE_URL
            # ... and by salescast's settings, as the Lambda reads it (SALESCAST_DATABASE_URL_SECRET).
            assert Settings(_env_file=None, database_url_secret=name, secrets_endpoint_url=endpoint).database_url == (
                SIM_DATABASE_URL
            )

            # The Redis AUTH token Secrets Manager drew: a Redis that wants it lets salescast's cache in.
            token_name = outputs["redis_auth_token_secret_name"]
            token = secrets.get_secret_value(SecretId=token_name)["SecretString"]
            assert len(token) == 64 and token.isalnum()
            with password_redis(password=token) as redis_server:
                cache_settings = Settings(
                    _env_file=None,
                    redis_url=redis_server.url,
                    redis_password_secret=token_name,
                    secrets_endpoint_url=endpoint,
                    cache_near_seconds=0,
                )
                assert asyncio.run(cache_round_trip(cache_settings)) == (b"cached", True)
        finally:
            destroy = [binary, "destroy", "-auto-approve", "-no-color", f"-var=endpoint={endpoint}"]
            run(destroy, cwd=sim, env=env, timeout=150)
        assert bucket not in {b["Name"] for b in client("s3", endpoint).list_buckets()["Buckets"]}
        assert client("secretsmanager", endpoint).list_secrets()["SecretList"] == []
