# An environment in the fake cloud (tools/terraform-provider-fakecloud): one cluster (a
# namespace with an admin ServiceAccount) and its persistent disks. The provider is
# configured by the caller (a provider block in the root, or FAKECLOUD_* in the environment).
terraform {
  required_providers {
    fakecloud = {
      source = "example.invalid/test/fakecloud"
    }
  }
}

locals {
  # Facts that are valid label values label the cluster and its disks; owner and version_hash
  # (":" and 71 characters) are not, they only come back in the `facts` output.
  fact_labels = {
    for k, v in {
      "fakecloud.example/project" = var.project
      "fakecloud.example/version" = var.version_name
    } : k => v if v != ""
  }
}

resource "fakecloud_cluster" "this" {
  name         = var.name
  disk_count   = var.disk_count
  labels       = merge(var.labels, local.fact_labels)
  create_delay = var.create_delay == "" ? null : var.create_delay
}
