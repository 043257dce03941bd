variable "name" {
  description = "Prefix of every resource name, e.g. salescast-dev."
  type        = string
}

variable "vpc_id" {
  description = "The VPC."
  type        = string
}

variable "subnet_ids" {
  description = "Data subnets (two AZs at least)."
  type        = list(string)
}

variable "client_security_group_ids" {
  description = "Security groups allowed to connect on 6379."
  type        = list(string)
}

variable "kms_key_arn" {
  description = "KMS key for encryption at rest."
  type        = string
}

variable "node_type" {
  description = "Cache node type."
  type        = string
  default     = "cache.t4g.small"
}

variable "replicas" {
  description = "Nodes in the replication group: 1 (dev) or 2 or more (prod: automatic failover and Multi-AZ)."
  type        = number
  default     = 1
}

variable "auth_token" {
  description = "AUTH token clients must send (16-128 characters); from the secrets module's Secrets Manager secret."
  type        = string
  sensitive   = true
}
