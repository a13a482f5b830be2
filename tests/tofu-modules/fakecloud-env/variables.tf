variable "name" {
  description = "The environment's name: a DNS label; its cluster's namespace is fc-<name>."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,58}[a-z0-9])?$", var.name))
    error_message = "name must be a DNS label of at most 60 characters (lower-case letters, digits, '-')."
  }
}

variable "disk_count" {
  description = "Persistent disks of the cluster (left behind by destroy, like a real cloud's)."
  type        = number
  default     = 1
}

variable "labels" {
  description = "Labels of the cluster's namespace and disks."
  type        = map(string)
  default     = {}
}

variable "create_delay" {
  description = "A Go duration (\"20s\") the cluster's create waits first; \"\" for none."
  type        = string
  default     = ""
}

# Facts about what the environment runs, as the vend step knows them. ("version" is reserved
# for module blocks, hence version_name: the Version object's name.)
variable "project" {
  type    = string
  default = ""

  validation {
    condition     = can(regex("^([a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?)?$", var.project))
    error_message = "project must be a valid label value."
  }
}

variable "version_name" {
  type    = string
  default = ""

  validation {
    condition     = can(regex("^([a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?)?$", var.version_name))
    error_message = "version_name must be a valid label value."
  }
}

variable "version_hash" {
  type    = string
  default = ""
}

variable "owner" {
  type    = string
  default = ""
}
