"""The EventBus: JetStream, pinned, in the orchestrator namespace beside EventSources and Sensors."""

from __future__ import annotations

from typing import Any

from argo_delivery.config import PlatformConfig
from argo_delivery.images import ImageError
from argo_delivery.jetstream import JETSTREAM_IMAGES, JETSTREAM_VERSION
from argo_delivery.rbac import Account
from argo_delivery.security import (
    container_security_context,
    pod_security_context,
    resource_requirements,
)

__all__ = ["ACCOUNT", "EVENTBUS_NAME", "JETSTREAM_IMAGES", "JETSTREAM_VERSION", "eventbus", "eventbus_images"]

# The JetStream pods run as their own account (not the namespace's `default`), with no role
# and no token: nats-server and its sidecars never call the Kubernetes API.
ACCOUNT = Account("argo-delivery-eventbus", "EventBus (JetStream) pods: no API access.",
                  home="orchestrator")
# EventSources and Sensors use the EventBus called `default` unless told otherwise.
EVENTBUS_NAME = "default"


def _container(cpu: str, memory: str, cpu_limit: str, memory_limit: str) -> dict[str, Any]:
    return {"resources": resource_requirements(cpu, memory, cpu_limit, memory_limit),
            "securityContext": container_security_context()}


def eventbus(config: PlatformConfig) -> dict[str, Any]:
    """The JetStream EventBus named `default` (what EventSources and Sensors use unless told)."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "EventBus",
        "metadata": {"name": EVENTBUS_NAME, "namespace": config.orchestrator_namespace},
        "spec": {"jetstream": {
            "version": JETSTREAM_VERSION,
            "serviceAccountName": ACCOUNT.name,
            "replicas": 3,
            "persistence": {"accessMode": "ReadWriteOnce", "volumeSize": "10Gi"},
            "securityContext": pod_security_context(),
            "containerTemplate": _container("100m", "256Mi", "1", "1Gi"),
            "reloaderContainerTemplate": _container("10m", "32Mi", "100m", "64Mi"),
            "metricsContainerTemplate": _container("10m", "32Mi", "100m", "64Mi"),
        }},
    }


def eventbus_images(resources: list[dict[str, Any]], config: PlatformConfig) -> list[str]:
    """Images the Argo Events controller runs for our EventBus (they appear in no manifest).

    They are the config's resolved JetStream images: under a registry mirror, point the
    controller's JetStream image settings there too.
    """
    versions = {r["spec"]["jetstream"]["version"] for r in resources
                if r["kind"] == "EventBus" and "jetstream" in r.get("spec", {})}
    if versions - {JETSTREAM_VERSION}:
        raise ImageError(f"an EventBus runs JetStream {', '.join(sorted(versions - {JETSTREAM_VERSION}))}, "
                         f"whose images argo-delivery does not know; use JetStream {JETSTREAM_VERSION}")
    return list(config.eventbus_images) if versions else []
