variable "name" {
  description = "Prefix of every resource name, e.g. salescast-dev-123456789012 (the bucket name is global)."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key of the front-end bucket."
  type        = string
}

variable "logs_bucket_domain_name" {
  description = "Regional domain name of the access logs bucket (prefix cloudfront/)."
  type        = string
}

variable "force_destroy" {
  description = "Let `terraform destroy` empty the bucket (dev only)."
  type        = bool
  default     = false
}

variable "waf_rate_limit" {
  description = "Requests per 5 minutes from one IP address before WAF blocks it."
  type        = number
  default     = 2000
}
