# The serverless path: the API as a Lambda container (salescast.serving.lambda_handler.handler) behind
# API Gateway. A REST API, not an HTTP API: AWS WAF attaches to REST API stages (and ALBs, CloudFront) but
# not to HTTP APIs, and the stage must carry the same WAF rules as the ALB. The handler takes both payloads.
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

resource "aws_security_group" "lambda" {
  name        = "${var.name}-lambda"
  description = "salescast Lambda: outbound only"
  vpc_id      = var.vpc_id
}

data "aws_vpc" "this" {
  id = var.vpc_id
}

resource "aws_vpc_security_group_egress_rule" "lambda" {
  for_each          = { https = 443, postgres = 5432, redis = 6379 }
  security_group_id = aws_security_group.lambda.id
  description       = "${each.key} inside the VPC (endpoints and datastores)"
  cidr_ipv4         = data.aws_vpc.this.cidr_block
  from_port         = each.value
  to_port           = each.value
  ip_protocol       = "tcp"
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "lambda" {
  name               = "${var.name}-lambda"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

resource "aws_iam_role_policy_attachment" "vpc" {
  role       = aws_iam_role.lambda.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}

locals {
  secret_settings = merge(
    {
      SALESCAST_DATABASE_URL_SECRET   = var.database_url_secret_arn
      SALESCAST_REDIS_PASSWORD_SECRET = var.redis_auth_token_secret_arn
    },
    var.database_read_url_secret_arn == null ? {} : { SALESCAST_DATABASE_READ_URL_SECRET = var.database_read_url_secret_arn },
  )
}

data "aws_iam_policy_document" "lambda" {
  statement {
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${var.artifacts_bucket_arn}/*"]
  }
  statement {
    actions   = ["secretsmanager:GetSecretValue"]
    resources = values(local.secret_settings)
  }
  statement {
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
  statement {
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "lambda" {
  name   = "salescast-lambda"
  role   = aws_iam_role.lambda.id
  policy = data.aws_iam_policy_document.lambda.json
}

resource "aws_cloudwatch_log_group" "lambda" {
  name              = "/aws/lambda/${var.name}-api"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_lambda_function" "api" {
  # checkov:skip=CKV_AWS_116: invoked synchronously by API Gateway; a failed request is answered, never retried, so a dead-letter queue would stay empty
  # checkov:skip=CKV_AWS_272: code signing covers zip packages only; the container image is scanned and pinned by digest in ECR instead
  function_name                  = "${var.name}-api"
  role                           = aws_iam_role.lambda.arn
  package_type                   = "Image"
  image_uri                      = var.image_uri
  memory_size                    = var.memory_mb
  timeout                        = 29 # API Gateway's integration limit
  reserved_concurrent_executions = var.reserved_concurrency
  kms_key_arn                    = var.kms_key_arn

  environment {
    # Secrets are not environment values here: salescast reads each from Secrets Manager at cold start
    # (a SALESCAST_*_SECRET setting names it).
    variables = merge(var.environment, local.secret_settings)
  }

  vpc_config {
    subnet_ids         = var.private_subnet_ids
    security_group_ids = [aws_security_group.lambda.id]
  }

  tracing_config {
    mode = "Active"
  }

  depends_on = [aws_cloudwatch_log_group.lambda, aws_iam_role_policy_attachment.vpc]
}

# ---- REST API: every path and method to the function -------------------------------------------------------
resource "aws_api_gateway_rest_api" "this" {
  name = "${var.name}-api"
  endpoint_configuration {
    types = ["REGIONAL"]
  }
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_api_gateway_resource" "proxy" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_rest_api.this.root_resource_id
  path_part   = "{proxy+}"
}

locals {
  resources = {
    root  = aws_api_gateway_rest_api.this.root_resource_id
    proxy = aws_api_gateway_resource.proxy.id
  }
}

resource "aws_api_gateway_method" "any" {
  # checkov:skip=CKV_AWS_59: salescast authenticates every non-public route itself (API keys with scopes); health and metrics are public on purpose
  # checkov:skip=CKV2_AWS_53: the app validates every request with its pydantic models and answers 422 with each field
  for_each      = local.resources
  rest_api_id   = aws_api_gateway_rest_api.this.id
  resource_id   = each.value
  http_method   = "ANY"
  authorization = "NONE"
}

resource "aws_api_gateway_integration" "lambda" {
  for_each                = local.resources
  rest_api_id             = aws_api_gateway_rest_api.this.id
  resource_id             = each.value
  http_method             = aws_api_gateway_method.any[each.key].http_method
  integration_http_method = "POST"
  type                    = "AWS_PROXY"
  uri                     = aws_lambda_function.api.invoke_arn
}

resource "aws_api_gateway_deployment" "this" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  triggers = {
    redeploy = sha1(jsonencode([aws_api_gateway_integration.lambda, aws_api_gateway_method.any]))
  }
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_cloudwatch_log_group" "access" {
  name              = "/salescast/${var.name}/apigateway-access"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_api_gateway_stage" "live" {
  # checkov:skip=CKV2_AWS_29: protected by the web ACL of module.waf below (modules/waf associates it through resource_arns); checkov's graph does not follow a nested module
  # checkov:skip=CKV2_AWS_77: the attached web ACL includes AWSManagedRulesKnownBadInputsRuleSet (Log4j), in a dynamic block checkov does not expand
  # checkov:skip=CKV_AWS_120: salescast caches responses itself (Redis), keyed by model version; a stage cache would serve a rolled-back version
  # checkov:skip=CKV2_AWS_51: public clients, no client certificates; the backend is a Lambda, not an HTTP endpoint to authenticate to
  # checkov:skip=CKV2_AWS_4: execution logging is left off (it logs request bodies); access logs below cover each request
  deployment_id        = aws_api_gateway_deployment.this.id
  rest_api_id          = aws_api_gateway_rest_api.this.id
  stage_name           = "live"
  xray_tracing_enabled = true
  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.access.arn
    format = jsonencode({
      requestId = "$context.requestId", ip = "$context.identity.sourceIp", method = "$context.httpMethod",
      path      = "$context.path", status = "$context.status", latencyMs = "$context.responseLatency",
      waf       = "$context.wafResponseCode"
    })
  }
}

resource "aws_api_gateway_method_settings" "all" {
  # checkov:skip=CKV_AWS_225: salescast caches responses itself, keyed by model version (see the stage)
  rest_api_id = aws_api_gateway_rest_api.this.id
  stage_name  = aws_api_gateway_stage.live.stage_name
  method_path = "*/*"
  settings {
    metrics_enabled        = true
    logging_level          = "ERROR"
    caching_enabled        = false
    throttling_burst_limit = 200
    throttling_rate_limit  = 100
  }
}

resource "aws_lambda_permission" "apigateway" {
  statement_id  = "AllowApiGateway"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.api.function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_api_gateway_rest_api.this.execution_arn}/*/*"
}

# ---- WAF on the stage: the stack's one rule set (modules/waf), as on the ALB -----------------------------
module "waf" {
  source             = "../waf"
  name               = "${var.name}-apigw"
  rate_limit         = var.waf_rate_limit
  resource_arns      = [aws_api_gateway_stage.live.arn]
  log_retention_days = var.log_retention_days
  kms_key_arn        = var.kms_key_arn
}

moved {
  from = aws_wafv2_web_acl.this
  to   = module.waf.aws_wafv2_web_acl.this
}

moved {
  from = aws_wafv2_web_acl_association.stage
  to   = module.waf.aws_wafv2_web_acl_association.this[0]
}

moved {
  from = aws_cloudwatch_log_group.waf
  to   = module.waf.aws_cloudwatch_log_group.this
}

moved {
  from = aws_wafv2_web_acl_logging_configuration.this
  to   = module.waf.aws_wafv2_web_acl_logging_configuration.this
}
