"""Pieces every EventSource and Sensor pod shares: secure pod template, names, ports."""

from __future__ import annotations

from typing import Any

from argo_delivery.security import NON_ROOT_UID

__all__ = ["EVENTBUS_NAME", "EVENTSOURCE_SA", "WEBHOOK_PORT", "pod_template"]

EVENTBUS_NAME = "default"
EVENTSOURCE_SA = "argo-delivery-eventsource"
WEBHOOK_PORT = 12000


def pod_template(service_account: str) -> dict[str, Any]:
    """`spec.template` of an EventSource or Sensor: non-root, read-only, bounded."""
    return {
        "serviceAccountName": service_account,
        "securityContext": {
            "runAsNonRoot": True, "runAsUser": NON_ROOT_UID, "runAsGroup": NON_ROOT_UID,
            "fsGroup": NON_ROOT_UID, "seccompProfile": {"type": "RuntimeDefault"},
        },
        "container": {
            "securityContext": {
                "runAsNonRoot": True, "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]},
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"},
                          "limits": {"cpu": "500m", "memory": "256Mi"}},
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        },
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
    }
