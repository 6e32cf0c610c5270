variable "cluster_name" {
  description = "Name of the existing cluster, as the environment will know it."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", var.cluster_name))
    error_message = "cluster_name must be a DNS label: lower-case letters, digits and '-'."
  }
}

variable "kubeconfig_path" {
  description = "Path of a kubeconfig file for the cluster. Set this or kubeconfig."
  type        = string
  default     = null
}

variable "kubeconfig" {
  description = "Content of a kubeconfig for the cluster. Set this or kubeconfig_path."
  type        = string
  default     = null
  sensitive   = true
}

variable "network" {
  description = "Facts about the cluster's network, passed through to the contract's network output."
  type        = any
  default     = null
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
