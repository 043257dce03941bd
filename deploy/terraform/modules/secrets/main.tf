# The database URL for SALESCAST_DATABASE_URL, injected into the ECS tasks and the Lambda from Secrets Manager
# (the task definition's `secrets`), so it never sits in a task definition, an image or the Terraform state.
resource "aws_secretsmanager_secret" "database_url" {
  # checkov:skip=CKV2_AWS_57: RDS rotates its own master password (manage_master_user_password); this URL secret is re-put from it by the operator step in docs/deploy.md until rotation of the URL is automated
  name                    = "${var.name}/database-url"
  description             = "SQLAlchemy URL of the salescast metadata database (postgresql+psycopg://...?sslmode=require)"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.recovery_window_days
}

resource "aws_secretsmanager_secret_version" "database_url" {
  count         = var.database_url == null ? 0 : 1
  secret_id     = aws_secretsmanager_secret.database_url.id
  secret_string = var.database_url
}

# The URL of the read replica for SALESCAST_DATABASE_READ_URL (when enable_read_replica is on), put by an
# operator like the primary's (docs/deploy.md).
resource "aws_secretsmanager_secret" "database_read_url" {
  # checkov:skip=CKV2_AWS_57: as the database URL secret above: re-put from the RDS-rotated password by the operator step in docs/deploy.md
  name                    = "${var.name}/database-read-url"
  description             = "SQLAlchemy URL of the salescast read replica (postgresql+psycopg://...?sslmode=require)"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.recovery_window_days
}

# The ElastiCache AUTH token (SALESCAST_REDIS_PASSWORD): drawn by Secrets Manager once, then kept (a new draw
# on each plan is ignored), so the replication group and the tasks read one value. It sits in the Terraform
# state, which is encrypted in its S3 backend; rotate it with the operator step in docs/deploy.md.
data "aws_secretsmanager_random_password" "redis_auth_token" {
  password_length     = 64
  exclude_punctuation = true # ElastiCache refuses some punctuation in a token; 64 letters and digits suffice
}

resource "aws_secretsmanager_secret" "redis_auth_token" {
  # checkov:skip=CKV2_AWS_57: ElastiCache has no managed rotation for AUTH tokens; docs/deploy.md gives the ROTATE-strategy step
  name                    = "${var.name}/redis-auth-token"
  description             = "AUTH token of the salescast ElastiCache replication group"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.recovery_window_days
}

resource "aws_secretsmanager_secret_version" "redis_auth_token" {
  secret_id     = aws_secretsmanager_secret.redis_auth_token.id
  secret_string = data.aws_secretsmanager_random_password.redis_auth_token.random_password
  lifecycle {
    ignore_changes = [secret_string]
  }
}
