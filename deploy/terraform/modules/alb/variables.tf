variable "name" {
  description = "Prefix of every resource name, e.g. salescast-dev."
  type        = string
}

variable "vpc_id" {
  description = "The VPC."
  type        = string
}

variable "vpc_cidr_block" {
  description = "The VPC's address range (the ALB reaches the API tasks in it)."
  type        = string
}

variable "public_subnet_ids" {
  description = "Public subnets (two AZs at least)."
  type        = list(string)
}

variable "zone_id" {
  description = "Route 53 hosted zone of domain_name."
  type        = string
}

variable "domain_name" {
  description = "Name the API answers on (api.dev.example.com); the certificate and the alias record are made for it."
  type        = string
}

variable "logs_bucket" {
  description = "Bucket for the ALB's access logs (prefix alb/)."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key for the WAF log group."
  type        = string
}

variable "log_retention_days" {
  description = "Days WAF logs are kept."
  type        = number
  default     = 365
}

variable "waf_rate_limit" {
  description = "Requests per 5 minutes from one IP address before WAF blocks it."
  type        = number
  default     = 2000
}

variable "deletion_protection" {
  description = "Refuse deletion of the load balancer (prod)."
  type        = bool
  default     = true
}

variable "health_check_path" {
  description = "Target health check: ready = database reachable and a production model loaded."
  type        = string
  default     = "/api/v1/ready"
}
