# The front end (the dashboard's static files) in a private bucket, served by CloudFront through an origin
# access control, behind a WAF web ACL. CloudFront's WAF must live in us-east-1, hence the aliased provider.
resource "aws_s3_bucket" "site" {
  # checkov:skip=CKV_AWS_18: CloudFront's access logs record every read of the site
  # checkov:skip=CKV_AWS_144: static files rebuilt by the release; nothing to replicate
  # checkov:skip=CKV2_AWS_62: no consumer of object events
  bucket        = "${var.name}-frontend"
  force_destroy = var.force_destroy
}

resource "aws_s3_bucket_public_access_block" "site" {
  bucket                  = aws_s3_bucket.site.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "site" {
  bucket = aws_s3_bucket.site.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "site" {
  bucket = aws_s3_bucket.site.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "site" {
  bucket = aws_s3_bucket.site.id
  rule {
    id     = "old-versions"
    status = "Enabled"
    filter {
      prefix = "" # every object (AWS answers an empty filter as this one)
    }
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

resource "aws_cloudfront_origin_access_control" "site" {
  name                              = var.name
  origin_access_control_origin_type = "s3"
  signing_behavior                  = "always"
  signing_protocol                  = "sigv4"
}

resource "aws_wafv2_web_acl" "cdn" {
  provider = aws.us_east_1
  name     = "${var.name}-cdn"
  scope    = "CLOUDFRONT"

  default_action {
    allow {}
  }

  rule {
    name     = "rate-per-ip"
    priority = 0
    action {
      block {}
    }
    statement {
      rate_based_statement {
        limit              = var.waf_rate_limit
        aggregate_key_type = "IP"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-cdn-rate"
      sampled_requests_enabled   = true
    }
  }

  dynamic "rule" {
    for_each = ["AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet"]
    content {
      name     = rule.value
      priority = rule.key + 1
      override_action {
        none {}
      }
      statement {
        managed_rule_group_statement {
          vendor_name = "AWS"
          name        = rule.value
        }
      }
      visibility_config {
        cloudwatch_metrics_enabled = true
        metric_name                = "${var.name}-cdn-${rule.value}"
        sampled_requests_enabled   = true
      }
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = "${var.name}-cdn"
    sampled_requests_enabled   = true
  }
}

resource "aws_cloudwatch_log_group" "waf" {
  # checkov:skip=CKV_AWS_158: the environment's KMS key is regional and this group must live in us-east-1 with the CloudFront web ACL; CloudWatch Logs encrypts it with its own key
  provider          = aws.us_east_1
  name              = "aws-waf-logs-${var.name}-cdn"
  retention_in_days = 365
}

resource "aws_wafv2_web_acl_logging_configuration" "cdn" {
  provider                = aws.us_east_1
  log_destination_configs = [aws_cloudwatch_log_group.waf.arn]
  resource_arn            = aws_wafv2_web_acl.cdn.arn
}

resource "aws_cloudfront_distribution" "site" {
  # checkov:skip=CKV2_AWS_32: the managed SecurityHeadersPolicy is attached by id in default_cache_behavior
  # checkov:skip=CKV_AWS_174: the default *.cloudfront.net certificate (no custom domain yet) fixes the minimum protocol; set an ACM certificate with TLSv1.2_2021 when the front end gets its own name
  # checkov:skip=CKV_AWS_310: one origin; static files have nowhere to fail over to
  # checkov:skip=CKV_AWS_374: the dashboard has no geographic restriction
  # checkov:skip=CKV2_AWS_42: custom certificate: see CKV_AWS_174
  # checkov:skip=CKV2_AWS_47: the web ACL includes AWSManagedRulesKnownBadInputsRuleSet (Log4j); checkov cannot see it through the dynamic block
  enabled             = true
  default_root_object = "index.html"
  web_acl_id          = aws_wafv2_web_acl.cdn.arn
  price_class         = "PriceClass_100"

  origin {
    domain_name              = aws_s3_bucket.site.bucket_regional_domain_name
    origin_id                = "site"
    origin_access_control_id = aws_cloudfront_origin_access_control.site.id
  }

  default_cache_behavior {
    target_origin_id           = "site"
    viewer_protocol_policy     = "redirect-to-https"
    allowed_methods            = ["GET", "HEAD"]
    cached_methods             = ["GET", "HEAD"]
    compress                   = true
    cache_policy_id            = "658327ea-f89d-4fab-a63d-7e88639e58f6" # managed CachingOptimized
    response_headers_policy_id = "67f7725c-6f97-4210-82d7-5512b31e9d03" # managed SecurityHeadersPolicy
  }

  logging_config {
    bucket = var.logs_bucket_domain_name
    prefix = "cloudfront/"
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  viewer_certificate {
    cloudfront_default_certificate = true
  }
}

data "aws_iam_policy_document" "site" {
  statement {
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.site.arn}/*"]
    principals {
      type        = "Service"
      identifiers = ["cloudfront.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "AWS:SourceArn"
      values   = [aws_cloudfront_distribution.site.arn]
    }
  }
}

resource "aws_s3_bucket_policy" "site" {
  bucket = aws_s3_bucket.site.id
  policy = data.aws_iam_policy_document.site.json
}
