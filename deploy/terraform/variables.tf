variable "environment" {
  description = "Environment name: dev or prod (names, tags, the budget's filter)."
  type        = string
  validation {
    condition     = contains(["dev", "prod"], var.environment)
    error_message = "environment must be dev or prod."
  }
}

variable "region" {
  description = "AWS region of the stack."
  type        = string
  default     = "eu-west-1"
}

variable "vpc_cidr" {
  description = "The VPC's address range."
  type        = string
  default     = "10.40.0.0/16"
}

variable "nat_gateway_mode" {
  description = "Internet egress of the private subnets for the worker's external data: none, single (dev) or per_az (prod)."
  type        = string
}

variable "zone_id" {
  description = "Route 53 hosted zone that holds api_domain_name."
  type        = string
}

variable "api_domain_name" {
  description = "Name of the API (its certificate and alias record are made here)."
  type        = string
}

variable "image_tag" {
  description = "Tag of the images the first apply deploys; later releases change the services through release.yml."
  type        = string
  default     = "bootstrap"
}

variable "alert_emails" {
  description = "Addresses subscribed to the alerts topic."
  type        = list(string)
  default     = []
}

variable "github_repository_url" {
  description = "HTTPS clone URL of the repository for CodeBuild."
  type        = string
}

variable "monthly_budget_usd" {
  description = "Monthly cost budget of the environment."
  type        = number
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.medium"
}

variable "db_multi_az" {
  description = "Multi-AZ RDS (prod)."
  type        = bool
  default     = false
}

variable "db_backup_retention_days" {
  description = "Days of RDS automated backups (point-in-time recovery window)."
  type        = number
  default     = 7
}

variable "enable_read_replica" {
  description = "Switch: an RDS read replica."
  type        = bool
  default     = false
}

variable "cache_node_type" {
  description = "ElastiCache node type."
  type        = string
  default     = "cache.t4g.small"
}

variable "cache_nodes" {
  description = "Redis nodes: 1 (dev) or 2+ (prod, automatic failover)."
  type        = number
  default     = 1
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

variable "worker_service" {
  description = "Worker as a long-running service (true) or as EventBridge-scheduled ingest and training tasks (false)."
  type        = bool
  default     = true
}

variable "off_hours_scale_down" {
  description = "Scale the services to 0 at night and on weekends (dev)."
  type        = bool
  default     = false
}

variable "enable_lambda_api" {
  description = "Switch: the serverless path (Lambda container behind an API Gateway REST API with WAF)."
  type        = bool
  default     = false
}

variable "enable_cdn" {
  description = "Switch: the CloudFront front end with its bucket and WAF."
  type        = bool
  default     = false
}

variable "log_retention_days" {
  description = "Days service logs are kept."
  type        = number
  default     = 90
}

variable "deletion_protection" {
  description = "Protect the database and the load balancer from deletion (prod)."
  type        = bool
  default     = true
}

variable "force_destroy_buckets" {
  description = "Let `terraform destroy` empty the buckets (dev only)."
  type        = bool
  default     = false
}
