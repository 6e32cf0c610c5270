variable "cluster_name" {
  description = "Name of the EKS cluster (also names the VPC)."
  type        = string
}

variable "region" {
  description = "AWS region."
  type        = string
}

variable "kubernetes_version" {
  description = "EKS Kubernetes version."
  type        = string
  default     = "1.32"
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC."
  type        = string
  default     = "10.0.0.0/16"
}

variable "node_instance_type" {
  description = "EC2 instance type of the managed node group."
  type        = string
  default     = "t3.large"
}

variable "node_count" {
  description = "Number of nodes in the managed node group."
  type        = number
  default     = 2
}

variable "cluster_config" {
  description = "Non-secret settings for the cluster-config ConfigMap."
  type        = map(string)
  default     = {}
}

variable "cluster_secrets" {
  description = "Secret settings for the cluster-secrets Secret."
  type        = map(string)
  default     = {}
  sensitive   = true
}
