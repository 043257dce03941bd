output "vpc_id" {
  description = "The VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr_block" {
  description = "The VPC's address range."
  value       = aws_vpc.this.cidr_block
}

output "public_subnet_ids" {
  description = "Subnets of the ALB and the NAT gateway(s)."
  value       = aws_subnet.public[*].id
}

output "private_subnet_ids" {
  description = "Subnets of the ECS tasks and the Lambda."
  value       = aws_subnet.private[*].id
}

output "data_subnet_ids" {
  description = "Subnets of RDS and ElastiCache (no route out)."
  value       = aws_subnet.data[*].id
}

output "private_route_table_ids" {
  description = "Route tables of the private subnets (one per AZ)."
  value       = aws_route_table.private[*].id
}

output "nat_gateway_count" {
  description = "NAT gateways created (0 = the private subnets reach only AWS services, through endpoints)."
  value       = local.nat_count
}
