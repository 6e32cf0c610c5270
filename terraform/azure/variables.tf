variable "cluster_name" {
  description = "Name of the AKS cluster (also prefixes the resource group and the vNet)."
  type        = string
}

variable "subscription_id" {
  description = "Azure subscription to create the cluster in."
  type        = string
}

variable "location" {
  description = "Azure region."
  type        = string
}

variable "kubernetes_version" {
  description = "AKS Kubernetes version (null: the region's default)."
  type        = string
  default     = null
}

variable "vnet_cidr" {
  description = "Address space of the virtual network."
  type        = string
  default     = "10.10.0.0/16"
}

variable "service_cidr" {
  description = "CIDR of Kubernetes services; must not overlap the vNet."
  type        = string
  default     = "10.20.0.0/16"
}

variable "node_vm_size" {
  description = "VM size of the default node pool."
  type        = string
  default     = "Standard_D2s_v5"
}

variable "node_count" {
  description = "Number of nodes in the default node pool."
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
