# salescast on AWS: one root composing the modules for one environment (envs/dev.tfvars, envs/prod.tfvars).
#   terraform init -backend-config=envs/dev.s3.tfbackend
#   terraform apply -var-file=envs/dev.tfvars
# Optional parts have a switch each: enable_lambda_api, enable_cdn, enable_read_replica.
data "aws_caller_identity" "current" {}

locals {
  name = "salescast-${var.environment}"
  # Bucket names are global: the account id keeps them unique.
  bucket_prefix = "${local.name}-${data.aws_caller_identity.current.account_id}"
  # Plain settings of the ECS tasks and the Lambda; the database URL arrives from Secrets Manager.
  settings = {
    SALESCAST_ARTIFACT_URI    = "s3://${module.storage.artifacts_bucket}/models"
    SALESCAST_DROP_URI        = "s3://${module.storage.data_lake_bucket}/incoming"
    SALESCAST_S3_REGION       = var.region
    SALESCAST_KMS_KEY_ID      = module.kms.key_arn
    SALESCAST_REDIS_URL       = "rediss://${module.cache.primary_endpoint}:6379/0"
    SALESCAST_ALERT_URL       = "sns://${module.messaging.alerts_topic_arn}"
    SALESCAST_LOG_FORMAT      = "json"
    SALESCAST_SERVE_HOST      = "0.0.0.0"
    SALESCAST_SERVE_PORT      = "8000"
    SALESCAST_PIPELINE_MODELS = "auto"
  }
}

module "kms" {
  source = "./modules/kms"
  name   = local.name
}

module "network" {
  source           = "./modules/network"
  name             = local.name
  cidr_block       = var.vpc_cidr
  nat_gateway_mode = var.nat_gateway_mode
  kms_key_arn      = module.kms.key_arn
}

module "storage" {
  source        = "./modules/storage"
  name          = local.bucket_prefix
  kms_key_arn   = module.kms.key_arn
  force_destroy = var.force_destroy_buckets
}

module "secrets" {
  source      = "./modules/secrets"
  name        = local.name
  kms_key_arn = module.kms.key_arn
}

module "messaging" {
  source       = "./modules/messaging"
  name         = local.name
  kms_key_arn  = module.kms.key_arn
  alert_emails = var.alert_emails
}

module "ecr" {
  source      = "./modules/ecr"
  name        = local.name
  kms_key_arn = module.kms.key_arn
}

module "alb" {
  source              = "./modules/alb"
  name                = local.name
  vpc_id              = module.network.vpc_id
  vpc_cidr_block      = module.network.vpc_cidr_block
  public_subnet_ids   = module.network.public_subnet_ids
  zone_id             = var.zone_id
  domain_name         = var.api_domain_name
  logs_bucket         = module.storage.logs_bucket
  kms_key_arn         = module.kms.key_arn
  deletion_protection = var.deletion_protection
}

module "cloudwatch" {
  source                    = "./modules/cloudwatch"
  name                      = local.name
  kms_key_arn               = module.kms.key_arn
  log_retention_days        = var.log_retention_days
  alerts_topic_arn          = module.messaging.alerts_topic_arn
  alb_arn_suffix            = module.alb.alb_arn_suffix
  target_group_arn_suffixes = module.alb.target_group_arn_suffixes
  cluster_name              = local.name
  api_service_names         = { blue = "${local.name}-api-blue", green = "${local.name}-api-green" }
}

