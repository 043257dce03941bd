# Production: a NAT gateway per AZ, Multi-AZ PostgreSQL with 14 days of backups and a read replica, Redis
# with a replica and automatic failover, training as scheduled tasks, the Lambda path and the CloudFront
# front end switched on, deletion protection everywhere.
environment           = "prod"
region                = "eu-west-1"
vpc_cidr              = "10.50.0.0/16"
nat_gateway_mode      = "per_az"
zone_id               = "Z00000000000PROD"
api_domain_name       = "api.salescast.example.com"
github_repository_url = "https://github.com/example/salescast.git"
monthly_budget_usd    = 2500
alert_emails          = ["oncall@example.com"]

db_instance_class        = "db.r6g.large"
db_multi_az              = true
db_backup_retention_days = 14
enable_read_replica      = true
cache_node_type          = "cache.r6g.large"
cache_nodes              = 2

api_min_count        = 2
api_max_count        = 10
worker_service       = false
off_hours_scale_down = false

enable_lambda_api = true
enable_cdn        = true

log_retention_days    = 365
deletion_protection   = true
force_destroy_buckets = false
