variable "name" {
  description = "Prefix of every resource name, e.g. salescast-dev."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key of the log groups."
  type        = string
}

variable "log_retention_days" {
  description = "Days the services' logs are kept."
  type        = number
  default     = 90
}

variable "alerts_topic_arn" {
  description = "SNS topic the alarms notify."
  type        = string
}

variable "alb_arn_suffix" {
  description = "The ALB's ARN suffix."
  type        = string
}

variable "target_group_arn_suffixes" {
  description = "Target group ARN suffix per color."
  type        = map(string)
}

variable "cluster_name" {
  description = "The ECS cluster (dashboard)."
  type        = string
}

variable "api_service_names" {
  description = "API service per color (dashboard)."
  type        = map(string)
}

variable "error_rate_threshold" {
  description = "5xx answers per minute (ALB and targets together) that raise the alarm."
  type        = number
  default     = 10
}

variable "p99_latency_seconds" {
  description = "p99 target response time that raises the alarm."
  type        = number
  default     = 1.0
}

variable "stale_data_hours" {
  description = "Hours without a finished ingestion before the stale-data alarm."
  type        = number
  default     = 26
}
