output "alerts_topic_arn" {
  description = "ARN of the alerts topic (SALESCAST_ALERT_URL=sns://ARN)."
  value       = aws_sns_topic.alerts.arn
}
