# The output contract of gitops-bootstrap (see terraform/README.md).

output "contract_version" {
  description = "Version of the output contract this module honours."
  value       = 1
}

output "cluster_name" {
  description = "Name of the cluster."
  value       = module.eks.cluster_name
}

output "cluster_endpoint" {
  description = "URL of the Kubernetes API server."
  value       = module.eks.cluster_endpoint
}

output "cluster_ca_certificate" {
  description = "Base64 of the PEM certificate of the cluster's CA."
  value       = module.eks.cluster_certificate_authority_data
}

output "cluster_token" {
  description = "Bearer token for the Kubernetes API (short-lived)."
  value       = data.aws_eks_cluster_auth.this.token
  sensitive   = true
}

output "network" {
  description = "Facts about the cluster's network."
  value = {
    provider        = "aws"
    region          = var.region
    vpc_id          = module.vpc.vpc_id
    private_subnets = module.vpc.private_subnets
    public_subnets  = module.vpc.public_subnets
  }
}

output "cluster_config" {
  description = "Non-secret settings for the cluster-config ConfigMap."
  value       = var.cluster_config
}

output "cluster_secrets" {
  description = "Secret settings for the cluster-secrets Secret."
  value       = var.cluster_secrets
  sensitive   = true
}
