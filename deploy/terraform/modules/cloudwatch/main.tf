# Log groups of the services, the alarms the issue asks for (5xx, p99 latency, stale data) and one dashboard.
# Everything alarms into the alerts topic, where salescast's own alerts also go.
resource "aws_cloudwatch_log_group" "service" {
  # checkov:skip=CKV_AWS_338: retention is per environment (log_retention_days): a year in prod, 30 days in dev to keep its cost down
  for_each          = toset(["api", "worker"])
  name              = "/salescast/${var.name}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_cloudwatch_metric_alarm" "http_5xx" {
  alarm_name          = "${var.name}-api-5xx"
  alarm_description   = "The API answered too many 5xx (ALB and targets) for 3 minutes in a row."
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.error_rate_threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alerts_topic_arn]
  ok_actions          = [var.alerts_topic_arn]

  metric_query {
    id          = "errors"
    expression  = "target + elb"
    label       = "5xx per minute"
    return_data = true
  }
  metric_query {
    id = "target"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_Target_5XX_Count"
      dimensions  = { LoadBalancer = var.alb_arn_suffix }
      period      = 60
      stat        = "Sum"
    }
  }
  metric_query {
    id = "elb"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_ELB_5XX_Count"
      dimensions  = { LoadBalancer = var.alb_arn_suffix }
      period      = 60
      stat        = "Sum"
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "p99_latency" {
  for_each            = var.target_group_arn_suffixes
  alarm_name          = "${var.name}-api-${each.key}-p99"
  alarm_description   = "p99 response time of the ${each.key} targets above ${var.p99_latency_seconds}s for 5 minutes."
  namespace           = "AWS/ApplicationELB"
  metric_name         = "TargetResponseTime"
  dimensions          = { LoadBalancer = var.alb_arn_suffix, TargetGroup = each.value }
  extended_statistic  = "p99"
  period              = 60
  evaluation_periods  = 5
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.p99_latency_seconds
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alerts_topic_arn]
  ok_actions          = [var.alerts_topic_arn]
}

# Stale data: the worker logs `worker.ingest.done` after each ingestion run; none for stale_data_hours means
# no new sales reached the models. Missing data counts as breaching: a dead worker is stale data too.
resource "aws_cloudwatch_log_metric_filter" "ingest_done" {
  name           = "${var.name}-ingest-done"
  log_group_name = aws_cloudwatch_log_group.service["worker"].name
  pattern        = "\"worker.ingest.done\""
  metric_transformation {
    name      = "IngestRuns"
    namespace = "salescast/${var.name}"
    value     = "1"
  }
}

resource "aws_cloudwatch_metric_alarm" "stale_data" {
  alarm_name          = "${var.name}-stale-data"
  alarm_description   = "No ingestion run finished in ${var.stale_data_hours} hours."
  namespace           = "salescast/${var.name}"
  metric_name         = "IngestRuns"
  statistic           = "Sum"
  period              = 3600
  evaluation_periods  = var.stale_data_hours
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  treat_missing_data  = "breaching"
  alarm_actions       = [var.alerts_topic_arn]
  ok_actions          = [var.alerts_topic_arn]
  depends_on          = [aws_cloudwatch_log_metric_filter.ingest_done]
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name
  dashboard_body = jsonencode({
    widgets = [
      {
        type = "metric", x = 0, y = 0, width = 12, height = 6
        properties = {
          title  = "Requests and 5xx"
          region = data.aws_region.current.name
          stat   = "Sum"
          period = 60
          metrics = [
            ["AWS/ApplicationELB", "RequestCount", "LoadBalancer", var.alb_arn_suffix],
            [".", "HTTPCode_Target_5XX_Count", ".", "."],
            [".", "HTTPCode_ELB_5XX_Count", ".", "."],
          ]
        }
      },
      {
        type = "metric", x = 12, y = 0, width = 12, height = 6
        properties = {
          title   = "p99 response time per color"
          region  = data.aws_region.current.name
          stat    = "p99"
          period  = 60
          metrics = [for c, tg in var.target_group_arn_suffixes : ["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", var.alb_arn_suffix, "TargetGroup", tg, { label = c }]]
        }
      },
      {
        type = "metric", x = 0, y = 6, width = 12, height = 6
        properties = {
          title   = "API CPU per color"
          region  = data.aws_region.current.name
          stat    = "Average"
          period  = 60
          metrics = [for c, s in var.api_service_names : ["AWS/ECS", "CPUUtilization", "ClusterName", var.cluster_name, "ServiceName", s, { label = c }]]
        }
      },
      {
        type = "metric", x = 12, y = 6, width = 12, height = 6
        properties = {
          title   = "Ingestion runs per hour"
          region  = data.aws_region.current.name
          stat    = "Sum"
          period  = 3600
          metrics = [["salescast/${var.name}", "IngestRuns"]]
        }
      },
    ]
  })
}

data "aws_region" "current" {}
