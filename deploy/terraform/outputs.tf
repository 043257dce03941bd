output "api_url" {
  description = "Public URL of the API (ALB)."
  value       = module.alb.url
}

output "https_listener_arn" {
  description = "Listener whose weights release.yml moves (repository variable ALB_LISTENER_ARN)."
  value       = module.alb.https_listener_arn
}

output "target_group_arns" {
  description = "Blue and green target groups (TG_BLUE_ARN, TG_GREEN_ARN)."
  value       = module.alb.target_group_arns
}

output "ecr_repository_urls" {
  description = "Where release.yml pushes each image."
  value       = module.ecr.repository_urls
}

output "cluster_name" {
  description = "The ECS cluster (ECS_CLUSTER)."
  value       = module.ecs.cluster_name
}

output "api_service_names" {
  description = "API service per color."
  value       = module.ecs.api_service_names
}

output "database_url_secret_name" {
  description = "Secret to put the database URL in once (docs/deploy.md)."
  value       = module.secrets.database_url_secret_name
}

output "database_master_secret_arn" {
  description = "RDS's own secret with the master password."
  value       = module.database.master_user_secret_arn
}

output "database_endpoint" {
  description = "host:port of the PostgreSQL primary."
  value       = module.database.endpoint
}

output "alerts_topic_arn" {
  description = "SNS topic of the alerts."
  value       = module.messaging.alerts_topic_arn
}

output "lambda_api_url" {
  description = "Stage URL of the serverless path (null when switched off)."
  value       = var.enable_lambda_api ? module.lambda_api[0].invoke_url : null
}

output "cdn_domain_name" {
  description = "CloudFront name of the front end (null when switched off)."
  value       = var.enable_cdn ? module.cdn[0].distribution_domain_name : null
}
