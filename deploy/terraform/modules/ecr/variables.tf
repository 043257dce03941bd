variable "name" {
  description = "Prefix of the repository names, e.g. salescast-dev."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the images."
  type        = string
}

variable "repositories" {
  description = "One repository per image target of deploy/docker/Dockerfile."
  type        = list(string)
  default     = ["api", "worker", "lambda"]
}

variable "keep_images" {
  description = "Tagged images kept per repository (older ones expire)."
  type        = number
  default     = 30
}
