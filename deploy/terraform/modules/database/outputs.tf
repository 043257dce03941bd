output "endpoint" {
  description = "host:port of the primary."
  value       = aws_db_instance.primary.endpoint
}

output "replica_endpoint" {
  description = "host:port of the read replica (null without one)."
  value       = var.read_replica ? aws_db_instance.replica[0].endpoint : null
}

output "master_user_secret_arn" {
  description = "Secret RDS keeps the master password in (rotated by RDS)."
  value       = aws_db_instance.primary.master_user_secret[0].secret_arn
}

output "security_group_id" {
  description = "The database's security group."
  value       = aws_security_group.db.id
}
