variable "name" {
  description = "Prefix of every secret name, e.g. salescast-dev."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the secrets."
  type        = string
}

variable "database_url" {
  description = "Initial value of the database URL secret. Leave null in real environments: the value is then put by an operator (docs/deploy.md) and never enters the Terraform state."
  type        = string
  default     = null
  sensitive   = true
}

variable "recovery_window_days" {
  description = "Days a deleted secret can be restored (0 = deleted at once; the local simulator only)."
  type        = number
  default     = 30
}
