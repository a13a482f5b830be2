"""The controllers a bundle runs on, at the versions this release is built and tested against.

Their images run pods of ours (Argo's executor runs the init and wait containers of every
workflow pod; the Argo Events image runs every EventSource and Sensor pod) without appearing
in any manifest of ours, so images.txt lists them from here (or from `images.argoExec` and
`images.argoEvents`). A test checks these versions against the Go modules the project's
validators are built from (tools/*/go.mod).
"""

__all__ = ["ARGO_EVENTS_IMAGE", "ARGO_EVENTS_VERSION", "ARGO_EXEC_IMAGE", "ARGO_WORKFLOWS_VERSION"]

ARGO_WORKFLOWS_VERSION = "v4.1.4"
ARGO_EVENTS_VERSION = "v1.9.11"
# The names upstream's own defaults use (workflow/controller/config.go, the Argo Events
# controller manifest's ARGO_EVENTS_IMAGE), at our pins.
ARGO_EXEC_IMAGE = f"quay.io/argoproj/argoexec:{ARGO_WORKFLOWS_VERSION}"
ARGO_EVENTS_IMAGE = f"quay.io/argoproj/argo-events:{ARGO_EVENTS_VERSION}"
