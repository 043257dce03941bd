variable "name" {
  description = "Prefix of every resource name, e.g. salescast-dev."
  type        = string
}

variable "image_uri" {
  description = "Image of the `lambda` target of deploy/docker/Dockerfile (ECR URI with tag)."
  type        = string
}

variable "vpc_id" {
  description = "The VPC."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets of the function (it reaches PostgreSQL and Redis)."
  type        = list(string)
}

variable "kms_key_arn" {
  description = "Key for the environment variables and the log groups."
  type        = string
}

variable "database_url_secret_arn" {
  description = "Secret holding the database URL."
  type        = string
}

variable "redis_auth_token_secret_arn" {
  description = "Secret holding the ElastiCache AUTH token (SALESCAST_REDIS_PASSWORD_SECRET)."
  type        = string
}

variable "database_read_url_secret_arn" {
  description = "Secret holding the read replica's URL; null = no read replica."
  type        = string
  default     = null
}

variable "artifacts_bucket_arn" {
  description = "Artifacts bucket (read)."
  type        = string
}

variable "environment" {
  description = "Plain SALESCAST_* settings (no secrets here)."
  type        = map(string)
  default     = {}
}

variable "memory_mb" {
  description = "Function memory (CPU grows with it)."
  type        = number
  default     = 2048
}

variable "reserved_concurrency" {
  description = "Most concurrent invocations (protects the database's connection limit)."
  type        = number
  default     = 50
}

variable "log_retention_days" {
  description = "Days the function's and the stage's logs are kept."
  type        = number
  default     = 90
}

variable "waf_rate_limit" {
  description = "Requests per 5 minutes from one IP address before WAF blocks it."
  type        = number
  default     = 1000
}
