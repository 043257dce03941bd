variable "name" {
  description = "Prefix of every resource name, e.g. salescast-dev-123456789012 (the bucket name is global)."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key of the trail's files and log group."
  type        = string
}

variable "retention_days" {
  description = "Days trail files and log events are kept."
  type        = number
  default     = 365
}

variable "force_destroy" {
  description = "Let `terraform destroy` empty the trail bucket (dev only)."
  type        = bool
  default     = false
}
