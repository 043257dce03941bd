variable "name" {
  description = "Name of the web ACL, its metrics and (after aws-waf-logs-) its log group."
  type        = string
}

variable "scope" {
  description = "REGIONAL (ALB, API Gateway) or CLOUDFRONT (made through a us-east-1 provider)."
  type        = string
  default     = "REGIONAL"
  validation {
    condition     = contains(["REGIONAL", "CLOUDFRONT"], var.scope)
    error_message = "scope is REGIONAL or CLOUDFRONT."
  }
}

variable "rate_limit" {
  description = "Requests per 5 minutes per client IP before WAF blocks it."
  type        = number
  default     = 2000
}

variable "managed_rule_groups" {
  description = "AWS managed rule groups, in order of evaluation after the rate rule."
  type        = list(string)
  default     = ["AWSManagedRulesCommonRuleSet", "AWSManagedRulesSQLiRuleSet", "AWSManagedRulesKnownBadInputsRuleSet"]
}

variable "resource_arns" {
  description = "REGIONAL resources the ACL protects (an ALB, an API Gateway stage); empty for CLOUDFRONT."
  type        = list(string)
  default     = []
}

variable "log_retention_days" {
  description = "Days the WAF log group keeps its events."
  type        = number
  default     = 365
}

variable "kms_key_arn" {
  description = "KMS key of the log group; null = CloudWatch Logs' own key (the CloudFront ACL in us-east-1)."
  type        = string
  default     = null
}
