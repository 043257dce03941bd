variable "name" {
  description = "Prefix of every resource name, e.g. salescast-dev."
  type        = string
}

variable "vpc_id" {
  description = "The VPC."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets of the tasks (AWS services through endpoints, the internet through NAT)."
  type        = list(string)
}

variable "alb_security_group_id" {
  description = "The ALB's security group (the only source of API traffic)."
  type        = string
}

variable "alb_arn_suffix" {
  description = "The ALB's ARN suffix (request-count autoscaling)."
  type        = string
}

variable "target_group_arns" {
  description = "Target group ARN per color: {blue = ..., green = ...}."
  type        = map(string)
}

variable "target_group_arn_suffixes" {
  description = "Target group ARN suffix per color (request-count autoscaling)."
  type        = map(string)
}

variable "images" {
  description = "Image URI per target: {api = REPO:TAG, worker = REPO:TAG}."
  type        = map(string)
}

variable "log_group_names" {
  description = "CloudWatch log group per service: {api = ..., worker = ...}."
  type        = map(string)
}

variable "kms_key_arn" {
  description = "The environment's key (secrets, artifacts)."
  type        = string
}

variable "database_url_secret_arn" {
  description = "Secret holding SALESCAST_DATABASE_URL."
  type        = string
}

variable "redis_auth_token_secret_arn" {
  description = "Secret holding SALESCAST_REDIS_PASSWORD (the ElastiCache AUTH token)."
  type        = string
}

variable "database_read_url_secret_arn" {
  description = "Secret holding SALESCAST_DATABASE_READ_URL; null = no read replica."
  type        = string
  default     = null
}

variable "artifacts_bucket_arn" {
  description = "Artifacts bucket (api reads, worker writes)."
  type        = string
}

variable "data_lake_bucket_arn" {
  description = "Data lake bucket (the worker reads the drop)."
  type        = string
}

variable "alerts_topic_arn" {
  description = "SNS topic for salescast's alerts."
  type        = string
}

variable "environment" {
  description = "Plain SALESCAST_* settings shared by the API and the worker (no secrets here)."
  type        = map(string)
  default     = {}
}

variable "api_cpu" {
  description = "CPU units of one API task."
  type        = number
  default     = 512
}

variable "api_memory" {
  description = "Memory (MiB) of one API task."
  type        = number
  default     = 1024
}

variable "api_min_count" {
  description = "Fewest API tasks of the live color."
  type        = number
  default     = 2
}

variable "api_max_count" {
  description = "Most API tasks of one color."
  type        = number
  default     = 6
}

variable "api_cpu_target" {
  description = "Average CPU % the API autoscaling keeps."
  type        = number
  default     = 60
}

variable "api_requests_per_target" {
  description = "ALB requests per task per minute the API autoscaling keeps."
  type        = number
  default     = 3000
}

variable "worker_cpu" {
  description = "CPU units of the worker and training tasks."
  type        = number
  default     = 2048
}

variable "worker_memory" {
  description = "Memory (MiB) of the worker and training tasks."
  type        = number
  default     = 8192
}

variable "worker_service" {
  description = "Run the worker as a service (`salescast worker`: ingest daily and retrain weekly on its own cron). When false, EventBridge Scheduler runs `worker --once ingest` daily and `worker --once retrain` weekly as one-off tasks and no worker idles between them."
  type        = bool
  default     = true
}

variable "ingest_schedule" {
  description = "EventBridge Scheduler expression of the daily ingestion task (worker_service = false)."
  type        = string
  default     = "cron(0 2 * * ? *)"
}

variable "training_schedule" {
  description = "EventBridge Scheduler expression of the weekly training task (worker_service = false)."
  type        = string
  default     = "cron(0 3 ? * MON *)"
}

variable "off_hours_scale_down" {
  description = "Scale every service to 0 outside working hours (dev): down at 20:00, up at 07:00 on weekdays, UTC."
  type        = bool
  default     = false
}
