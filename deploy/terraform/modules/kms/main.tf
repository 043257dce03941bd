# One customer-managed key for the environment's data at rest: S3 artifacts and data lake, RDS, ElastiCache,
# Secrets Manager, SNS, CloudWatch Logs and ECR. Rotated yearly.
data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

data "aws_iam_policy_document" "key" {
  # checkov:skip=CKV_AWS_109: a key policy's "*" resource is this key only; the account-root statement is AWS's default that lets IAM policies govern the key
  # checkov:skip=CKV_AWS_111: as above: key policies have no other resource to name
  # checkov:skip=CKV_AWS_356: a key policy names its own key as "*"; there is no narrower resource
  # The account administers the key through IAM policies (AWS's default key policy).
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }

  # Services that encrypt on the account's behalf and cannot use an IAM role of ours.
  statement {
    sid       = "ServicesEncrypt"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type = "Service"
      identifiers = [
        "logs.${data.aws_region.current.name}.amazonaws.com",
        "sns.amazonaws.com",
        "cloudwatch.amazonaws.com",
        "budgets.amazonaws.com",
        "cloudtrail.amazonaws.com",
        "cloudfront.amazonaws.com",
      ]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "${var.name} data at rest"
  enable_key_rotation     = true
  deletion_window_in_days = var.deletion_window_days
  policy                  = data.aws_iam_policy_document.key.json
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.this.key_id
}
