# The output contract of gitops-bootstrap (see terraform/README.md).

output "contract_version" {
  description = "Version of the output contract this module honours."
  value       = 1
}

output "cluster_name" {
  description = "Name of the cluster."
  value       = azurerm_kubernetes_cluster.this.name
}

output "kubeconfig" {
  description = "Kubeconfig giving administrative access to the cluster."
  value       = azurerm_kubernetes_cluster.this.kube_config_raw
  sensitive   = true
}

output "network" {
  description = "Facts about the cluster's network."
  value = {
    provider       = "azure"
    location       = var.location
    resource_group = azurerm_resource_group.this.name
    vnet_id        = azurerm_virtual_network.this.id
    subnet_id      = azurerm_subnet.nodes.id
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
