variable "name" {
  description = "Prefix of every resource name, e.g. salescast-dev."
  type        = string
}

variable "github_repository_url" {
  description = "HTTPS clone URL of the repository (https://github.com/OWNER/salescast.git)."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key of the build's artifacts and logs."
  type        = string
}

variable "ecr_repository_arns" {
  description = "Repositories the build pushes to."
  type        = list(string)
}

variable "log_retention_days" {
  description = "Days build logs are kept."
  type        = number
  default     = 365
}
