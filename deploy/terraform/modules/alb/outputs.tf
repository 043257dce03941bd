output "alb_arn" {
  description = "ARN of the load balancer."
  value       = aws_lb.this.arn
}

output "alb_arn_suffix" {
  description = "The load balancer's ARN suffix (CloudWatch dimension)."
  value       = aws_lb.this.arn_suffix
}

output "alb_dns_name" {
  description = "DNS name of the load balancer."
  value       = aws_lb.this.dns_name
}

output "https_listener_arn" {
  description = "The HTTPS listener whose weights release.yml moves."
  value       = aws_lb_listener.https.arn
}

output "target_group_arns" {
  description = "Target group ARN per color (blue, green)."
  value       = { for k, tg in aws_lb_target_group.color : k => tg.arn }
}

output "target_group_arn_suffixes" {
  description = "Target group ARN suffix per color (CloudWatch dimension)."
  value       = { for k, tg in aws_lb_target_group.color : k => tg.arn_suffix }
}

output "security_group_id" {
  description = "The load balancer's security group."
  value       = aws_security_group.alb.id
}

output "url" {
  description = "Public URL of the API."
  value       = "https://${var.domain_name}"
}
