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
