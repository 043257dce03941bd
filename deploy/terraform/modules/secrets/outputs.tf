output "database_url_secret_arn" {
  description = "ARN of the database URL secret."
  value       = aws_secretsmanager_secret.database_url.arn
}

output "database_url_secret_name" {
  description = "Name of the database URL secret."
  value       = aws_secretsmanager_secret.database_url.name
}
