# Development: one NAT gateway, single-AZ database and one Redis node, the worker as a service, everything
# scaled to 0 at night and on weekends, buckets emptied on destroy.
environment           = "dev"
region                = "eu-west-1"
vpc_cidr              = "10.40.0.0/16"
nat_gateway_mode      = "single"
zone_id               = "Z0000000000000DEV"
api_domain_name       = "api.dev.salescast.example.com"
github_repository_url = "https://github.com/example/salescast.git"
monthly_budget_usd    = 400
alert_emails          = []

db_instance_class        = "db.t4g.medium"
db_multi_az              = false
db_backup_retention_days = 7
enable_read_replica      = false
cache_node_type          = "cache.t4g.small"
cache_nodes              = 1

api_min_count        = 1
api_max_count        = 3
worker_service       = true
off_hours_scale_down = true

enable_lambda_api = false
enable_cdn        = false

log_retention_days    = 30
deletion_protection   = false
force_destroy_buckets = true
