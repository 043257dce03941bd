# Fargate: the API as two services, blue and green, one per ALB target group (release.yml deploys the idle
# color, smoke-tests it and moves the listener's weights); the worker as a service or as scheduled tasks.
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  colors   = toset(["blue", "green"])
  env_list = [for k, v in var.environment : { name = k, value = v }]
  # Settings ECS reads from Secrets Manager into the containers' environment (never in the task definition).
  secret_arns = merge(
    { SALESCAST_DATABASE_URL = var.database_url_secret_arn, SALESCAST_REDIS_PASSWORD = var.redis_auth_token_secret_arn },
    var.database_read_url_secret_arn == null ? {} : { SALESCAST_DATABASE_READ_URL = var.database_read_url_secret_arn },
  )
  secrets = [for name, arn in local.secret_arns : { name = name, valueFrom = arn }]
  # The image's user cannot write the root filesystem; salescast's home and /tmp are task-scoped volumes.
  volumes = [
    { sourceVolume = "home", containerPath = "/app/.salescast", readOnly = false },
    { sourceVolume = "tmp", containerPath = "/tmp", readOnly = false },
  ]
  worker_commands = {
    ingest  = ["worker", "--once", "ingest"]
    retrain = ["worker", "--once", "retrain"]
  }
}

resource "aws_ecs_cluster" "this" {
  name = var.name
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = ["FARGATE", "FARGATE_SPOT"]
  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}

