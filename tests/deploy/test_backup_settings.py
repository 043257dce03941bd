"""docs/deploy.md's table of backup settings says what the Terraform code does: RDS retention and final
snapshot, the buckets' versioning and how long old versions stay, ElastiCache's snapshots."""

from __future__ import annotations

import re

from tests.deploy.tooling import ROOT, TERRAFORM_DIR

MODULES = TERRAFORM_DIR / "modules"


def documented() -> dict[str, tuple[str, str]]:
    """The rows of the doc's backup-settings table: first cell -> (dev, prod)."""
    text = (ROOT / "docs" / "deploy.md").read_text()
    table = text.split("| backup setting | dev | prod | in Terraform |", 1)[1].split("\n\n", 1)[0]
    rows = {}
    for line in table.strip().splitlines()[1:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows[cells[0]] = (cells[1], cells[2])
    return rows


def tfvar(env: str, name: str) -> str:
    match = re.search(rf"^{name}\s*=\s*(\S+)", (TERRAFORM_DIR / "envs" / f"{env}.tfvars").read_text(), re.M)
    assert match, f"{env}.tfvars does not set {name}"
    return match[1]


def block(path: str, header: str) -> str:
    text = (MODULES / path).read_text()
    match = re.search(rf"{re.escape(header)} \{{(?P<body>.*?)\n\}}", text, re.S)
    assert match, f"{header} not in {path}"
    return match["body"]


def test_the_docs_backup_table_matches_the_terraform_code() -> None:
    rows = documented()
    assert len(rows) == 5

    retention = rows["RDS automated backups with point-in-time recovery (days)"]
    assert retention == (tfvar("dev", "db_backup_retention_days"), tfvar("prod", "db_backup_retention_days"))
    primary = block("database/main.tf", 'resource "aws_db_instance" "primary"')
    assert re.search(r"backup_retention_period\s+= var\.backup_retention_days", primary)
    assert re.search(
        r"backup_retention_days\s+= var\.db_backup_retention_days", (TERRAFORM_DIR / "main.tf").read_text()
    )

    assert rows["RDS final snapshot when the database is deleted"] == ("yes", "yes")
    assert re.search(r"skip_final_snapshot\s+= false", primary)

    artifacts_days = re.search(
        r'variable "artifact_noncurrent_days" \{.*?default\s+= (\d+)',
        (MODULES / "storage/variables.tf").read_text(),
        re.S,
    )
    assert artifacts_days and rows["artifacts bucket versioned, overwritten or deleted versions kept (days)"] == (
        artifacts_days[1],
        artifacts_days[1],
    )
    artifacts_rule = block("storage/main.tf", 'resource "aws_s3_bucket_lifecycle_configuration" "artifacts"')
    assert "noncurrent_days = var.artifact_noncurrent_days" in artifacts_rule
    versioning = block("storage/main.tf", 'resource "aws_s3_bucket_versioning" "this"')
    assert "for_each = aws_s3_bucket.this" in versioning and 'status = "Enabled"' in versioning
    buckets = (MODULES / "storage/main.tf").read_text()
    assert re.search(r"artifacts\s+= ", buckets) and re.search(r"data_lake\s+= ", buckets)  # both in that for_each

    lake_rule = block("storage/main.tf", 'resource "aws_s3_bucket_lifecycle_configuration" "data_lake"')
    lake_days = re.search(r"noncurrent_version_expiration \{\s*noncurrent_days = (\d+)", lake_rule)
    assert lake_days and rows["data lake bucket versioned, overwritten or deleted versions kept (days)"] == (
        lake_days[1],
        lake_days[1],
    )

    snapshots = re.search(r"snapshot_retention_limit\s+= (\d+)", (MODULES / "cache/main.tf").read_text())
    assert snapshots and rows["ElastiCache snapshots kept (days)"] == (snapshots[1], snapshots[1])