# With enable_read_replica the tasks get SALESCAST_DATABASE_READ_URL from its secret, which an operator puts
# once the replica exists (docs/deploy.md).
module "ecs" {
  source                    = "./modules/ecs"
  name                      = local.name
  vpc_id                    = module.network.vpc_id
  private_subnet_ids        = module.network.private_subnet_ids
  alb_security_group_id     = module.alb.security_group_id
  alb_arn_suffix            = module.alb.alb_arn_suffix
  target_group_arns         = module.alb.target_group_arns
  target_group_arn_suffixes = module.alb.target_group_arn_suffixes
  images = {
    api    = "${module.ecr.repository_urls["api"]}:${var.image_tag}"
    worker = "${module.ecr.repository_urls["worker"]}:${var.image_tag}"
  }
  log_group_names              = module.cloudwatch.log_group_names
  kms_key_arn                  = module.kms.key_arn
  database_url_secret_arn      = module.secrets.database_url_secret_arn
  database_read_url_secret_arn = var.enable_read_replica ? module.secrets.database_read_url_secret_arn : null
  redis_auth_token_secret_arn  = module.secrets.redis_auth_token_secret_arn
  artifacts_bucket_arn         = module.storage.artifacts_bucket_arn
  data_lake_bucket_arn         = module.storage.data_lake_bucket_arn
  alerts_topic_arn             = module.messaging.alerts_topic_arn
  environment                  = local.settings
  api_min_count                = var.api_min_count
  api_max_count                = var.api_max_count
  worker_service               = var.worker_service
  off_hours_scale_down         = var.off_hours_scale_down
}

module "database" {
  source                    = "./modules/database"
  name                      = local.name
  vpc_id                    = module.network.vpc_id
  subnet_ids                = module.network.data_subnet_ids
  client_security_group_ids = concat(module.ecs.task_security_group_ids, var.enable_lambda_api ? [module.lambda_api[0].security_group_id] : [])
  kms_key_arn               = module.kms.key_arn
  instance_class            = var.db_instance_class
  multi_az                  = var.db_multi_az
  backup_retention_days     = var.db_backup_retention_days
  deletion_protection       = var.deletion_protection
  read_replica              = var.enable_read_replica
}

module "cache" {
  source                    = "./modules/cache"
  name                      = local.name
  vpc_id                    = module.network.vpc_id
  subnet_ids                = module.network.data_subnet_ids
  client_security_group_ids = concat(module.ecs.task_security_group_ids, var.enable_lambda_api ? [module.lambda_api[0].security_group_id] : [])
  kms_key_arn               = module.kms.key_arn
  node_type                 = var.cache_node_type
  replicas                  = var.cache_nodes
  auth_token                = module.secrets.redis_auth_token
}

module "lambda_api" {
  source                       = "./modules/lambda_api"
  count                        = var.enable_lambda_api ? 1 : 0
  name                         = local.name
  image_uri                    = "${module.ecr.repository_urls["lambda"]}:${var.image_tag}"
  vpc_id                       = module.network.vpc_id
  private_subnet_ids           = module.network.private_subnet_ids
  kms_key_arn                  = module.kms.key_arn
  database_url_secret_arn      = module.secrets.database_url_secret_arn
  database_read_url_secret_arn = var.enable_read_replica ? module.secrets.database_read_url_secret_arn : null
  redis_auth_token_secret_arn  = module.secrets.redis_auth_token_secret_arn
  artifacts_bucket_arn         = module.storage.artifacts_bucket_arn
  environment                  = { for k, v in local.settings : k => v if !startswith(k, "SALESCAST_SERVE_") }
  log_retention_days           = var.log_retention_days
}

module "cdn" {
  source                  = "./modules/cdn"
  count                   = var.enable_cdn ? 1 : 0
  providers               = { aws = aws, aws.us_east_1 = aws.us_east_1 }
  name                    = local.bucket_prefix
  kms_key_arn             = module.kms.key_arn
  logs_bucket_domain_name = module.storage.logs_bucket_domain_name
  force_destroy           = var.force_destroy_buckets
}

module "budgets" {
  source            = "./modules/budgets"
  name              = local.name
  monthly_limit_usd = var.monthly_budget_usd
  alerts_topic_arn  = module.messaging.alerts_topic_arn
  environment_tag   = var.environment
}

module "cloudtrail" {
  source         = "./modules/cloudtrail"
  name           = local.bucket_prefix
  kms_key_arn    = module.kms.key_arn
  retention_days = 365
  force_destroy  = var.force_destroy_buckets
}

module "codebuild" {
  source                = "./modules/codebuild"
  name                  = local.name
  github_repository_url = var.github_repository_url
  kms_key_arn           = module.kms.key_arn
  ecr_repository_arns   = values(module.ecr.repository_arns)
}
