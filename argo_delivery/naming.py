"""Names, labels and API constants shared by every renderer."""

from __future__ import annotations

GROUP = "argo-delivery.io"
API_VERSION = "v1alpha1"
GROUP_VERSION = f"{GROUP}/{API_VERSION}"

PART_OF = "argo-delivery"
LABEL_PART_OF = "app.kubernetes.io/part-of"
LABEL_VERSION = "app.kubernetes.io/version"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_BUNDLE = f"{GROUP}/bundle"
LABEL_PROJECT = f"{GROUP}/project"

ANNOTATION_TTL = f"{GROUP}/ttl"
ANNOTATION_EXPIRES = f"{GROUP}/expires"
# Set by `argo-delivery state import` on every Version and Environment it creates (the value:
# when the state file was exported). The Sensors' ADD filters skip an object that carries it
# (its flow already ran on the cluster it came from), and the admission policies let only a
# user the authorizer allows the custom verb `restore` set it.
ANNOTATION_RESTORED = f"{GROUP}/restored"
VERB_RESTORE = "restore"

__all__ = [
    "ANNOTATION_EXPIRES",
    "ANNOTATION_RESTORED",
    "ANNOTATION_TTL",
    "API_VERSION",
    "GROUP",
    "GROUP_VERSION",
    "LABEL_BUNDLE",
    "LABEL_COMPONENT",
    "LABEL_PART_OF",
    "LABEL_PROJECT",
    "LABEL_VERSION",
    "PART_OF",
    "POD_SECURITY_LABELS",
    "VERB_RESTORE",
    "bundle_labels",
]


# Pod Security Admission: every namespace we render enforces `restricted`. Our steps meet it,
# Argo's init and wait containers do with the executor securityContext the bundle README
# prescribes, and the EventBus, EventSource and Sensor pods Argo Events' controller builds
# from our templates do too (the end-to-end suite runs the flow so).
POD_SECURITY_LABELS = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/audit": "restricted",
}


def bundle_labels(bundle_name: str, bundle_version: str, **extra: str) -> dict[str, str]:
    """Labels every rendered resource carries; `argo-delivery.io/bundle` is what prune selects on."""
    labels = {
        LABEL_PART_OF: PART_OF,
        LABEL_VERSION: bundle_version,
        LABEL_BUNDLE: bundle_name,
    }
    labels.update(extra)
    return labels
