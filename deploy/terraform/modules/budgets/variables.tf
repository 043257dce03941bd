variable "name" {
  description = "Prefix of every resource name, e.g. salescast-dev."
  type        = string
}

variable "monthly_limit_usd" {
  description = "Monthly cost budget in USD."
  type        = number
}

variable "alerts_topic_arn" {
  description = "SNS topic notified at 80 % actual and 100 % forecast spend."
  type        = string
}

variable "environment_tag" {
  description = "Value of the `environment` cost allocation tag the budget filters on."
  type        = string
}
