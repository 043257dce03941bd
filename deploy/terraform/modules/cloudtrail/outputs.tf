output "trail_arn" {
  description = "The trail."
  value       = aws_cloudtrail.this.arn
}
