# Adopts a cluster that already exists: no provider, nothing is created outside Terraform's
# state, so it applies offline. The kubeconfig comes as content or as a file path.

terraform {
  required_version = ">= 1.5"
}

locals {
  # HCL reports errors only from the branch it takes, so file() never sees a null path.
  kubeconfig_from_file = var.kubeconfig_path == null ? "" : sensitive(file(var.kubeconfig_path))
  kubeconfig           = var.kubeconfig != null ? var.kubeconfig : local.kubeconfig_from_file
}

# Records which cluster this environment adopted: pointing the environment at another cluster
# replaces it, which a plan shows as a replacement.
resource "terraform_data" "adopted_cluster" {
  triggers_replace = var.cluster_name

  lifecycle {
    precondition {
      condition     = trimspace(local.kubeconfig) != ""
      error_message = "No kubeconfig for the existing cluster: set kubeconfig_path to a non-empty file or kubeconfig to its content."
    }
  }
}
