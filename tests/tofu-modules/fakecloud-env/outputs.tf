output "endpoint" {
  description = "URL of the cluster's API server."
  value       = fakecloud_cluster.this.endpoint
}

output "namespace" {
  description = "The cluster's namespace (the kubeconfig's default)."
  value       = fakecloud_cluster.this.namespace
}

output "disks" {
  description = "Names of the cluster's persistent disks."
  value       = fakecloud_cluster.this.disks
}

output "facts" {
  description = "The facts the environment was vended with."
  value = {
    project      = var.project
    version_name = var.version_name
    version_hash = var.version_hash
    owner        = var.owner
  }
}

output "kubeconfig" {
  description = "Kubeconfig of the cluster's admin ServiceAccount (namespace-scoped admin)."
  value       = fakecloud_cluster.this.kubeconfig
  sensitive   = true
}
