output "web_acl_arn" {
  description = "ARN of the web ACL (a CloudFront distribution's web_acl_id)."
  value       = aws_wafv2_web_acl.this.arn
}

output "rule_names" {
  description = "Names of the ACL's rules, in order of evaluation."
  value       = concat(["rate-per-ip"], var.managed_rule_groups)
}