# ---- security groups ---------------------------------------------------------------------------------------
resource "aws_security_group" "api" {
  name        = "${var.name}-api"
  description = "salescast API tasks: from the ALB only"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "api_from_alb" {
  security_group_id            = aws_security_group.api.id
  description                  = "API port from the ALB"
  referenced_security_group_id = var.alb_security_group_id
  from_port                    = 8000
  to_port                      = 8000
  ip_protocol                  = "tcp"
}

resource "aws_security_group" "worker" {
  name        = "${var.name}-worker"
  description = "salescast worker tasks: no inbound traffic"
  vpc_id      = var.vpc_id
}

# Both reach HTTPS anywhere (VPC endpoints; the worker's external data through NAT), PostgreSQL and Redis
# inside the VPC.
resource "aws_vpc_security_group_egress_rule" "https" {
  for_each          = { api = aws_security_group.api.id, worker = aws_security_group.worker.id }
  security_group_id = each.value
  description       = "HTTPS: AWS endpoints and external data"
  cidr_ipv4         = "0.0.0.0/0"
  from_port         = 443
  to_port           = 443
  ip_protocol       = "tcp"
}

data "aws_vpc" "this" {
  id = var.vpc_id
}

resource "aws_vpc_security_group_egress_rule" "datastores" {
  for_each = {
    api-postgres    = [aws_security_group.api.id, 5432]
    api-redis       = [aws_security_group.api.id, 6379]
    worker-postgres = [aws_security_group.worker.id, 5432]
    worker-redis    = [aws_security_group.worker.id, 6379]
  }
  security_group_id = each.value[0]
  description       = "Datastore inside the VPC"
  cidr_ipv4         = data.aws_vpc.this.cidr_block
  from_port         = each.value[1]
  to_port           = each.value[1]
  ip_protocol       = "tcp"
}

# ---- IAM: one execution role (pull, logs, the secret), one task role per service --------------------------
data "aws_iam_policy_document" "ecs_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "execution" {
  name               = "${var.name}-ecs-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_assume.json
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "execution_secrets" {
  statement {
    actions   = ["secretsmanager:GetSecretValue"]
    resources = values(local.secret_arns)
  }
  statement {
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "execution_secrets" {
  name   = "read-settings-secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution_secrets.json
}

resource "aws_iam_role" "task" {
  for_each           = toset(["api", "worker"])
  name               = "${var.name}-${each.key}-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_assume.json
}

# The API reads artifacts and publishes alerts (rollbacks); it never writes the bucket.
data "aws_iam_policy_document" "api" {
  statement {
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${var.artifacts_bucket_arn}/*"]
  }
  statement {
    actions   = ["s3:ListBucket"]
    resources = [var.artifacts_bucket_arn]
  }
  statement {
    actions   = ["sns:Publish"]
    resources = [var.alerts_topic_arn]
  }
  statement {
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }
}

# The worker reads the drop, writes artifacts, writes backups (`salescast backup` under backups/ of the data
# lake, run as a task of its definition) and publishes alerts.
data "aws_iam_policy_document" "worker" {
  statement {
    actions   = ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${var.artifacts_bucket_arn}/*"]
  }
  statement {
    actions   = ["s3:GetObject"]
    resources = ["${var.data_lake_bucket_arn}/*"]
  }
  statement {
    actions   = ["s3:PutObject"]
    resources = ["${var.data_lake_bucket_arn}/backups/*"]
  }
  statement {
    actions   = ["s3:ListBucket"]
    resources = [var.artifacts_bucket_arn, var.data_lake_bucket_arn]
  }
  statement {
    actions   = ["sns:Publish"]
    resources = [var.alerts_topic_arn]
  }
  statement {
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "task" {
  for_each = { api = data.aws_iam_policy_document.api.json, worker = data.aws_iam_policy_document.worker.json }
  name     = "salescast-${each.key}"
  role     = aws_iam_role.task[each.key].id
  policy   = each.value
}

# ---- task definitions --------------------------------------------------------------------------------------
resource "aws_ecs_task_definition" "api" {
  family                   = "${var.name}-api"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.api_cpu
  memory                   = var.api_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task["api"].arn
  volume { name = "home" }
  volume { name = "tmp" }

  container_definitions = jsonencode([{
    name                   = "api"
    image                  = var.images["api"]
    essential              = true
    readonlyRootFilesystem = true
    portMappings           = [{ containerPort = 8000, protocol = "tcp" }]
    environment            = concat(local.env_list, [{ name = "SALESCAST_SERVE_WORKERS", value = "2" }])
    secrets                = local.secrets
    mountPoints            = local.volumes
    stopTimeout            = 40
    healthCheck = {
      command     = ["CMD", "python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/api/v1/health', timeout=4).status != 200)"]
      interval    = 30
      timeout     = 5
      retries     = 3
      startPeriod = 60
    }
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = var.log_group_names["api"]
        awslogs-region        = data.aws_region.current.name
        awslogs-stream-prefix = "api"
      }
    }
  }])
}

resource "aws_ecs_task_definition" "worker" {
  for_each                 = { service = ["worker"], ingest = local.worker_commands.ingest, retrain = local.worker_commands.retrain }
  family                   = "${var.name}-worker-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.worker_cpu
  memory                   = var.worker_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task["worker"].arn
  volume { name = "home" }
  volume { name = "tmp" }
  ephemeral_storage {
    size_in_gib = 50
  }

  container_definitions = jsonencode([{
    name                   = "worker"
    image                  = var.images["worker"]
    essential              = true
    readonlyRootFilesystem = true
    command                = each.value
    environment            = local.env_list
    secrets                = local.secrets
    mountPoints            = local.volumes
    stopTimeout            = 120
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = var.log_group_names["worker"]
        awslogs-region        = data.aws_region.current.name
        awslogs-stream-prefix = each.key
      }
    }
  }])
}

# ---- services ----------------------------------------------------------------------------------------------
resource "aws_ecs_service" "api" {
  for_each                          = local.colors
  name                              = "${var.name}-api-${each.key}"
  cluster                           = aws_ecs_cluster.this.id
  task_definition                   = aws_ecs_task_definition.api.arn
  desired_count                     = each.key == "blue" ? var.api_min_count : 0
  launch_type                       = "FARGATE"
  health_check_grace_period_seconds = 90
  propagate_tags                    = "SERVICE"
  enable_execute_command            = false

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.api.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = var.target_group_arns[each.key]
    container_name   = "api"
    container_port   = 8000
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  # release.yml sets the image (task definition) and the count of each color; autoscaling moves the count.
  lifecycle {
    ignore_changes = [desired_count, task_definition]
  }
}

resource "aws_ecs_service" "worker" {
  count           = var.worker_service ? 1 : 0
  name            = "${var.name}-worker"
  cluster         = aws_ecs_cluster.this.id
  task_definition = aws_ecs_task_definition.worker["service"].arn
  desired_count   = 1
  launch_type     = "FARGATE"
  propagate_tags  = "SERVICE"

  # One worker: the schedule's locks allow more, but a second one would only wait on them.
  deployment_minimum_healthy_percent = 0
  deployment_maximum_percent         = 100

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.worker.id]
    assign_public_ip = false
  }

  lifecycle {
    ignore_changes = [task_definition]
  }
}

# ---- autoscaling: CPU and ALB requests per task, per color -------------------------------------------------
resource "aws_appautoscaling_target" "api" {
  for_each           = local.colors
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.api[each.key].name}"
  scalable_dimension = "ecs:service:DesiredCount"
  # The idle color may sit at 0; release.yml raises its minimum before moving traffic to it.
  min_capacity = each.key == "blue" ? var.api_min_count : 0
  max_capacity = var.api_max_count

  lifecycle {
    ignore_changes = [min_capacity]
  }
}

resource "aws_appautoscaling_policy" "api_cpu" {
  for_each           = local.colors
  name               = "${var.name}-api-${each.key}-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = "ecs"
  resource_id        = aws_appautoscaling_target.api[each.key].resource_id
  scalable_dimension = aws_appautoscaling_target.api[each.key].scalable_dimension
  target_tracking_scaling_policy_configuration {
    target_value       = var.api_cpu_target
    scale_in_cooldown  = 300
    scale_out_cooldown = 60
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

resource "aws_appautoscaling_policy" "api_requests" {
  for_each           = local.colors
  name               = "${var.name}-api-${each.key}-requests"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = "ecs"
  resource_id        = aws_appautoscaling_target.api[each.key].resource_id
  scalable_dimension = aws_appautoscaling_target.api[each.key].scalable_dimension
  target_tracking_scaling_policy_configuration {
    target_value       = var.api_requests_per_target
    scale_in_cooldown  = 300
    scale_out_cooldown = 60
    predefined_metric_specification {
      predefined_metric_type = "ALBRequestCountPerTarget"
      resource_label         = "${var.alb_arn_suffix}/${var.target_group_arn_suffixes[each.key]}"
    }
  }
}

# ---- off-hours scale-down (dev) ----------------------------------------------------------------------------
resource "aws_appautoscaling_target" "worker" {
  count              = var.worker_service && var.off_hours_scale_down ? 1 : 0
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.worker[0].name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = 1
  max_capacity       = 1
}

locals {
  off_hours_targets = var.off_hours_scale_down ? merge(
    { for c in local.colors : "api-${c}" => { id = aws_appautoscaling_target.api[c].resource_id, min = c == "blue" ? var.api_min_count : 0, max = var.api_max_count } },
    var.worker_service ? { worker = { id = aws_appautoscaling_target.worker[0].resource_id, min = 1, max = 1 } } : {},
  ) : {}
}

resource "aws_appautoscaling_scheduled_action" "night" {
  for_each           = local.off_hours_targets
  name               = "${var.name}-${each.key}-night"
  service_namespace  = "ecs"
  resource_id        = each.value.id
  scalable_dimension = "ecs:service:DesiredCount"
  schedule           = "cron(0 20 ? * MON-FRI *)"
  scalable_target_action {
    min_capacity = 0
    max_capacity = 0
  }
}

resource "aws_appautoscaling_scheduled_action" "morning" {
  for_each           = local.off_hours_targets
  name               = "${var.name}-${each.key}-morning"
  service_namespace  = "ecs"
  resource_id        = each.value.id
  scalable_dimension = "ecs:service:DesiredCount"
  schedule           = "cron(0 7 ? * MON-FRI *)"
  scalable_target_action {
    min_capacity = each.value.min
    max_capacity = each.value.max
  }
}

# ---- scheduled ingestion and weekly training (worker_service = false) -------------------------------------
data "aws_iam_policy_document" "scheduler_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "scheduler" {
  count              = var.worker_service ? 0 : 1
  name               = "${var.name}-scheduler"
  assume_role_policy = data.aws_iam_policy_document.scheduler_assume.json
}

data "aws_iam_policy_document" "scheduler" {
  statement {
    actions   = ["ecs:RunTask"]
    resources = [for k in ["ingest", "retrain"] : aws_ecs_task_definition.worker[k].arn_without_revision]
    condition {
      test     = "ArnLike"
      variable = "ecs:cluster"
      values   = [aws_ecs_cluster.this.arn]
    }
  }
  statement {
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.execution.arn, aws_iam_role.task["worker"].arn]
  }
}

resource "aws_iam_role_policy" "scheduler" {
  count  = var.worker_service ? 0 : 1
  name   = "run-worker-tasks"
  role   = aws_iam_role.scheduler[0].id
  policy = data.aws_iam_policy_document.scheduler.json
}

resource "aws_scheduler_schedule" "worker" {
  for_each                     = var.worker_service ? {} : { ingest = var.ingest_schedule, retrain = var.training_schedule }
  name                         = "${var.name}-${each.key}"
  schedule_expression          = each.value
  schedule_expression_timezone = "UTC"
  kms_key_arn                  = var.kms_key_arn
  flexible_time_window {
    mode = "OFF"
  }
  target {
    arn      = aws_ecs_cluster.this.arn
    role_arn = aws_iam_role.scheduler[0].arn
    ecs_parameters {
      task_definition_arn = aws_ecs_task_definition.worker[each.key].arn_without_revision
      launch_type         = "FARGATE"
      task_count          = 1
      network_configuration {
        subnets          = var.private_subnet_ids
        security_groups  = [aws_security_group.worker.id]
        assign_public_ip = false
      }
    }
    retry_policy {
      maximum_retry_attempts = 2
    }
  }
}
