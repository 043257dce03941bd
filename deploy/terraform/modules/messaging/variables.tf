variable "name" {
  description = "Prefix of every resource name, e.g. salescast-dev."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the topic."
  type        = string
}

variable "alert_emails" {
  description = "Addresses subscribed to the alerts topic (each confirms by email)."
  type        = list(string)
  default     = []
}
