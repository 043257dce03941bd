variable "name" {
  description = "Prefix of every resource name, e.g. salescast-dev."
  type        = string
}

variable "deletion_window_days" {
  description = "Days a scheduled key deletion waits (7 to 30)."
  type        = number
  default     = 30
}
