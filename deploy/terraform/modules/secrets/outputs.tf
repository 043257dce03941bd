output "database_url_secret_arn" {
  description = "ARN of the database URL secret."
  value       = aws_secretsmanager_secret.database_url.arn
}

output "database_url_secret_name" {
  description = "Name of the database URL secret."
  value       = aws_secretsmanager_secret.database_url.name
}

output "database_read_url_secret_arn" {
  description = "ARN of the read replica URL secret."
  value       = aws_secretsmanager_secret.database_read_url.arn
}

output "redis_auth_token_secret_arn" {
  description = "ARN of the Redis AUTH token secret."
  value       = aws_secretsmanager_secret.redis_auth_token.arn
}

output "redis_auth_token_secret_name" {
  description = "Name of the Redis AUTH token secret."
  value       = aws_secretsmanager_secret.redis_auth_token.name
}

output "redis_auth_token" {
  description = "The Redis AUTH token, for the replication group."
  value       = aws_secretsmanager_secret_version.redis_auth_token.secret_string
  sensitive   = true
}
