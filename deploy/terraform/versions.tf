terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.80, < 6.0"
    }
  }

  # Remote state per environment, with DynamoDB locking: the settings are in envs/ENV.s3.tfbackend
  # (`terraform init -backend-config=envs/dev.s3.tfbackend`), so one root serves every environment.
  backend "s3" {}
}

provider "aws" {
  region = var.region
  default_tags {
    tags = {
      project     = "salescast"
      environment = var.environment
      managed-by  = "terraform"
    }
  }
}

# CloudFront's WAF and certificates live in us-east-1 whatever the region of the stack.
provider "aws" {
  alias  = "us_east_1"
  region = "us-east-1"
  default_tags {
    tags = {
      project     = "salescast"
      environment = var.environment
      managed-by  = "terraform"
    }
  }
}
