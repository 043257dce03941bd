output "primary_endpoint" {
  description = "Address of the primary (SALESCAST_REDIS_URL=rediss://ADDRESS:6379/0)."
  value       = aws_elasticache_replication_group.this.primary_endpoint_address
}

output "security_group_id" {
  description = "The cache's security group."
  value       = aws_security_group.redis.id
}
