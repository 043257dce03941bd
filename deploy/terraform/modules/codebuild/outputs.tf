output "project_name" {
  description = "The CodeBuild project."
  value       = aws_codebuild_project.this.name
}
