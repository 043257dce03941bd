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

# The stack's one WAF rule set (modules/waf), made in us-east-1 as CloudFront wants; static files take no
# SQL, so the SQL injection group is left out here.
module "waf" {
  source              = "../waf"
  providers           = { aws = aws.us_east_1 }
  name                = "${var.name}-cdn"
  scope               = "CLOUDFRONT"
  rate_limit          = var.waf_rate_limit
  managed_rule_groups = ["AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet"]
  log_retention_days  = 365
}

moved {
  from = aws_wafv2_web_acl.cdn
  to   = module.waf.aws_wafv2_web_acl.this
}

moved {
  from = aws_cloudwatch_log_group.waf
  to   = module.waf.aws_cloudwatch_log_group.this
}

moved {
  from = aws_wafv2_web_acl_logging_configuration.cdn
  to   = module.waf.aws_wafv2_web_acl_logging_configuration.this
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
  web_acl_id          = module.waf.web_acl_arn
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
