output "log_group_names" {
  description = "Log group per service: {api = ..., worker = ...}."
  value       = { for k, g in aws_cloudwatch_log_group.service : k => g.name }
}

output "dashboard_name" {
  description = "The CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}
