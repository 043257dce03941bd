variable "name" {
  description = "Prefix of every resource name, e.g. salescast-dev."
  type        = string
}

variable "cidr_block" {
  description = "The VPC's address range; split into public, private and data subnets per AZ."
  type        = string
  default     = "10.40.0.0/16"
}

variable "az_count" {
  description = "Availability zones used (2: the ALB, RDS Multi-AZ and ElastiCache failover need two)."
  type        = number
  default     = 2
  validation {
    condition     = var.az_count >= 2 && var.az_count <= 3
    error_message = "az_count must be 2 or 3."
  }
}

variable "nat_gateway_mode" {
  description = "Egress of the private subnets to the internet (the worker fetches FRED, Yahoo and weather data): none, single (one NAT gateway, dev) or per_az (one per AZ, prod)."
  type        = string
  default     = "single"
  validation {
    condition     = contains(["none", "single", "per_az"], var.nat_gateway_mode)
    error_message = "nat_gateway_mode must be none, single or per_az."
  }
}

variable "kms_key_arn" {
  description = "KMS key for the flow logs' log group."
  type        = string
}

variable "flow_log_retention_days" {
  description = "Days the VPC flow logs are kept."
  type        = number
  default     = 365
}
