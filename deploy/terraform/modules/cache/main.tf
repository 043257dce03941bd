# Redis for salescast's response cache and shared rate limiter (SALESCAST_REDIS_URL=rediss://HOST:6379/0:
# rediss, since encryption in transit is on; SALESCAST_REDIS_PASSWORD = the AUTH token, from Secrets Manager).
# With 2 or more nodes a replica takes over on failure.
resource "aws_elasticache_subnet_group" "this" {
  name       = var.name
  subnet_ids = var.subnet_ids
}

resource "aws_security_group" "redis" {
  name        = "${var.name}-redis"
  description = "Redis from the salescast tasks only"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "clients" {
  # count, not for_each: the ids are unknown until the groups exist, their number is known.
  count                        = length(var.client_security_group_ids)
  security_group_id            = aws_security_group.redis.id
  description                  = "Redis from a salescast client"
  referenced_security_group_id = var.client_security_group_ids[count.index]
  from_port                    = 6379
  to_port                      = 6379
  ip_protocol                  = "tcp"
}

resource "aws_elasticache_replication_group" "this" {
  # checkov:skip=CKV2_AWS_50: failover and Multi-AZ follow the node count: on in prod (cache_nodes = 2), impossible with dev's single node
  replication_group_id       = var.name
  description                = "salescast cache and rate limiter"
  engine                     = "redis"
  engine_version             = "7.1"
  node_type                  = var.node_type
  num_cache_clusters         = var.replicas
  port                       = 6379
  subnet_group_name          = aws_elasticache_subnet_group.this.name
  security_group_ids         = [aws_security_group.redis.id]
  at_rest_encryption_enabled = true
  transit_encryption_enabled = true
  auth_token                 = var.auth_token
  kms_key_id                 = var.kms_key_arn
  automatic_failover_enabled = var.replicas > 1
  multi_az_enabled           = var.replicas > 1
  auto_minor_version_upgrade = true
  snapshot_retention_limit   = 1
  apply_immediately          = false
}
