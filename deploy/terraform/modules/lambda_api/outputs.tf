output "invoke_url" {
  description = "Base URL of the stage."
  value       = aws_api_gateway_stage.live.invoke_url
}

output "function_name" {
  description = "The Lambda function."
  value       = aws_lambda_function.api.function_name
}

output "security_group_id" {
  description = "The function's security group (a database and cache client)."
  value       = aws_security_group.lambda.id
}
