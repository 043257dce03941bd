# The storage, KMS, secrets and messaging modules of the real stack, applied against a local AWS simulator
# (moto's server) by tests/deploy/test_terraform_moto.py, which then points salescast at what it made.
#   moto_server -H 127.0.0.1 -p 5000 &
#   terraform init -plugin-dir=/opt/tf-plugins && terraform apply -var endpoint=http://127.0.0.1:5000
# Not an environment: no backend (local state), and every endpoint goes to `endpoint`.
terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.80, < 6.0"
    }
  }
}

variable "endpoint" {
  description = "URL of the simulator (moto_server), e.g. http://127.0.0.1:5000."
  type        = string
}

variable "name" {
  description = "Prefix of every resource name."
  type        = string
  default     = "salescast-sim"
}

variable "database_url" {
  description = "Value put in the database URL secret."
  type        = string
  default     = "postgresql+psycopg://salescast:sim-password@db.internal:5432/salescast?sslmode=require"
  sensitive   = true
}

provider "aws" {
  region                      = "us-east-1"
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true
  skip_region_validation      = true
  s3_use_path_style           = true

  endpoints {
    iam            = var.endpoint
    kms            = var.endpoint
    s3             = var.endpoint
    secretsmanager = var.endpoint
    sns            = var.endpoint
    sts            = var.endpoint
  }
}

module "kms" {
  source               = "../modules/kms"
  name                 = var.name
  deletion_window_days = 7
}

module "storage" {
  source        = "../modules/storage"
  name          = var.name
  kms_key_arn   = module.kms.key_arn
  force_destroy = true
  # The rules themselves are checked by validate and checkov; on the simulator the provider would wait
  # about a minute per bucket for them to read back in the form it expects.
  lifecycle_rules = false
  # The simulator is plain HTTP and enforces bucket policies: a TLS-only deny would refuse every request.
  require_tls = false
}

module "secrets" {
  source               = "../modules/secrets"
  name                 = var.name
  kms_key_arn          = module.kms.key_arn
  database_url         = var.database_url
  recovery_window_days = 0
}

module "messaging" {
  source      = "../modules/messaging"
  name        = var.name
  kms_key_arn = module.kms.key_arn
}

output "artifacts_bucket" {
  description = "The artifacts bucket."
  value       = module.storage.artifacts_bucket
}

output "data_lake_bucket" {
  description = "The data lake bucket."
  value       = module.storage.data_lake_bucket
}

output "kms_key_arn" {
  description = "The key."
  value       = module.kms.key_arn
}

output "alerts_topic_arn" {
  description = "The alerts topic."
  value       = module.messaging.alerts_topic_arn
}

output "database_url_secret_name" {
  description = "The database URL secret."
  value       = module.secrets.database_url_secret_name
}

output "redis_auth_token_secret_name" {
  description = "The Redis AUTH token secret."
  value       = module.secrets.redis_auth_token_secret_name
}
