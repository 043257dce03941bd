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
  description = "Security groups allowed to connect on 5432 (the ECS tasks, the Lambda)."
  type        = list(string)
}

variable "kms_key_arn" {
  description = "KMS key for storage, Performance Insights and the managed master password."
  type        = string
}

variable "instance_class" {
  description = "DB instance class."
  type        = string
  default     = "db.t4g.medium"
}

variable "allocated_storage_gb" {
  description = "Initial storage (autoscaling up to 4x)."
  type        = number
  default     = 50
}

variable "engine_version" {
  description = "PostgreSQL major.minor."
  type        = string
  default     = "16.4"
}

variable "multi_az" {
  description = "A synchronous standby in a second AZ (prod)."
  type        = bool
  default     = false
}

variable "backup_retention_days" {
  description = "Days of automated backups and point-in-time recovery."
  type        = number
  default     = 7
}

variable "deletion_protection" {
  description = "Refuse deletion of the instance (prod)."
  type        = bool
  default     = true
}

variable "read_replica" {
  description = "Create one read replica (for read routes; salescast's read-only URL setting is a later change)."
  type        = bool
  default     = false
}
