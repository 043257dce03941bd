# Three buckets:
#   artifacts - model artifacts (salescast's S3ArtifactStore): versioned, SSE-KMS, old versions expire
#   data_lake - the sales files the worker ingests (SALESCAST_DROP_URI) and exports: tiered by age
#   logs      - S3 server access logs of the two and the ALB's access logs. SSE-S3, because ELB log
#               delivery cannot write with a customer-managed KMS key.
data "aws_elb_service_account" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  kms_buckets = {
    artifacts = "${var.name}-artifacts"
    data_lake = "${var.name}-data-lake"
  }
}

# ---- logs bucket -----------------------------------------------------------------------------------------
resource "aws_s3_bucket" "logs" {
  # checkov:skip=CKV_AWS_18: this bucket receives the access logs; logging it into itself would loop
  # checkov:skip=CKV_AWS_145: ELB access log delivery supports only SSE-S3 (AES256), not a KMS key
  # checkov:skip=CKV_AWS_144: access logs are not replicated across regions; they are kept for an audit in region
  # checkov:skip=CKV2_AWS_62: no consumer of log object events
  bucket        = "${var.name}-logs"
  force_destroy = var.force_destroy
}

resource "aws_s3_bucket_ownership_controls" "logs" {
  # checkov:skip=CKV2_AWS_65: CloudFront standard logging writes through an ACL, so ACLs stay enabled on the logs bucket only
  bucket = aws_s3_bucket.logs.id
  rule {
    object_ownership = "BucketOwnerPreferred"
  }
}

resource "aws_s3_bucket_public_access_block" "logs" {
  bucket                  = aws_s3_bucket.logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "logs" {
  bucket = aws_s3_bucket.logs.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "logs" {
  count  = var.lifecycle_rules ? 1 : 0
  bucket = aws_s3_bucket.logs.id
  rule {
    id     = "expire-logs"
    status = "Enabled"
    filter {
      prefix = "" # every object (AWS answers an empty filter as this one)
    }
    expiration {
      days = var.log_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

data "aws_iam_policy_document" "logs" {
  statement {
    sid       = "ElbAccessLogs"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.logs.arn}/alb/*"]
    principals {
      type        = "AWS"
      identifiers = [data.aws_elb_service_account.current.arn]
    }
  }
  statement {
    # The whole bucket as the resource (AWS's documented form); the condition limits the writers to the
    # account's two source buckets, whose target prefixes are s3/NAME/.
    sid       = "S3ServerAccessLogs"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.logs.arn}/*"]
    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [for b in local.kms_buckets : "arn:${data.aws_partition.current.partition}:s3:::${b}"]
    }
  }
  dynamic "statement" {
    for_each = var.require_tls ? ["TlsOnly"] : []
    content {
      sid       = statement.value
      effect    = "Deny"
      actions   = ["s3:*"]
      resources = [aws_s3_bucket.logs.arn, "${aws_s3_bucket.logs.arn}/*"]
      principals {
        type        = "*"
        identifiers = ["*"]
      }
      condition {
        test     = "Bool"
        variable = "aws:SecureTransport"
        values   = ["false"]
      }
    }
  }
}

resource "aws_s3_bucket_policy" "logs" {
  bucket     = aws_s3_bucket.logs.id
  policy     = data.aws_iam_policy_document.logs.json
  depends_on = [aws_s3_bucket_public_access_block.logs]
}

# ---- artifacts and data lake -----------------------------------------------------------------------------
resource "aws_s3_bucket" "this" {
  # checkov:skip=CKV_AWS_144: one region; the artifacts can be rebuilt by retraining and the data lake is backed up by versioning (cross-region replication is a later decision, see docs/deploy.md)
  # checkov:skip=CKV2_AWS_61: both have lifecycle rules (aws_s3_bucket_lifecycle_configuration.artifacts and .data_lake); checkov cannot follow the for_each key
  # checkov:skip=CKV2_AWS_62: the worker polls the drop prefix on its schedule; no S3 event consumer
  for_each      = local.kms_buckets
  bucket        = each.value
  force_destroy = var.force_destroy
}

resource "aws_s3_bucket_ownership_controls" "this" {
  for_each = aws_s3_bucket.this
  bucket   = each.value.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  for_each                = aws_s3_bucket.this
  bucket                  = each.value.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "this" {
  for_each = aws_s3_bucket.this
  bucket   = each.value.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  for_each = aws_s3_bucket.this
  bucket   = each.value.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_logging" "this" {
  for_each      = aws_s3_bucket.this
  bucket        = each.value.id
  target_bucket = aws_s3_bucket.logs.id
  target_prefix = "s3/${each.key}/"
  # S3 refuses a logging target whose policy does not yet let the logging service write.
  depends_on = [aws_s3_bucket_policy.logs]
}

resource "aws_s3_bucket_lifecycle_configuration" "artifacts" {
  count  = var.lifecycle_rules ? 1 : 0
  bucket = aws_s3_bucket.this["artifacts"].id
  rule {
    id     = "expire-old-artifact-versions"
    status = "Enabled"
    filter {
      prefix = "" # every object (AWS answers an empty filter as this one)
    }
    noncurrent_version_expiration {
      noncurrent_days = var.artifact_noncurrent_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
  depends_on = [aws_s3_bucket_versioning.this]
}

resource "aws_s3_bucket_lifecycle_configuration" "data_lake" {
  count  = var.lifecycle_rules ? 1 : 0
  bucket = aws_s3_bucket.this["data_lake"].id
  rule {
    id     = "tier-by-age"
    status = "Enabled"
    filter {
      prefix = "" # every object (AWS answers an empty filter as this one)
    }
    transition {
      days          = var.data_lake_ia_days
      storage_class = "STANDARD_IA"
    }
    transition {
      days          = var.data_lake_glacier_days
      storage_class = "GLACIER_IR"
    }
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
  depends_on = [aws_s3_bucket_versioning.this]
}

data "aws_iam_policy_document" "tls_only" {
  for_each = var.require_tls ? aws_s3_bucket.this : {}
  statement {
    sid       = "TlsOnly"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [each.value.arn, "${each.value.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "this" {
  for_each   = var.require_tls ? aws_s3_bucket.this : {}
  bucket     = each.value.id
  policy     = data.aws_iam_policy_document.tls_only[each.key].json
  depends_on = [aws_s3_bucket_public_access_block.this]
}
