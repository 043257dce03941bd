output "distribution_domain_name" {
  description = "The front end's CloudFront name."
  value       = aws_cloudfront_distribution.site.domain_name
}

output "bucket" {
  description = "Bucket the release uploads the front end to."
  value       = aws_s3_bucket.site.id
}
