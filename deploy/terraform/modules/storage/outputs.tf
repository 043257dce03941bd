output "artifacts_bucket" {
  description = "Name of the artifacts bucket (SALESCAST_ARTIFACT_URI=s3://NAME/models)."
  value       = aws_s3_bucket.this["artifacts"].id
}

output "artifacts_bucket_arn" {
  description = "ARN of the artifacts bucket."
  value       = aws_s3_bucket.this["artifacts"].arn
}

output "data_lake_bucket" {
  description = "Name of the data lake bucket (SALESCAST_DROP_URI=s3://NAME/incoming)."
  value       = aws_s3_bucket.this["data_lake"].id
}

output "data_lake_bucket_arn" {
  description = "ARN of the data lake bucket."
  value       = aws_s3_bucket.this["data_lake"].arn
}

output "logs_bucket" {
  description = "Name of the access logs bucket."
  value       = aws_s3_bucket.logs.id
}

output "logs_bucket_arn" {
  description = "ARN of the access logs bucket."
  value       = aws_s3_bucket.logs.arn
}

output "logs_bucket_domain_name" {
  description = "Regional domain name of the access logs bucket (CloudFront logging)."
  value       = aws_s3_bucket.logs.bucket_regional_domain_name
}
