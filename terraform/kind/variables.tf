variable "cluster_name" {
  description = "Name of the kind cluster."
  type        = string
}

variable "node_image" {
  description = "kindest/node image, which fixes the Kubernetes version."
  type        = string
  default     = "kindest/node:v1.32.2"
}

variable "workers" {
  description = "Number of worker nodes beside the control plane."
  type        = number
  default     = 1
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
