variable "name" {
  description = "Prefix of every bucket name, e.g. salescast-dev-123456789012 (bucket names are global)."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key for SSE-KMS on the artifacts and data lake buckets."
  type        = string
}

variable "force_destroy" {
  description = "Let `terraform destroy` empty the buckets (dev and the local simulator only)."
  type        = bool
  default     = false
}

variable "artifact_noncurrent_days" {
  description = "Days an overwritten or deleted artifact version is kept (restores and rollbacks read them)."
  type        = number
  default     = 90
}

variable "data_lake_ia_days" {
  description = "Days before data lake objects move to Standard-IA."
  type        = number
  default     = 30
}

variable "data_lake_glacier_days" {
  description = "Days before data lake objects move to Glacier Instant Retrieval."
  type        = number
  default     = 180
}

variable "log_retention_days" {
  description = "Days S3 and ALB access logs are kept."
  type        = number
  default     = 365
}

variable "lifecycle_rules" {
  description = "Create the lifecycle rules. Off only in local-sim: the simulator answers them in a form the provider waits about a minute on before it gives up checking."
  type        = bool
  default     = true
}

variable "require_tls" {
  description = "Deny every request to the buckets that does not use TLS. Off only in local-sim, whose simulator speaks plain HTTP on 127.0.0.1 and enforces bucket policies."
  type        = bool
  default     = true
}
