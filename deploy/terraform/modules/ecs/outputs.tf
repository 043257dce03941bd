output "cluster_name" {
  description = "The ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "api_service_names" {
  description = "API service per color."
  value       = { for k, s in aws_ecs_service.api : k => s.name }
}

output "worker_service_name" {
  description = "The worker service (null when the worker runs as scheduled tasks)."
  value       = var.worker_service ? aws_ecs_service.worker[0].name : null
}

output "task_security_group_ids" {
  description = "Security groups of the API and worker tasks (database and cache clients)."
  value       = [aws_security_group.api.id, aws_security_group.worker.id]
}

output "task_role_arns" {
  description = "Task role per service."
  value       = { for k, r in aws_iam_role.task : k => r.arn }
}

output "execution_role_arn" {
  description = "The tasks' execution role (release.yml passes it when it registers a task definition)."
  value       = aws_iam_role.execution.arn
}
